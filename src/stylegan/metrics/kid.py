"""Kernel Inception Distance: the unbiased estimate of the squared maximum mean discrepancy (MMD²) between two
feature sets with the cubic polynomial kernel k(x, y) = (xᵀy / d + 1)³, averaged over random subsets
(100 subsets of 1000 by default; subsets are as large as the smaller set when it has fewer than 1000).

For subsets X, Y of size m: MMD²ᵤ = Σ_{i≠j} k(xᵢ, xⱼ) / (m(m − 1)) + Σ_{i≠j} k(yᵢ, yⱼ) / (m(m − 1))
− 2 Σ_{i,j} k(xᵢ, yⱼ) / m². Its expectation is the true MMD², so it is 0 on average for two samples of one
distribution (and can be negative for one draw).

Formulas: docs/design.md §4.2.
"""
from __future__ import annotations

import numpy as np
import torch


def polynomial_kernel(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    d = x.shape[1]
    return (x @ y.T / d + 1) ** 3


def mmd2_unbiased(x, y) -> float:
    """Unbiased MMD² of two equal-size samples with the cubic polynomial kernel (float64; through torch, so
    that torch's thread setting applies)."""
    x = torch.as_tensor(np.asarray(x, dtype=np.float64))
    y = torch.as_tensor(np.asarray(y, dtype=np.float64))
    m = x.shape[0]
    if y.shape[0] != m or m < 2:
        raise ValueError(f"need two samples of one size >= 2, got {x.shape[0]} and {y.shape[0]}")
    kxx = polynomial_kernel(x, x)
    kyy = polynomial_kernel(y, y)
    kxy = polynomial_kernel(x, y)
    within = (kxx.sum() - kxx.diagonal().sum() + kyy.sum() - kyy.diagonal().sum()) / (m * (m - 1))
    return float(within - 2 * kxy.mean())


def kernel_inception_distance(real, gen, num_subsets: int = 100, max_subset_size: int = 1000,
                              seed: int = 0) -> float:
    """Mean unbiased MMD² over ``num_subsets`` random subsets (drawn without replacement within a subset)."""
    real = np.asarray(real, dtype=np.float64)
    gen = np.asarray(gen, dtype=np.float64)
    if real.ndim != 2 or gen.ndim != 2 or real.shape[1] != gen.shape[1]:
        raise ValueError(f"feature sets must be (N, d) with the same d, got {real.shape} and {gen.shape}")
    m = min(real.shape[0], gen.shape[0], max_subset_size)
    if m < 2:
        raise ValueError("KID needs at least two feature vectors in each set")
    rng = np.random.RandomState(seed)
    total = 0.0
    for _ in range(num_subsets):
        x = gen[rng.choice(gen.shape[0], m, replace=False)]
        y = real[rng.choice(real.shape[0], m, replace=False)]
        total += mmd2_unbiased(x, y)
    return total / num_subsets
