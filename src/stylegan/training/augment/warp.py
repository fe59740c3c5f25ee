"""The band-limited affine warp of the geometric transforms, and the 3×3 matrices that compose them.

The general geometric transforms (scale, rotation, anisotropy, fractional translation) are composed into one
affine map per image and done as a low-pass-filtered warp (:func:`warp_affine`): upsample 2× with a 16-tap
Kaiser-windowed-sinc half-band filter (:data:`~stylegan.training.augment.filters.GEOM_FILTER`), read it with
``grid_sample`` (bicubic by default, bilinear optional; mirror reflection beyond the border) at the
transformed positions of a 2× output grid, low-pass with the same filter and decimate 2×.

Aliasing bound (``measure_geom_error`` in tests/test_augment.py, asserted there by
``test_geom_aliasing_bound``; 64×64 band-limited sinusoids under random rotation, scaling 2^U(−0.5, 0.5),
anisotropy 2^U(−0.3, 0.3) and fractional translation, interior pixels, worst of 12 draws):

- passband: RMS error against the analytically transformed sinusoid ≤ 1.5 % of the signal RMS at 0.1
  cycles/pixel and ≤ 3.5 % at 0.25 cycles/pixel, half the Nyquist frequency; with ``interp="bilinear"``
  ≤ 7 % at 0.25 (mostly blur);
- stopband: a sinusoid that the transform pushes to 0.7–0.95 cycles/pixel (above the output's Nyquist
  frequency 0.5; an ideal resampler removes it, plain ``grid_sample`` folds it back at full amplitude to
  0.05–0.3 cycles/pixel) leaks ≤ 3.5 % of its RMS.
"""
from __future__ import annotations

from typing import Iterable

import torch

from stylegan.nn.grid_sample import grid_sample
from stylegan.training.augment.filters import GEOM_FILTER, fir_down2, fir_up2, symmetric_pad

__all__ = ["warp_affine", "eye3", "translation_matrix", "scale_matrix", "rotation_matrix"]


def eye3(n: int, device) -> torch.Tensor:
    """[n, 3, 3] identity matrices (a writable copy)."""
    return torch.eye(3, device=device).expand(n, 3, 3).clone()


def translation_matrix(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    """[n, 3, 3] translations by (tx, ty)."""
    m = eye3(tx.shape[0], tx.device)
    m[:, 0, 2] = tx
    m[:, 1, 2] = ty
    return m


def scale_matrix(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    """[n, 3, 3] axis-aligned scalings by (sx, sy)."""
    m = eye3(sx.shape[0], sx.device)
    m[:, 0, 0] = sx
    m[:, 1, 1] = sy
    return m


def rotation_matrix(theta: torch.Tensor) -> torch.Tensor:
    """Rotation by θ in pixel coordinates (x right, y down: clockwise on screen for θ > 0); the sign does not
    matter for the symmetric angle distribution used here."""
    m = eye3(theta.shape[0], theta.device)
    c, s = torch.cos(theta), torch.sin(theta)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = c, -s, s, c
    return m


def warp_affine(x: torch.Tensor, inv: torch.Tensor, mode: str = "bicubic",
                taps: Iterable[float] | torch.Tensor = GEOM_FILTER) -> torch.Tensor:
    """Resample ``x`` [N, C, H, W] through per-image affine maps ``inv`` [N, 3, 3] (or [N, 2, 3]) that take
    *output* pixel positions to *input* positions, both in pixel units centred on the image centre (x right,
    y down). Output size = input size; outside the image, content is its mirror image about the border.

    Band-limited: the image is upsampled 2× with the FIR ``taps`` (after a few pixels of mirror padding, so the
    2× image is exact up to its border), ``grid_sample`` (mirror reflection beyond the border, which continues
    the 2× image exactly because a symmetric filter commutes with mirroring) reads it at the mapped positions
    of a 2× output grid, and the result is low-passed with the same FIR and decimated 2×.
    """
    n, c, h, w = x.shape
    if isinstance(taps, torch.Tensor):
        f = taps.to(device=x.device, dtype=x.dtype)
    else:
        f = torch.tensor(list(taps), dtype=x.dtype, device=x.device)
    k = f.numel()
    if k % 4:
        raise ValueError("warp_affine: the resampling filter length must be a multiple of 4")
    inv = inv[:, :2, :].to(device=x.device, dtype=torch.float64 if x.dtype == torch.float64 else torch.float32)
    r = k // 4 + 1  # the 2× upsampling reads k/4 pixels beyond each output sample's neighbourhood
    up = fir_up2(symmetric_pad(x, r, r, r, r), f)[:, :, 2 * r:-2 * r, 2 * r:-2 * r]  # [N, C, 2H, 2W]
    e = k // 2 - 1  # extra 2×-grid samples on each side that the decimation filter reads
    # Output 2× grid sample positions (centred pixel units): (q + 0.5)/2 − size/2, q ∈ [−e, 2·size + e).
    gx = (torch.arange(-e, 2 * w + e, device=x.device, dtype=inv.dtype) + 0.5) / 2 - w / 2
    gy = (torch.arange(-e, 2 * h + e, device=x.device, dtype=inv.dtype) + 0.5) / 2 - h / 2
    yy, xx = torch.meshgrid(gy, gx, indexing="ij")
    sx = inv[:, 0, 0, None, None] * xx + inv[:, 0, 1, None, None] * yy + inv[:, 0, 2, None, None]
    sy = inv[:, 1, 0, None, None] * xx + inv[:, 1, 1, None, None] * yy + inv[:, 1, 2, None, None]
    # 2× sample q sits at input position (q + 0.5)/2 (uncentred), which grid_sample (align_corners=False)
    # calls (2q + 1)/(2·size) − 1: the normalized coordinate of a centred position s is 2s/size.
    grid = torch.stack([sx * (2 / w), sy * (2 / h)], dim=-1).to(up.dtype)
    y = grid_sample(up, grid, mode=mode, padding_mode="reflection", align_corners=False)  # R1 differentiates twice
    return fir_down2(y, f).contiguous()
