"""Equivariance metrics of alias-free generators (StyleGAN3, Karras et al. 2021, appendix on equivariance
metrics): EQ-T (integer translations), EQ-T_frac (fractional translations) and EQ-R (rotations).

For a latent w and a transform t of the plane, the synthesis network is run twice: on the plain input, giving
``g(w)``, and with the Fourier input's ``transform`` set to t, giving ``g(t[z₀]; w)``. Equivariance means the
second is the first transformed, ``t[g(w)]``. The metric is a PSNR in dB::

    EQ = 10 · log10( I² / E_{w, t, c, p ∈ V(t)} [ (g(t[z₀]; w)_c(p) − t[g(w)]_c(p))² ] ),   I = 2

(images in [−1, 1], so the peak-to-peak range I is 2); the expectation runs over latents w ~ W (the mapping of
z ~ N(0, 1)), transforms t, channels c and the pixels p of the valid region V(t): the pixels of the output
whose transformed value reads only pixels inside the original image. Both images are masked by V(t); each
image's mean squared error is taken over its valid region, then averaged over the images. A mean squared
error of 0 (exact equivariance) gives :data:`PSNR_CAP_DB` instead of infinity.

Transforms, in image widths and with the same 3×3 matrix ``T = input_transform(...)`` for the input and the
output (the input samples its signal at ``T·p``, so the transformed output at pixel p is ``g(w)`` at ``T·p``):

- EQ-T: translation ``(tx, ty) ~ U[−1/8, 1/8]²`` of the image size, rounded to whole pixels; the output is
  shifted by whole pixels, no resampling; V(t) is the pixels whose source pixel lies inside the image.
- EQ-T_frac: the same translation unrounded; the output is resampled (:func:`resample`).
- EQ-R: rotation by an angle ~ U(−π, π) about the image centre; the output is resampled (:func:`resample`).

One transform is drawn per batch of images (the input's ``transform`` is one matrix for the whole batch).
Formulas and choices: docs/metrics.md, "Equivariance".
"""
from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator

import torch
from tqdm import tqdm

from stylegan.metrics.stats import _generator_device, label_sampler
from stylegan.networks.stylegan3 import input_transform

#: Peak-to-peak range of the images (pixels in [−1, 1]) in the PSNR.
PSNR_PEAK = 2.0
#: The PSNR reported for a mean squared error of exactly 0 (and the largest one reported).
PSNR_CAP_DB = 200.0
#: Largest translation along each axis, as a fraction of the image size; rotations span ±π.
MAX_TRANSLATION = 1 / 8
#: The resampling kernel: a sinc windowed by a Kaiser window of this half-width in pixels and shape.
RESAMPLE_RADIUS, KAISER_BETA = 8, 6.0
#: Smallest image side EQ-T_frac and EQ-R accept: twice the filter's footprint, so that every translation
#: and rotation leaves valid pixels.
MIN_RESAMPLED_RESOLUTION = 4 * RESAMPLE_RADIUS

KINDS = ("int", "frac", "rot")


class NotAliasFree(ValueError):
    """The network has no Fourier input with a ``transform``: the metric does not apply to it."""


def input_module(G) -> torch.nn.Module:
    """``G.synthesis.input``, the module whose 3×3 ``transform`` buffer moves the input signal; raises
    :class:`NotAliasFree` (one line naming what G is) for any other network."""
    inp = getattr(getattr(G, "synthesis", None), "input", None)
    transform = getattr(inp, "transform", None)
    if not (isinstance(transform, torch.Tensor) and tuple(transform.shape) == (3, 3)):
        arch = getattr(getattr(G, "cfg", None), "arch", None)
        what = f"arch {arch!r}" if arch else type(G).__name__
        raise NotAliasFree(f"needs a StyleGAN3 (alias-free) generator, whose input takes a transform; this "
                           f"network is {what}")
    return inp


@contextlib.contextmanager
def transformed_input(inp: torch.nn.Module, matrix: torch.Tensor) -> Iterator[None]:
    """Set ``inp.transform`` to ``matrix`` inside the block and restore the previous value after it."""
    saved = inp.transform.clone()
    inp.transform.copy_(matrix)
    try:
        yield
    finally:
        inp.transform.copy_(saved)


def psnr(mse: float) -> float:
    """``10 · log10(PSNR_PEAK² / mse)`` in dB, :data:`PSNR_CAP_DB` at most (also for mse = 0)."""
    if mse <= 0:
        return PSNR_CAP_DB
    return min(10 * math.log10(PSNR_PEAK ** 2 / mse), PSNR_CAP_DB)


def masked_mse(a: torch.Tensor, b: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """[N]: per image, the mean of ``(a − b)²`` over the channels and the pixels where ``mask`` [H, W] is
    True (both images masked alike)."""
    m = mask.to(a.dtype)
    return ((a - b).square() * m).sum(dim=(1, 2, 3)).double() / (m.sum().double() * a.shape[1])


def integer_shift(img: torch.Tensor, dx: int, dy: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The image moved ``dx`` pixels right and ``dy`` down, ``out[y, x] = img[y − dy, x − dx]``, and its valid
    region (the bool [H, W] mask of the pixels whose source lies inside the image); zero outside it."""
    h, w = img.shape[-2:]
    out = torch.zeros_like(img)
    mask = torch.zeros(h, w, dtype=torch.bool, device=img.device)
    ys, yd = slice(max(-dy, 0), h - max(dy, 0)), slice(max(dy, 0), h - max(-dy, 0))
    xs, xd = slice(max(-dx, 0), w - max(dx, 0)), slice(max(dx, 0), w - max(-dx, 0))
    out[..., yd, xd] = img[..., ys, xs]
    mask[yd, xd] = True
    return out, mask


def kaiser_sinc(x: torch.Tensor, radius: int = RESAMPLE_RADIUS, beta: float = KAISER_BETA) -> torch.Tensor:
    """The interpolation kernel ``sinc(x) · I0(β √(1 − (x/r)²)) / I0(β)`` for ``|x| < r``, 0 beyond."""
    window = torch.special.i0(beta * (1 - (x / radius).square()).clamp(min=0).sqrt()) / float(
        torch.special.i0(torch.tensor(beta, dtype=torch.float64)))
    return torch.where(x.abs() < radius, torch.sinc(x) * window, torch.zeros_like(x))


def source_positions(matrix: torch.Tensor, h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(sx, sy), each float64 [H, W] on the CPU: where, in pixel indices of the original image, output pixel
    (y, x) reads it: ``T·p`` for p the pixel's centre in image widths (``(x + ½ − W/2) / W``, likewise y with
    H), back in pixel indices."""
    m = matrix.detach().cpu().double()
    px = (torch.arange(w, dtype=torch.float64) + 0.5 - w / 2) / w
    py = (torch.arange(h, dtype=torch.float64) + 0.5 - h / 2) / h
    py, px = torch.meshgrid(py, px, indexing="ij")
    qx = m[0, 0] * px + m[0, 1] * py + m[0, 2]
    qy = m[1, 0] * px + m[1, 1] * py + m[1, 2]
    return qx * w + w / 2 - 0.5, qy * h + h / 2 - 0.5


def resample(img: torch.Tensor, matrix: torch.Tensor, radius: int = RESAMPLE_RADIUS
             ) -> tuple[torch.Tensor, torch.Tensor]:
    """The image transformed by ``matrix`` (output pixel p takes the value at ``T·p``, :func:`source_positions`)
    with band-limited interpolation, and its valid region (bool [H, W]); zero outside it.

    The value at a source position s is ``Σ_q img[q] · k(sx − qx) · k(sy − qy) / (Σ k(sx − qx) · Σ k(sy −
    qy))`` over the 2r × 2r pixels q nearest s, k = :func:`kaiser_sinc`: the ideal (sinc) interpolation of the
    image — upsampling it without loss, moving it and sampling it again at the pixel centres — with a finite
    window, the weights normalized per axis so that a constant image stays constant. Valid pixels are those
    whose 2r × 2r footprint lies inside the image, so that no value depends on what lies beyond its border.
    Positions and weights are computed in float64 on the CPU, the sums in the image's dtype and device."""
    h, w = img.shape[-2:]
    sx, sy = source_positions(matrix, h, w)
    x0, y0 = sx.floor(), sy.floor()
    mask = (x0 - radius + 1 >= 0) & (x0 + radius <= w - 1) & (y0 - radius + 1 >= 0) & (y0 + radius <= h - 1)
    taps = torch.arange(-radius + 1, radius + 1, dtype=torch.float64)
    kx = kaiser_sinc(sx.unsqueeze(-1) - (x0.unsqueeze(-1) + taps), radius)  # [H, W, 2r]
    ky = kaiser_sinc(sy.unsqueeze(-1) - (y0.unsqueeze(-1) + taps), radius)
    to = {"device": img.device, "dtype": img.dtype}
    kx, ky = (kx / kx.sum(dim=-1, keepdim=True)).to(**to), (ky / ky.sum(dim=-1, keepdim=True)).to(**to)
    x0, y0 = x0.long().to(img.device), y0.long().to(img.device)
    flat = img.flatten(2)
    out = torch.zeros_like(flat)
    for j in range(2 * radius):
        iy = (y0 + (j - radius + 1)).clamp(0, h - 1)
        for i in range(2 * radius):
            ix = (x0 + (i - radius + 1)).clamp(0, w - 1)
            out += flat[:, :, (iy * w + ix).flatten()] * (ky[..., j] * kx[..., i]).flatten()
    mask = mask.to(img.device)
    return out.reshape(img.shape) * mask, mask


def draw_transform(kind: str, resolution: int, gen: torch.Generator
                   ) -> tuple[torch.Tensor, Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]]:
    """A random transform of ``kind`` (module docstring): the input's matrix and the function that transforms
    an output image alike, returning the transformed image and its valid region."""
    if kind == "rot":
        degrees = (torch.rand([], generator=gen, dtype=torch.float64).item() * 2 - 1) * 180
        matrix = input_transform(rotate=degrees)
        return matrix, lambda img: resample(img, matrix)
    t = (torch.rand(2, generator=gen, dtype=torch.float64) * 2 - 1) * MAX_TRANSLATION
    if kind == "int":
        dx, dy = (int(v) for v in (t * resolution).round().tolist())
        return input_transform(translate=(dx / resolution, dy / resolution)), lambda img: integer_shift(img, dx, dy)
    if kind == "frac":
        matrix = input_transform(translate=tuple(t.tolist()))
        return matrix, lambda img: resample(img, matrix)
    raise ValueError(f"equivariance kind must be one of {', '.join(KINDS)}, got {kind!r}")


@torch.no_grad()
def equivariance_errors(G, kind: str, num_samples: int, batch_size: int = 32, seed: int = 0,
                        truncation_psi: float = 1.0, labels=None, progress: bool = True) -> tuple[torch.Tensor, float]:
    """Per image, the mean squared error of the module docstring over its valid region (float64 [num_samples]),
    and the mean fraction of the pixels that were valid. One transform per batch; latents and transforms
    come from a generator seeded with ``seed``."""
    inp = input_module(G)
    if kind in ("frac", "rot") and G.resolution < MIN_RESAMPLED_RESOLUTION:
        raise ValueError(f"{G.resolution}² images are too small to resample: the filter reads "
                         f"{2 * RESAMPLE_RADIUS}² pixels around each one, which needs images of at least "
                         f"{MIN_RESAMPLED_RESOLUTION}²")
    device = _generator_device(G)
    labels = labels or label_sampler(G, None, seed)
    gen = torch.Generator().manual_seed(seed)
    errors, valid, done = [], 0.0, 0
    bar = tqdm(total=num_samples, desc=f"eq {kind}", unit="img", disable=not progress, leave=False)
    with transformed_input(inp, torch.eye(3)):
        while done < num_samples:
            n = min(batch_size, num_samples - done)
            z = torch.randn(n, G.z_dim, generator=gen).to(device)
            c = labels(n)
            ws = G.mapping(z, c.to(device) if c is not None else None, truncation_psi=truncation_psi)
            matrix, transform = draw_transform(kind, G.resolution, gen)
            inp.transform.copy_(torch.eye(3))
            expected, mask = transform(G.synthesis(ws, noise_mode="const").float())
            inp.transform.copy_(matrix)
            actual = G.synthesis(ws, noise_mode="const").float()
            errors.append(masked_mse(actual, expected, mask).cpu())
            valid += mask.float().mean().item() * n
            done += n
            bar.update(n)
    bar.close()
    return torch.cat(errors), valid / num_samples


def equivariance_psnr(G, kind: str, num_samples: int, **kwargs) -> tuple[float, float]:
    """EQ-T (``kind="int"``), EQ-T_frac (``"frac"``) or EQ-R (``"rot"``) in dB: :func:`psnr` of the mean of
    :func:`equivariance_errors`, and the mean valid fraction of the pixels."""
    errors, valid = equivariance_errors(G, kind, num_samples, **kwargs)
    return psnr(errors.mean().item()), valid
