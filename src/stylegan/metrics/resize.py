"""Image resizing as the FID Inception graph did it: TensorFlow 1 ``resize_bilinear`` with
``align_corners=False`` (and no half-pixel centres, which TF1 did not have), no antialiasing.

Output pixel ``j`` samples the input at ``s = j · in / out`` (not ``(j + 0.5) · in / out − 0.5`` as PyTorch's
``align_corners=False`` does): ``lo = floor(s)``, ``hi = min(lo + 1, in − 1)``, value = ``x[lo] + (x[hi] −
x[lo]) · (s − lo)``. Upscaling a 2-pixel row ``[a, b]`` to 4 gives ``[a, (a+b)/2, b, b]``. The result is float
(not rounded back to uint8), as the graph fed it on to the network.
"""
from __future__ import annotations

import torch


def tf1_bilinear_matrix(in_size: int, out_size: int, dtype=torch.float64, device=None) -> torch.Tensor:
    """The [out_size, in_size] matrix R with ``resized_row = R @ row``."""
    if in_size < 1 or out_size < 1:
        raise ValueError(f"sizes must be positive, got {in_size} -> {out_size}")
    scale = in_size / out_size
    src = torch.arange(out_size, dtype=torch.float64) * scale
    lo = torch.floor(src).clamp(max=in_size - 1)
    frac = src - lo
    lo = lo.long()
    hi = (lo + 1).clamp(max=in_size - 1)
    m = torch.zeros(out_size, in_size, dtype=torch.float64)
    rows = torch.arange(out_size)
    m.index_put_((rows, lo), 1 - frac, accumulate=True)
    m.index_put_((rows, hi), frac, accumulate=True)
    return m.to(dtype=dtype, device=device)


_CACHE: dict[tuple, torch.Tensor] = {}


def _matrix(in_size: int, out_size: int, device) -> torch.Tensor:
    key = (in_size, out_size, str(device))
    if key not in _CACHE:
        _CACHE[key] = tf1_bilinear_matrix(in_size, out_size, torch.float32, device)
    return _CACHE[key]


def resize_tf1_bilinear(images: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """NCHW images (uint8 or float) → float32 NCHW of ``size`` (an int for square), TF1 bilinear semantics."""
    if images.ndim != 4:
        raise ValueError(f"expected NCHW images, got shape {tuple(images.shape)}")
    out_h, out_w = (size, size) if isinstance(size, int) else size
    x = images.to(torch.float32)
    h, w = x.shape[2], x.shape[3]
    if (h, w) == (out_h, out_w):
        return x
    ry = _matrix(h, out_h, x.device)
    rx = _matrix(w, out_w, x.device)
    return torch.matmul(torch.matmul(ry, x), rx.T)
