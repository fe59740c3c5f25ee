"""FIR filters of the augmentation: the geometric warp's 2× resampling filter and the image-space filter bank,
with the mirror-padding helpers they use.

Geometric warp: a 16-tap Kaiser-windowed-sinc half-band low-pass (:data:`GEOM_FILTER`); 2× up- and
downsampling with it (:func:`fir_up2`, :func:`fir_down2`) are :mod:`stylegan.nn.upfirdn`'s ``upsample2d`` and
``upfirdn2d``, the networks' own resampling.

Image-space filter bank, a simpler stated variant of the ADA paper's: four complementary zero-phase 1-D filters
(differences of 49-tap Kaiser-windowed-sinc low-passes at π/8, π/4, π/2; the four sum exactly to a unit
impulse); the per-image filter is Σ gᵢ bandᵢ applied separably along rows and columns (mirror padding), so
the 2-D response is H(ωx)·H(ωy) (:func:`filter_bands`). The pipeline normalizes the gains as
g / sqrt(Σ λᵢ gᵢ²) with assumed band energy shares λ = :data:`BAND_ENERGY` = [10, 1, 1, 1]/13 (natural
images concentrate their energy in the lowest band), so that an image whose bands are all left alone is left
exactly unchanged.
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from stylegan.nn.upfirdn import upfirdn2d, upsample2d

__all__ = [
    "kaiser_lowpass", "GEOM_TAPS", "GEOM_BETA", "GEOM_FILTER", "BAND_TAPS", "BAND_BETA", "BAND_ENERGY", "DENSE_MAX",
    "band_filters", "band_matrices", "filter_bands", "symmetric_index", "symmetric_pad", "fir_up2", "fir_down2",
]


def kaiser_lowpass(num_taps: int, cutoff: float, beta: float) -> np.ndarray:
    """Kaiser-windowed sinc low-pass, ``cutoff`` in cycles/sample (0.25 = half band), taps summing to 1.
    Symmetric about (num_taps − 1)/2 (zero phase about its centre)."""
    n = np.arange(num_taps, dtype=np.float64) - (num_taps - 1) / 2
    h = 2 * cutoff * np.sinc(2 * cutoff * n) * np.kaiser(num_taps, beta)
    return h / h.sum()


# 2× resampling filter of the geometric warp: a 16-tap Kaiser (β = 5) windowed-sinc half-band low-pass. On the
# 2× grid (cycles/sample): gain ≥ 0.99 up to 0.15 (= 0.3 cycles/pixel of the image), 0.5 at 0.25 (the image's
# Nyquist frequency), ≤ 0.05 from 0.325 and ≤ 0.007 from 0.35 on. Its two polyphase halves each sum to
# exactly 1/2, so flat regions stay flat through the 2× upsampling.
GEOM_TAPS = 16
GEOM_BETA = 5.0
GEOM_FILTER = tuple(float(v) for v in kaiser_lowpass(GEOM_TAPS, 0.25, GEOM_BETA))

# Image-space filter bank: 49-tap Kaiser (β = 4) low-passes; each band's gain is within 2 % of 1 at its
# (log-)centre frequency, where the other three bands' gains sum to under 3 %.
BAND_TAPS = 49
BAND_BETA = 4.0

# Expected share of image energy in each band of the image-space filter (low to high).
BAND_ENERGY = (10 / 13, 1 / 13, 1 / 13, 1 / 13)


def band_filters(num_taps: int = BAND_TAPS, beta: float = BAND_BETA) -> torch.Tensor:
    """[4, num_taps] zero-phase 1-D filters for the bands 0–π/8, π/8–π/4, π/4–π/2, π/2–π; they sum to a delta."""
    lows = [kaiser_lowpass(num_taps, fc, beta) for fc in (1 / 16, 1 / 8, 1 / 4)]
    delta = np.zeros(num_taps)
    delta[num_taps // 2] = 1.0
    bands = [lows[0], lows[1] - lows[0], lows[2] - lows[1], delta - lows[2]]
    return torch.tensor(np.stack(bands), dtype=torch.float32)


# ------------------------------------------------------------------------------------------------ mirror padding

def symmetric_index(i: torch.Tensor, n: int) -> torch.Tensor:
    """Map integer indices onto [0, n) by mirroring about the image border (edge pixels repeated, period 2n)."""
    m = torch.remainder(i, 2 * n)
    return torch.where(m < n, m, 2 * n - 1 - m)


def symmetric_pad(x: torch.Tensor, px0: int, px1: int, py0: int, py1: int) -> torch.Tensor:
    """Mirror padding about the border (``numpy.pad(mode="symmetric")``) of any size, differentiable."""
    h, w = x.shape[-2:]
    if px0 or px1:
        x = x.index_select(-1, symmetric_index(torch.arange(-px0, w + px1, device=x.device), w))
    if py0 or py1:
        x = x.index_select(-2, symmetric_index(torch.arange(-py0, h + py1, device=x.device), h))
    return x


# ------------------------------------------------------------------------------------------------ filtering

def band_matrices(bands: torch.Tensor, n: int) -> torch.Tensor:
    """[B, n, n] matrices M_b with (row @ M_b) = row filtered by band b with mirror padding."""
    r = bands.shape[1] // 2
    eye = torch.eye(n, dtype=bands.dtype, device=bands.device)
    padded = eye.index_select(1, symmetric_index(torch.arange(-r, n + r, device=bands.device), n))
    out = F.conv1d(padded.unsqueeze(1), bands.unsqueeze(1))  # [n, B, n]; bands are symmetric
    return out.permute(1, 0, 2)


# Up to this many pixels along each axis, :func:`filter_bands` multiplies by dense per-image filtering matrices
# (several times faster than grouped convolutions on CPU, cheap on GPU at these sizes); above it, it convolves.
# The size up to which the image-space filter uses dense matrices; read at call time (tests change it).
DENSE_MAX = 256


def filter_bands(x: torch.Tensor, gains: torch.Tensor, bands: torch.Tensor) -> torch.Tensor:
    """Filter each image of ``x`` [M, C, H, W] separably (rows, then columns; mirror padding) with its own 1-D
    filter Σ_b ``gains``[m, b] · ``bands``[b] (``gains`` [M, B], ``bands`` [B, K], symmetric taps).

    Up to :data:`DENSE_MAX` pixels along each axis as products with per-image [W, W] and [H, H] filtering
    matrices (mirror padding folded in), else as grouped convolutions of the padded images; both give the
    same result up to rounding."""
    m, c, h, w = x.shape
    if max(h, w) <= DENSE_MAX:
        mw = torch.einsum("mb,bij->mij", gains, band_matrices(bands, w))
        mh = torch.einsum("mb,bij->mij", gains, band_matrices(bands, h))
        return mh.transpose(1, 2).unsqueeze(1) @ (x @ mw.unsqueeze(1))
    taps = gains @ bands  # [m, K] per-image 1-D filter (symmetric, so convolution = correlation)
    k = taps.shape[1]
    r = k // 2
    x = symmetric_pad(x, r, r, r, r).reshape(1, m * c, h + 2 * r, w + 2 * r)
    wt = taps.repeat_interleave(c, dim=0)  # [m*c, K]
    x = F.conv2d(x, wt.view(m * c, 1, 1, k), groups=m * c)
    return F.conv2d(x, wt.view(m * c, 1, k, 1), groups=m * c).reshape(m, c, h, w)


# ------------------------------------------------------------------------------------------------ 2× resampling

def fir_up2(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Separable 2× FIR upsampling of NCHW ``x`` with the symmetric taps ``f`` (gain 2 per axis): zero insertion
    and convolution with zero padding, output 2H × 2W (``upsample2d(x, f, 2)``). The length of ``f`` must be
    a multiple of 4, as :func:`~stylegan.training.augment.warp.warp_affine` requires of its filter."""
    if f.numel() % 4:
        raise ValueError("fir_up2: the filter length must be a multiple of 4")
    return upsample2d(x, f, up=2)


def fir_down2(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Separable FIR low-pass + 2× decimation of NCHW ``x`` without padding (``upfirdn2d(x, f, down=2)``):
    out[m] = Σₜ f[t] x[2m + t] along each axis (length (L − k)/2 + 1)."""
    return upfirdn2d(x, f, down=2)
