"""Fréchet Inception Distance: the Fréchet distance between two Gaussians fitted to feature sets,
‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^{1/2}), in float64.

Tr((Σ₁Σ₂)^{1/2}) is computed from a symmetric eigen-decomposition: with S = Σ₁^{1/2} (from eigh of Σ₁),
Σ₁Σ₂ is similar to the symmetric positive semi-definite S Σ₂ S, so the trace of its square root is the sum
of the square roots of that matrix's eigenvalues (negative round-off clipped to 0). This needs no general
matrix square root and gives no complex parts; ``method="sqrtm"`` uses ``scipy.linalg.sqrtm`` instead (as
the authors' code did) when SciPy is installed, for comparison.

Formulas: docs/design.md §4.1.
"""
from __future__ import annotations

import numpy as np
import torch


def _as64(a) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=np.float64)


# The linear algebra runs through torch (float64, LAPACK), so that it uses torch's thread setting: NumPy's BLAS
# starts a thread per core, which on a busy machine makes a 2048² eigen-decomposition several times slower.


def _psd_sqrt(sigma: torch.Tensor) -> torch.Tensor:
    vals, vecs = torch.linalg.eigh(sigma)
    return (vecs * vals.clamp(min=0).sqrt()) @ vecs.T


def trace_sqrt_product(sigma1, sigma2, method: str = "eigh") -> float:
    """Tr((Σ₁Σ₂)^{1/2}) for symmetric positive semi-definite Σ₁, Σ₂ (float64)."""
    s1, s2 = _as64(sigma1), _as64(sigma2)
    if method == "sqrtm":
        import scipy.linalg  # optional; not a dependency

        root, _ = scipy.linalg.sqrtm(s1 @ s2, disp=False)
        return float(np.real(np.trace(root)))
    if method != "eigh":
        raise ValueError(f"unknown method {method!r}; expected 'eigh' or 'sqrtm'")
    t1, t2 = torch.from_numpy(s1), torch.from_numpy(s2)
    r = _psd_sqrt(t1)
    m = r @ t2 @ r
    m = (m + m.T) / 2
    return float(torch.linalg.eigvalsh(m).clamp(min=0).sqrt().sum())


def frechet_distance(mu1, sigma1, mu2, sigma2, method: str = "eigh") -> float:
    """‖μ₁ − μ₂‖² + Tr(Σ₁ + Σ₂ − 2 (Σ₁Σ₂)^{1/2}), computed in float64."""
    mu1, mu2, s1, s2 = _as64(mu1), _as64(mu2), _as64(sigma1), _as64(sigma2)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != (mu1.size, mu1.size):
        raise ValueError(f"shapes do not match: mu {mu1.shape} / {mu2.shape}, sigma {s1.shape} / {s2.shape}")
    diff = mu1 - mu2
    value = diff @ diff + np.trace(s1) + np.trace(s2) - 2 * trace_sqrt_product(s1, s2, method)
    return float(value)


def mean_cov(features) -> tuple[np.ndarray, np.ndarray]:
    """Mean and (unbiased, N − 1) covariance of an (N, d) feature set, in float64."""
    x = _as64(features)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need at least two feature vectors (N, d), got shape {x.shape}")
    return x.mean(axis=0), np.cov(x, rowvar=False)


def fid_from_features(feats1, feats2) -> float:
    return frechet_distance(*mean_cov(feats1), *mean_cov(feats2))
