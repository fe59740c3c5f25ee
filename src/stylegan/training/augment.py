"""Adaptive discriminator augmentation (ADA; Karras et al. 2020, "Training Generative Adversarial Networks with
Limited Data"): a differentiable augmentation pipeline applied to every image the discriminator sees, real or
generated, and the controller that adapts its strength ``p`` from the discriminator's overfitting.

Pipeline (:class:`AugmentPipe`). Images are NCHW float in [−1, 1] with 1 or 3 channels (other channel counts
get every transform except hue rotation). Each transform is applied to each image independently with
probability ``weight · p`` (the weight is the constructor argument of that name, 1 in the named pipelines), its
parameters drawn from the paper's distributions:

=========  ============  =================================================================================
group      transform     parameters (when applied)
=========  ============  =================================================================================
blit       xflip         flip with i ~ U{0, 1} (so an image is mirrored with probability p/2)
           rotate90      k·90°, k ~ U{0, 1, 2, 3} (square images; otherwise k ∈ {0, 2})
           xint          integer translation, t ~ U(−0.125, 0.125) of the image size, rounded to pixels
geom       scale         isotropic scale 2^N(0, 0.2²), i.e. lognormal(0, (0.2 ln 2)²)
           rotate        rotation θ ~ U(−π, π), drawn twice (before and after the anisotropic scale), each
                         with probability 1 − sqrt(1 − p) so that an image is rotated with probability p
           aniso         anisotropic scale (s, 1/s), s = 2^N(0, 0.2²)
           xfrac         fractional translation t ~ N(0, 0.125²) of the image size
color      brightness    x + b, b ~ N(0, 0.2²)
           contrast      x · c, c = 2^N(0, 0.5²)
           lumaflip      reflection across the plane ⟂ luma axis v = [1, 1, 1]/√3, with i ~ U{0, 1}
           hue           rotation about v by θ ~ U(−π, π)                       (3 channels only)
           saturation    v vᵀ x + s (I − v vᵀ) x, s = 2^N(0, 1)                 (identity in grayscale)
filter     imgfilter     4 bands (0–π/8, π/8–π/4, π/4–π/2, π/2–π), each amplified with probability p by
                         2^N(0, 1), gains renormalized to keep the expected energy (see below)
noise      noise         additive N(0, σ²) per pixel and channel, σ ~ |N(0, 0.1²)|
cutout     cutout        a square of half the image size, centre ~ U(image), set to 0 (mid grey)
=========  ============  =================================================================================

Pixel blitting is exact: one integer index map per image (flip, quarter turns, translation composed; mirror
padding about the border) and a gather. The general geometric transforms (scale, rotation, anisotropy,
fractional translation) are composed into one affine map per image and done as a low-pass-filtered warp
(:func:`warp_affine`): upsample 2× with a 16-tap Kaiser-windowed-sinc half-band filter (:data:`GEOM_FILTER`),
read it with ``grid_sample`` (bicubic by default, bilinear optional; mirror reflection beyond the border) at
the transformed positions of a 2× output grid, low-pass with the same filter and decimate 2×.

Measured aliasing bound (:func:`measure_geom_error`, asserted in tests/test_augment.py
``test_geom_aliasing_bound``; 64×64 band-limited sinusoids under random rotation, scaling 2^U(−0.5, 0.5),
anisotropy 2^U(−0.3, 0.3) and fractional translation, interior pixels, worst of 12 draws):

- passband: RMS error against the analytically transformed sinusoid ≤ 1.5 % of the signal RMS at 0.1
  cycles/pixel (measured 1.1 %) and ≤ 3.5 % at 0.25 cycles/pixel, half the Nyquist frequency (measured
  2.8 %); with ``interp="bilinear"`` ≤ 7 % at 0.25 (measured 5.4 %, mostly blur);
- stopband: a sinusoid that the transform pushes to 0.7–0.95 cycles/pixel (above the output's Nyquist
  frequency 0.5; an ideal resampler removes it, plain ``grid_sample`` folds it back at full amplitude to
  0.05–0.3 cycles/pixel) leaks ≤ 3.5 % of its RMS (measured 2.8 %; 4.1 % bilinear).

The image-space filter bank is a simpler stated variant of the paper's: four complementary zero-phase 1-D
filters (differences of 49-tap Kaiser-windowed-sinc low-passes at π/8, π/4, π/2; the four sum exactly to a
unit impulse); the per-image filter is Σ gᵢ bandᵢ applied separably along rows and columns (mirror padding),
so the 2-D response is H(ωx)·H(ωy). The gains are normalized as g / sqrt(Σ λᵢ gᵢ²) with assumed band energy
shares λ = [10, 1, 1, 1]/13 (natural images concentrate their energy in the lowest band), so that an image
whose bands are all left alone is left exactly unchanged.

Samples that no transform of a stage selects are passed through untouched (exactly), and with ``p = 0`` the
pipeline returns its input. Everything is differentiable w.r.t. the input and runs on the input's device.

Strength: ``pipe.p`` is a 0-d float buffer (saved in the module's state dict); set it with ``pipe.p = 0.3`` or
``pipe.set_p(0.3)``. Named pipelines (:data:`PIPELINES`): ``blit``, ``geom``, ``color``, ``filter``, ``noise``,
``cutout``, ``bg``, ``bgc`` (default), ``bgcf``, ``bgcfn``, ``bgcfnc`` — ``AugmentPipe.from_name("bgc")``.

Controller (:class:`AdaController`): the r_t overfitting heuristic. Feed it D's logits on (augmented) real
images every minibatch; every ``interval`` (4) minibatches it computes r_t = E[sign(D(real))] over the images
seen (summed over processes when given a reduce function) and moves p by
sign(r_t − target) · N / (ada_kimg · 1000), N the number of images (= batch · interval), clamped to [0, 1];
target 0.6 and ada_kimg 500 by default, so p can go from 0 to 1 in 500k images.
"""
from __future__ import annotations

import math
from typing import Callable, Iterable

import numpy as np
import torch
import torch.nn.functional as F

from stylegan.nn.grid_sample import grid_sample

__all__ = [
    "AugmentPipe", "AdaController", "GROUPS", "PIPELINES", "TRANSFORMS", "DEFAULT_PIPELINE", "GEOM_FILTER",
    "kaiser_lowpass", "band_filters", "warp_affine", "fir_up2", "fir_down2", "measure_geom_error",
]

# Transforms of each group, in the order the pipeline applies them.
GROUPS: dict[str, tuple[str, ...]] = {
    "blit": ("xflip", "rotate90", "xint"),
    "geom": ("scale", "rotate", "aniso", "xfrac"),
    "color": ("brightness", "contrast", "lumaflip", "hue", "saturation"),
    "filter": ("imgfilter",),
    "noise": ("noise",),
    "cutout": ("cutout",),
}
TRANSFORMS: tuple[str, ...] = tuple(t for g in GROUPS.values() for t in g)

# Named pipelines: which groups each enables.
PIPELINES: dict[str, tuple[str, ...]] = {
    "blit": ("blit",),
    "geom": ("geom",),
    "color": ("color",),
    "filter": ("filter",),
    "noise": ("noise",),
    "cutout": ("cutout",),
    "bg": ("blit", "geom"),
    "bgc": ("blit", "geom", "color"),
    "bgcf": ("blit", "geom", "color", "filter"),
    "bgcfn": ("blit", "geom", "color", "filter", "noise"),
    "bgcfnc": ("blit", "geom", "color", "filter", "noise", "cutout"),
}
DEFAULT_PIPELINE = "bgc"

# Expected share of image energy in each band of the image-space filter (low to high).
BAND_ENERGY = (10 / 13, 1 / 13, 1 / 13, 1 / 13)


# ------------------------------------------------------------------------------------------------ filters

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


def band_filters(num_taps: int = BAND_TAPS, beta: float = BAND_BETA) -> torch.Tensor:
    """[4, num_taps] zero-phase 1-D filters for the bands 0–π/8, π/8–π/4, π/4–π/2, π/2–π; they sum to a delta."""
    lows = [kaiser_lowpass(num_taps, fc, beta) for fc in (1 / 16, 1 / 8, 1 / 4)]
    delta = np.zeros(num_taps)
    delta[num_taps // 2] = 1.0
    bands = [lows[0], lows[1] - lows[0], lows[2] - lows[1], delta - lows[2]]
    return torch.tensor(np.stack(bands), dtype=torch.float32)


def _band_matrices(bands: torch.Tensor, n: int) -> torch.Tensor:
    """[B, n, n] matrices M_b with (row @ M_b) = row filtered by band b with mirror padding."""
    r = bands.shape[1] // 2
    eye = torch.eye(n, dtype=bands.dtype, device=bands.device)
    padded = eye.index_select(1, _symmetric_index(torch.arange(-r, n + r, device=bands.device), n))
    out = F.conv1d(padded.unsqueeze(1), bands.unsqueeze(1))  # [n, B, n]; bands are symmetric
    return out.permute(1, 0, 2)


# ------------------------------------------------------------------------------------------------ helpers

def _symmetric_index(i: torch.Tensor, n: int) -> torch.Tensor:
    """Map integer indices onto [0, n) by mirroring about the image border (edge pixels repeated, period 2n)."""
    m = torch.remainder(i, 2 * n)
    return torch.where(m < n, m, 2 * n - 1 - m)


def _symmetric_pad(x: torch.Tensor, px0: int, px1: int, py0: int, py1: int) -> torch.Tensor:
    """Mirror padding about the border (``numpy.pad(mode="symmetric")``) of any size, differentiable."""
    h, w = x.shape[-2:]
    if px0 or px1:
        x = x.index_select(-1, _symmetric_index(torch.arange(-px0, w + px1, device=x.device), w))
    if py0 or py1:
        x = x.index_select(-2, _symmetric_index(torch.arange(-py0, h + py1, device=x.device), h))
    return x


def _bernoulli(prob: float, n: int, device) -> torch.Tensor:
    return torch.rand(n, device=device) < min(max(prob, 0.0), 1.0)


def _eye3(n: int, device) -> torch.Tensor:
    return torch.eye(3, device=device).expand(n, 3, 3).clone()


def _translate(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    m = _eye3(tx.shape[0], tx.device)
    m[:, 0, 2] = tx
    m[:, 1, 2] = ty
    return m


def _scale(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    m = _eye3(sx.shape[0], sx.device)
    m[:, 0, 0] = sx
    m[:, 1, 1] = sy
    return m


def _rotate(theta: torch.Tensor) -> torch.Tensor:
    """Rotation by θ in pixel coordinates (x right, y down: clockwise on screen for θ > 0); the sign does not
    matter for the symmetric angle distribution used here."""
    m = _eye3(theta.shape[0], theta.device)
    c, s = torch.cos(theta), torch.sin(theta)
    m[:, 0, 0], m[:, 0, 1], m[:, 1, 0], m[:, 1, 1] = c, -s, s, c
    return m


# Below this many samples along an axis, 1-D FIR resampling is done as a product with the (banded) resampling
# matrix: several times faster than a 1-channel convolution on CPU, and cheap on GPU at these sizes.
DENSE_MAX = 256


def _conv_up2_last(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    k = f.numel()
    shape = x.shape
    zero = f.new_zeros(1)
    w = torch.stack([torch.cat([f[0::2], zero]), torch.cat([zero, f[1::2]])]) * 2  # [2, k/2 + 1]
    y = F.conv1d(x.reshape(-1, 1, shape[-1]), w.unsqueeze(1).to(x.dtype), padding=k // 4)
    return y.transpose(1, 2).reshape(*shape[:-1], 2 * shape[-1])


def _conv_down2_last(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    shape = x.shape
    y = F.conv1d(x.reshape(-1, 1, shape[-1]), f.view(1, 1, -1).to(x.dtype), stride=2)
    return y.reshape(*shape[:-1], y.shape[-1])


def _fir_up2_last(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """2× upsampling along the last axis by the even-length symmetric FIR ``f`` (gain 2), polyphase: the same
    result as zero insertion + convolution with zero padding (``upsample2d``'s alignment)."""
    n = x.shape[-1]
    if n <= DENSE_MAX:
        return x @ _conv_up2_last(torch.eye(n, dtype=x.dtype, device=x.device), f)
    return _conv_up2_last(x, f)


def _fir_down2_last(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Filter with ``f`` and keep every other sample along the last axis, no padding:
    out[m] = Σₜ f[t] x[2m + t] (length (L − k)/2 + 1)."""
    n = x.shape[-1]
    if n <= 2 * DENSE_MAX:
        return x @ _conv_down2_last(torch.eye(n, dtype=x.dtype, device=x.device), f)
    return _conv_down2_last(x, f)


def fir_up2(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Separable 2× FIR upsampling of NCHW ``x`` (equal to ``upsample2d(x, f, 2)`` for even-length ``f``)."""
    if f.numel() % 4:
        raise ValueError("fir_up2: the filter length must be a multiple of 4")
    x = _fir_up2_last(x, f)
    return _fir_up2_last(x.transpose(-1, -2), f).transpose(-1, -2)


def fir_down2(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """Separable FIR low-pass + 2× decimation of NCHW ``x`` without padding (``upfirdn2d(x, f, down=2)``)."""
    x = _fir_down2_last(x, f)
    return _fir_down2_last(x.transpose(-1, -2), f).transpose(-1, -2)


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
    up = fir_up2(_symmetric_pad(x, r, r, r, r), f)[:, :, 2 * r:-2 * r, 2 * r:-2 * r]  # [N, C, 2H, 2W]
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


def measure_geom_error(size: int = 64, freq: float = 0.25, mode: str = "bicubic", above_nyquist: bool = False,
                       trials: int = 8, seed: int = 0, margin: float = 6.0,
                       taps: Iterable[float] | torch.Tensor = GEOM_FILTER) -> float:
    """Accuracy / aliasing of :func:`warp_affine` on band-limited test patterns: the largest, over ``trials``
    random draws, of RMS(output − reference) / RMS(sinusoid), taken over the output pixels whose source
    position lies at least ``margin`` pixels inside the input and which are ``margin`` pixels inside the
    output (mirror padding makes the borders differ from a pure sinusoid).

    Each trial draws a sinusoid cos(2π k·u + φ) (random direction and phase) and an affine map with a random
    rotation U(−π, π), anisotropy 2^U(−0.3, 0.3) and translation U(−3.7, 3.7) pixels (fractional). The
    warped image is the sinusoid cos(2π (Aᵀk)·u + 2π k·t + φ) for the sampling map u ↦ A u + t:

    - ``above_nyquist=False`` (passband): |k| = ``freq`` cycles/pixel, isotropic scale 2^U(−0.5, 0.5), redrawn
      until |Aᵀk| ≤ ``freq`` too. Reference: the transformed sinusoid (error = passband droop, interpolation
      error and aliasing together).
    - ``above_nyquist=True`` (stopband): |k| ~ U(0.2, 0.35) and an isotropic zoom-out chosen so that the
      transformed frequency lies above the output's Nyquist frequency, max(|(Aᵀk)ₓ|, |(Aᵀk)ᵧ|) ~ U(0.7, 0.95)
      cycles/pixel. An ideal resampler outputs 0 there; a naive one (sampling without the low-pass) folds the
      sinusoid back at full amplitude to 0.05–0.3 cycles/pixel. Reference 0: the value is the leaked share.
    """
    g = torch.Generator().manual_seed(seed)
    u = torch.arange(size, dtype=torch.float64) + 0.5 - size / 2
    yy, xx = torch.meshgrid(u, u, indexing="ij")
    half = size / 2 - margin
    worst = 0.0
    done = 0
    while done < trials:
        r = torch.rand(8, generator=g, dtype=torch.float64).tolist()
        theta = (r[0] * 2 - 1) * math.pi
        a = 2 ** ((r[2] * 2 - 1) * 0.3)
        tx, ty = (r[3] * 2 - 1) * 3.7, (r[4] * 2 - 1) * 3.7
        phi0, d = r[5] * 2 * math.pi, r[6] * 2 * math.pi
        c, sn = math.cos(theta), math.sin(theta)
        direction = torch.tensor([math.cos(d), math.sin(d)], dtype=torch.float64)

        def sampling_map(s: float) -> torch.Tensor:
            # Forward map (input -> output): translate · rotate · diag(s a, s / a); the warp samples its inverse.
            fwd = torch.tensor([[c * s * a, -sn * s / a, tx], [sn * s * a, c * s / a, ty], [0, 0, 1]],
                               dtype=torch.float64)
            return torch.linalg.inv(fwd)

        if above_nyquist:
            k = direction * (0.2 + 0.15 * r[1])
            target = 0.7 + 0.25 * r[7]
            s = float((sampling_map(1.0)[:2, :2].T @ k).abs().max()) / target
            inv = sampling_map(s)
        else:
            k = direction * freq
            inv = sampling_map(2 ** (r[1] - 0.5))
            if float((inv[:2, :2].T @ direction).norm()) > 1:
                continue
        sx = inv[0, 0] * xx + inv[0, 1] * yy + inv[0, 2]
        sy = inv[1, 0] * xx + inv[1, 1] * yy + inv[1, 2]
        valid = (sx.abs() <= half) & (sy.abs() <= half) & (xx.abs() <= half) & (yy.abs() <= half)
        if int(valid.sum()) < 64:
            continue
        done += 1
        img = torch.cos(2 * math.pi * (k[0] * xx + k[1] * yy) + phi0)
        out = warp_affine(img[None, None].float(), inv[None].float(), mode=mode, taps=taps)[0, 0].double()
        ko = inv[:2, :2].T @ k
        phase = 2 * math.pi * (k[0] * inv[0, 2] + k[1] * inv[1, 2]) + phi0
        ref = torch.zeros_like(out) if above_nyquist else torch.cos(2 * math.pi * (ko[0] * xx + ko[1] * yy) + phase)
        err = (out - ref)[valid].square().mean().sqrt() / math.sqrt(0.5)
        worst = max(worst, float(err))
    return worst


# ------------------------------------------------------------------------------------------------ pipeline

class AugmentPipe(torch.nn.Module):
    """ADA augmentation pipeline; see the module docstring for the transforms and their distributions.

    Each ``<transform>`` argument is that transform's probability multiplier (0 disables it); the ``*_std`` /
    ``*_max`` arguments are the parameter distributions' spreads (paper defaults). ``p`` is the strength.
    ``interp`` is ``grid_sample``'s mode for the geometric warp (``"bicubic"`` or ``"bilinear"``).
    """

    def __init__(self, xflip=0.0, rotate90=0.0, xint=0.0, xint_max=0.125,
                 scale=0.0, rotate=0.0, aniso=0.0, xfrac=0.0, scale_std=0.2, rotate_max=1.0, aniso_std=0.2,
                 xfrac_std=0.125,
                 brightness=0.0, contrast=0.0, lumaflip=0.0, hue=0.0, saturation=0.0, brightness_std=0.2,
                 contrast_std=0.5, hue_max=1.0, saturation_std=1.0,
                 imgfilter=0.0, imgfilter_bands=(1.0, 1.0, 1.0, 1.0), imgfilter_std=1.0,
                 noise=0.0, cutout=0.0, noise_std=0.1, cutout_size=0.5,
                 p: float = 0.0, interp: str = "bicubic"):
        super().__init__()
        self.register_buffer("p", torch.tensor(float(p), dtype=torch.float32))
        self.xflip, self.rotate90, self.xint, self.xint_max = float(xflip), float(rotate90), float(xint), xint_max
        self.scale, self.rotate, self.aniso, self.xfrac = float(scale), float(rotate), float(aniso), float(xfrac)
        self.scale_std, self.rotate_max, self.aniso_std, self.xfrac_std = scale_std, rotate_max, aniso_std, xfrac_std
        self.brightness, self.contrast, self.lumaflip = float(brightness), float(contrast), float(lumaflip)
        self.hue, self.saturation = float(hue), float(saturation)
        self.brightness_std, self.contrast_std = brightness_std, contrast_std
        self.hue_max, self.saturation_std = hue_max, saturation_std
        self.imgfilter, self.imgfilter_std = float(imgfilter), imgfilter_std
        self.imgfilter_bands = tuple(float(b) for b in imgfilter_bands)
        self.noise, self.cutout, self.noise_std, self.cutout_size = float(noise), float(cutout), noise_std, cutout_size
        if interp not in ("bicubic", "bilinear"):
            raise ValueError(f"interp must be 'bicubic' or 'bilinear', got {interp!r}")
        self.interp = interp
        self.register_buffer("geom_filter", torch.tensor(GEOM_FILTER), persistent=False)
        self.register_buffer("bands", band_filters(), persistent=False)
        #: When True, ``last_applied`` holds, after each call, a bool [N] mask per transform of the images that
        #: transform was applied to (drawn to be applied, whatever its random parameter turned out to be).
        self.record = False
        self.last_applied: dict[str, torch.Tensor] = {}

    # -------------------------------------------------------------- construction / strength
    @classmethod
    def from_name(cls, name: str = DEFAULT_PIPELINE, p: float = 0.0, **overrides) -> "AugmentPipe":
        """A named pipeline (``bgc``, ``bgcfnc``, ``blit``, ...; see :data:`PIPELINES`) with every transform
        of its groups at weight 1; ``overrides`` change constructor arguments."""
        if name not in PIPELINES:
            raise ValueError(f"unknown augmentation pipeline {name!r}; choose from {', '.join(PIPELINES)}")
        kw = {t: 1.0 for g in PIPELINES[name] for t in GROUPS[g]}
        kw.update(overrides)
        return cls(p=p, **kw)

    def __setattr__(self, name, value):
        if name == "p" and "_buffers" in self.__dict__ and "p" in self._buffers and not isinstance(value, torch.Tensor):
            self.set_p(value)
            return
        super().__setattr__(name, value)

    def set_p(self, value: float) -> None:
        """Set the strength (in place, keeping the buffer's device)."""
        self._buffers["p"].fill_(float(value))

    def enabled(self) -> dict[str, float]:
        """Transforms with a non-zero weight."""
        return {t: getattr(self, t) for t in TRANSFORMS if getattr(self, t) != 0}

    def extra_repr(self) -> str:
        enabled = ", ".join(f"{k}={v:g}" for k, v in self.enabled().items())
        return f"p={float(self.p):.4f}, interp={self.interp}, {enabled}"

    # -------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"AugmentPipe expects NCHW images, got shape {tuple(x.shape)}")
        p = float(self.p)
        self.last_applied = {}
        if p <= 0 or not self.enabled():
            return x
        dtype = x.dtype
        y = x if dtype in (torch.float32, torch.float64) else x.float()
        y = self._blit(y, p)
        y = self._geom(y, p)
        y = self._color(y, p)
        y = self._filter(y, p)
        y = self._noise(y, p)
        y = self._cutout(y, p)
        return y if y.dtype == dtype else y.to(dtype)

    def _mask(self, name: str, prob: float, n: int, device) -> torch.Tensor:
        m = _bernoulli(prob, n, device)
        if self.record:
            self.last_applied[name] = m.detach().clone()
        return m

    def _blit(self, x: torch.Tensor, p: float) -> torch.Tensor:
        if not (self.xflip or self.rotate90 or self.xint):
            return x
        n, c, h, w = x.shape
        dev = x.device
        sel = torch.zeros(n, dtype=torch.bool, device=dev)
        # Doubled, centred integer coordinates of the output pixels: X2 = 2j + 1 − W (exact integers).
        X2 = (2 * torch.arange(w, device=dev) + 1 - w).view(1, 1, w).expand(n, h, w)
        Y2 = (2 * torch.arange(h, device=dev) + 1 - h).view(1, h, 1).expand(n, h, w)
        flip = torch.zeros(n, dtype=torch.bool, device=dev)
        k = torch.zeros(n, dtype=torch.long, device=dev)
        tx = torch.zeros(n, dtype=torch.long, device=dev)
        ty = torch.zeros(n, dtype=torch.long, device=dev)
        if self.xflip:
            m = self._mask("xflip", self.xflip * p, n, dev)
            flip = m & (torch.rand(n, device=dev) < 0.5)
            sel |= flip
        if self.rotate90:
            m = self._mask("rotate90", self.rotate90 * p, n, dev)
            kk = torch.randint(0, 4, (n,), device=dev)
            if h != w:
                kk = kk // 2 * 2  # quarter turns do not map a non-square pixel grid onto itself
            k = torch.where(m, kk, k)
            sel |= k != 0
        if self.xint:
            m = self._mask("xint", self.xint * p, n, dev)
            t = (torch.rand(n, 2, device=dev) * 2 - 1) * self.xint_max
            tx = torch.where(m, torch.round(t[:, 0] * w).long(), tx)
            ty = torch.where(m, torch.round(t[:, 1] * h).long(), ty)
            sel |= (tx != 0) | (ty != 0)
        # Forward: flip, then rotate by k quarter turns, then translate. Source of an output pixel: undo them
        # in reverse order.
        sx, sy = X2 - 2 * tx.view(n, 1, 1), Y2 - 2 * ty.view(n, 1, 1)
        kv = k.view(n, 1, 1)
        # Undo a quarter turn q times: (x, y) -> (y, −x) per turn (inverse of (x, y) -> (−y, x)).
        rx = torch.where(kv == 0, sx, torch.where(kv == 1, sy, torch.where(kv == 2, -sx, -sy)))
        ry = torch.where(kv == 0, sy, torch.where(kv == 1, -sx, torch.where(kv == 2, -sy, sx)))
        rx = torch.where(flip.view(n, 1, 1), -rx, rx)
        ix = _symmetric_index(torch.div(rx + w - 1, 2, rounding_mode="floor"), w)
        iy = _symmetric_index(torch.div(ry + h - 1, 2, rounding_mode="floor"), h)
        idx = (iy * w + ix).reshape(n, 1, h * w).expand(n, c, h * w)
        out = x.reshape(n, c, h * w).gather(2, idx).reshape(n, c, h, w)
        return torch.where(sel.view(n, 1, 1, 1), out, x)

    def _geom(self, x: torch.Tensor, p: float) -> torch.Tensor:
        if not (self.scale or self.rotate or self.aniso or self.xfrac):
            return x
        n, c, h, w = x.shape
        dev = x.device
        inv = _eye3(n, dev)
        sel = torch.zeros(n, dtype=torch.bool, device=dev)
        one = torch.ones(n, device=dev)
        # Forward transforms T1 (first) ... Tk; the sampling map is T1⁻¹ ··· Tk⁻¹ (output -> input).
        if self.scale:
            m = self._mask("scale", self.scale * p, n, dev)
            s = torch.where(m, torch.exp2(torch.randn(n, device=dev) * self.scale_std), one)
            inv = inv @ _scale(1 / s, 1 / s)
            sel |= m
        p_rot = 1 - math.sqrt(max(1 - min(self.rotate * p, 1.0), 0.0))
        if self.rotate:
            m = self._mask("rotate", p_rot, n, dev)
            theta = torch.where(m, (torch.rand(n, device=dev) * 2 - 1) * math.pi * self.rotate_max, 0 * one)
            inv = inv @ _rotate(-theta)
            sel |= m
        if self.aniso:
            m = self._mask("aniso", self.aniso * p, n, dev)
            s = torch.where(m, torch.exp2(torch.randn(n, device=dev) * self.aniso_std), one)
            inv = inv @ _scale(1 / s, s)
            sel |= m
        if self.rotate:
            m = _bernoulli(p_rot, n, dev)
            if self.record:
                self.last_applied["rotate"] = self.last_applied["rotate"] | m
            theta = torch.where(m, (torch.rand(n, device=dev) * 2 - 1) * math.pi * self.rotate_max, 0 * one)
            inv = inv @ _rotate(-theta)
            sel |= m
        if self.xfrac:
            m = self._mask("xfrac", self.xfrac * p, n, dev)
            t = torch.randn(n, 2, device=dev) * self.xfrac_std
            t = torch.where(m.view(n, 1), t, 0 * t)
            inv = inv @ _translate(-t[:, 0] * w, -t[:, 1] * h)
            sel |= m
        idx = sel.nonzero().flatten()
        if idx.numel() == 0:
            return x
        warped = warp_affine(x.index_select(0, idx), inv.index_select(0, idx), mode=self.interp,
                             taps=self.geom_filter)
        return x.index_copy(0, idx, warped)

    def _color(self, x: torch.Tensor, p: float) -> torch.Tensor:
        if not (self.brightness or self.contrast or self.lumaflip or self.hue or self.saturation):
            return x
        n, c, h, w = x.shape
        dev = x.device
        eye = torch.eye(c, device=dev)
        mat = eye.expand(n, c, c).clone()  # y = mat @ x + off
        off = torch.zeros(n, c, device=dev)
        sel = torch.zeros(n, dtype=torch.bool, device=dev)
        v = torch.full((c,), 1 / math.sqrt(c), device=dev)  # luma axis
        vv = torch.outer(v, v)
        one = torch.ones(n, device=dev)

        def then(a: torch.Tensor, b: torch.Tensor | None = None):
            nonlocal mat, off
            mat = a @ mat
            off = (a @ off.unsqueeze(2)).squeeze(2) + (0 if b is None else b)

        if self.brightness:
            m = self._mask("brightness", self.brightness * p, n, dev)
            b = torch.where(m, torch.randn(n, device=dev) * self.brightness_std, 0 * one)
            off = off + b.view(n, 1)
            sel |= m
        if self.contrast:
            m = self._mask("contrast", self.contrast * p, n, dev)
            s = torch.where(m, torch.exp2(torch.randn(n, device=dev) * self.contrast_std), one)
            then(s.view(n, 1, 1) * eye)
            sel |= m
        if self.lumaflip:
            m = self._mask("lumaflip", self.lumaflip * p, n, dev)
            i = (m & (torch.rand(n, device=dev) < 0.5)).float()
            then(eye - 2 * i.view(n, 1, 1) * vv)
            sel |= i > 0
        if self.hue and c == 3:
            m = self._mask("hue", self.hue * p, n, dev)
            theta = torch.where(m, (torch.rand(n, device=dev) * 2 - 1) * math.pi * self.hue_max, 0 * one)
            q = 1 / math.sqrt(3)  # cross-product matrix [v]× of the luma axis
            cross = torch.tensor([[0.0, -q, q], [q, 0.0, -q], [-q, q, 0.0]], device=dev)
            ct, st = torch.cos(theta).view(n, 1, 1), torch.sin(theta).view(n, 1, 1)
            then(ct * eye + st * cross + (1 - ct) * vv)  # Rodrigues' rotation about v
            sel |= m
        if self.saturation and c > 1:
            m = self._mask("saturation", self.saturation * p, n, dev)
            s = torch.where(m, torch.exp2(torch.randn(n, device=dev) * self.saturation_std), one)
            then(vv + s.view(n, 1, 1) * (eye - vv))
            sel |= m
        y = torch.einsum("nij,njhw->nihw", mat.to(x.dtype), x) + off.to(x.dtype).view(n, c, 1, 1)
        return torch.where(sel.view(n, 1, 1, 1), y, x)

    def _filter(self, x: torch.Tensor, p: float) -> torch.Tensor:
        if not self.imgfilter:
            return x
        n, c, h, w = x.shape
        dev = x.device
        gains = torch.ones(n, 4, device=dev)
        sel = torch.zeros(n, dtype=torch.bool, device=dev)
        for b, weight in enumerate(self.imgfilter_bands):
            m = _bernoulli(self.imgfilter * weight * p, n, dev)
            g = torch.exp2(torch.randn(n, device=dev) * self.imgfilter_std)
            gains[:, b] = torch.where(m, g, gains[:, b])
            sel |= m
        if self.record:
            self.last_applied["imgfilter"] = sel.clone()
        idx = sel.nonzero().flatten()
        if idx.numel() == 0:
            return x
        lam = torch.tensor(BAND_ENERGY, device=dev)
        g = gains.index_select(0, idx)
        g = (g / (lam * g.square()).sum(dim=1, keepdim=True).sqrt()).to(x.dtype)
        xs = x.index_select(0, idx)
        bands = self.bands.to(device=dev, dtype=x.dtype)
        if max(h, w) <= DENSE_MAX:
            # Per-image filtering matrices (mirror padding folded in): rows along W, then columns along H.
            mw = torch.einsum("mb,bij->mij", g, _band_matrices(bands, w))
            mh = torch.einsum("mb,bij->mij", g, _band_matrices(bands, h))
            xs = mh.transpose(1, 2).unsqueeze(1) @ (xs @ mw.unsqueeze(1))
        else:
            taps = g @ bands  # [m, K] per-image 1-D filter (symmetric, so convolution = correlation)
            k = taps.shape[1]
            m = xs.shape[0]
            r = k // 2
            xs = _symmetric_pad(xs, r, r, r, r).reshape(1, m * c, h + 2 * r, w + 2 * r)
            wt = taps.repeat_interleave(c, dim=0)  # [m*c, K]
            xs = F.conv2d(xs, wt.view(m * c, 1, 1, k), groups=m * c)
            xs = F.conv2d(xs, wt.view(m * c, 1, k, 1), groups=m * c).reshape(m, c, h, w)
        return x.index_copy(0, idx, xs)

    def _noise(self, x: torch.Tensor, p: float) -> torch.Tensor:
        if not self.noise:
            return x
        n = x.shape[0]
        m = self._mask("noise", self.noise * p, n, x.device)
        sigma = torch.where(m, torch.randn(n, device=x.device).abs() * self.noise_std, torch.zeros(n, device=x.device))
        return torch.where(m.view(n, 1, 1, 1), x + torch.randn_like(x) * sigma.view(n, 1, 1, 1), x)

    def _cutout(self, x: torch.Tensor, p: float) -> torch.Tensor:
        if not self.cutout:
            return x
        n, c, h, w = x.shape
        dev = x.device
        m = self._mask("cutout", self.cutout * p, n, dev)
        centre = torch.rand(n, 2, device=dev)
        ux = ((torch.arange(w, device=dev) + 0.5) / w).view(1, 1, w)
        uy = ((torch.arange(h, device=dev) + 0.5) / h).view(1, h, 1)
        inside = ((ux - centre[:, 0].view(n, 1, 1)).abs() < self.cutout_size / 2) & \
                 ((uy - centre[:, 1].view(n, 1, 1)).abs() < self.cutout_size / 2)
        cut = inside & m.view(n, 1, 1)
        return torch.where(cut.unsqueeze(1), torch.zeros((), device=dev, dtype=x.dtype), x)


# ------------------------------------------------------------------------------------------------ controller

class AdaController:
    """Adjusts an :class:`AugmentPipe`'s strength from the sign of D's outputs on real images.

    Usage in the training loop (every minibatch, after D's main step on augmented reals)::

        ada = AdaController(augment_pipe, target=0.6, interval=4, ada_kimg=500,
                            reduce_fn=lambda t: all_reduce_sum(t, dist_info))
        ...
        ada.update(real_logits)            # = ada.accumulate(real_logits); ada.step()

    ``accumulate(logits)`` adds Σ sign(logits) and the number of logits to per-process sums (on the logits'
    device, no host synchronisation); ``step()`` counts one minibatch and, every ``interval`` minibatches, sums
    the accumulators over processes with ``reduce_fn`` (a callable that sums a tensor across processes in
    place and/or returns the sum; all processes must call ``step`` in lockstep), computes
    r_t = Σ sign / N and moves p by sign(r_t − target) · N / (ada_kimg · 1000), N the number of images
    accumulated (the global batch times ``interval``), clamped to [0, 1], and writes p into the pipe. A
    minibatch split into several rounds calls ``accumulate`` per round and ``step`` once.

    ``state_dict()`` is JSON-able (p, r_t, pending sums, minibatch counter); ``load_state_dict`` restores it
    exactly and writes p into the pipe. The pending sums are this process's own; in multi-process training
    save rank 0's state right after an adjustment (``batches_pending == 0``) or accept that rank 0's pending
    signs (fewer than ``interval`` minibatches' worth) are counted for every process after a resume.
    """

    def __init__(self, pipe: AugmentPipe | None = None, target: float = 0.6, interval: int = 4,
                 ada_kimg: float = 500, p: float | None = None,
                 reduce_fn: Callable[[torch.Tensor], torch.Tensor | None] | None = None):
        if interval < 1:
            raise ValueError("interval must be >= 1")
        self.pipe = pipe
        self.target = float(target)
        self.interval = int(interval)
        self.ada_kimg = float(ada_kimg)
        self.reduce_fn = reduce_fn
        self.p = float(p if p is not None else (float(pipe.p) if pipe is not None else 0.0))
        self.rt: float | None = None
        self.batches_pending = 0
        self._acc: torch.Tensor | None = None  # [Σ sign, count]
        self._write_p()

    def _write_p(self) -> None:
        if self.pipe is not None:
            self.pipe.set_p(self.p)

    @torch.no_grad()
    def accumulate(self, real_logits: torch.Tensor) -> None:
        """Add D's logits on real images (any shape; one value per image)."""
        t = real_logits.detach().float()
        s = torch.stack([torch.sign(t).sum(), torch.tensor(float(t.numel()), device=t.device)])
        self._acc = s if self._acc is None else self._acc.to(s.device) + s

    @torch.no_grad()
    def step(self) -> bool:
        """Count one minibatch; every ``interval`` minibatches adjust p. Returns True when p was adjusted."""
        self.batches_pending += 1
        if self.batches_pending < self.interval:
            return False
        return self.flush()

    @torch.no_grad()
    def flush(self) -> bool:
        """Adjust p now from whatever has been accumulated (a collective call with ``reduce_fn``)."""
        acc = self._acc if self._acc is not None else torch.zeros(2)
        if self.reduce_fn is not None:
            acc = acc.clone()
            out = self.reduce_fn(acc)
            acc = out if isinstance(out, torch.Tensor) else acc
        total, count = (float(v) for v in acc.cpu().tolist())
        self._acc = None
        self.batches_pending = 0
        if count <= 0:
            return False
        self.rt = total / count
        sign = (self.rt > self.target) - (self.rt < self.target)
        self.p = min(max(self.p + sign * count / (self.ada_kimg * 1000), 0.0), 1.0)
        self._write_p()
        return True

    def update(self, real_logits: torch.Tensor) -> bool:
        """``accumulate(real_logits)`` then ``step()``."""
        self.accumulate(real_logits)
        return self.step()

    def state_dict(self) -> dict:
        acc = [0.0, 0.0] if self._acc is None else [float(v) for v in self._acc.cpu().tolist()]
        return {"p": self.p, "rt": self.rt, "sign_sum": acc[0], "count": acc[1],
                "batches_pending": self.batches_pending, "target": self.target, "interval": self.interval,
                "ada_kimg": self.ada_kimg}

    def load_state_dict(self, state: dict) -> None:
        """Restore p, r_t and the pending sums (the target / interval / ada_kimg of this controller are kept)."""
        self.p = float(state["p"])
        self.rt = None if state.get("rt") is None else float(state["rt"])
        self.batches_pending = int(state.get("batches_pending", 0))
        count = float(state.get("count", 0.0))
        self._acc = None if count == 0 and not state.get("sign_sum") else \
            torch.tensor([float(state.get("sign_sum", 0.0)), count])
        self._write_p()
