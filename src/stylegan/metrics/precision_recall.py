"""Improved precision and recall (Kynkäänniemi et al. 2019), as used by StyleGAN2: each feature set defines a
manifold, the union of balls around its points with radius the distance to the point's k-th nearest neighbour
(k = 3; the point itself not counted). Precision = share of generated samples inside the real manifold;
recall = share of real samples inside the generated manifold.

Distances are computed in blocks of ``row_batch × col_batch`` pairs, so memory stays bounded whatever the set
sizes (the running k smallest distances are kept per row while column blocks stream past).

Formulas: docs/design.md §4.3.
"""
from __future__ import annotations

import numpy as np
import torch


def _as_tensor(x, device) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    return x.to(device=device, dtype=torch.float32)


def _sq_dist(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    d = a.square().sum(1, keepdim=True) + b.square().sum(1).unsqueeze(0) - 2 * (a @ b.T)
    return d.clamp_(min=0)


def knn_radii(feats, k: int = 3, row_batch: int = 10000, col_batch: int = 10000, device="cpu") -> torch.Tensor:
    """Squared distance from each point to its k-th nearest neighbour in the same set (itself excluded)."""
    x = _as_tensor(feats, device)
    n = x.shape[0]
    if n <= k:
        raise ValueError(f"need more than k={k} points for k-nearest-neighbour radii, got {n}")
    out = torch.empty(n, dtype=torch.float32, device=device)
    for r0 in range(0, n, row_batch):
        rows = x[r0:r0 + row_batch]
        best = None
        for c0 in range(0, n, col_batch):
            d = _sq_dist(rows, x[c0:c0 + col_batch])
            best = d if best is None else torch.cat([best, d], dim=1)
            best = best.topk(min(k + 1, best.shape[1]), dim=1, largest=False).values
        out[r0:r0 + row_batch] = best[:, k]  # index 0 is the point itself (distance 0)
    return out


def inside_manifold(ref, radii: torch.Tensor, queries, row_batch: int = 10000, col_batch: int = 10000,
                    device="cpu") -> torch.Tensor:
    """For each query: is it within the radius of at least one reference point? (bool tensor)"""
    ref = _as_tensor(ref, device)
    q = _as_tensor(queries, device)
    out = torch.zeros(q.shape[0], dtype=torch.bool, device=device)
    for r0 in range(0, q.shape[0], row_batch):
        rows = q[r0:r0 + row_batch]
        hit = torch.zeros(rows.shape[0], dtype=torch.bool, device=device)
        for c0 in range(0, ref.shape[0], col_batch):
            d = _sq_dist(rows, ref[c0:c0 + col_batch])
            hit |= (d <= radii[c0:c0 + col_batch].unsqueeze(0)).any(dim=1)
        out[r0:r0 + row_batch] = hit
    return out


def precision_recall(real, gen, k: int = 3, row_batch: int = 10000, col_batch: int = 10000,
                     device="cpu") -> tuple[float, float]:
    """(precision, recall) of generated features ``gen`` against real features ``real``."""
    real_r = knn_radii(real, k, row_batch, col_batch, device)
    gen_r = knn_radii(gen, k, row_batch, col_batch, device)
    precision = inside_manifold(real, real_r, gen, row_batch, col_batch, device).float().mean().item()
    recall = inside_manifold(gen, gen_r, real, row_batch, col_batch, device).float().mean().item()
    return precision, recall
