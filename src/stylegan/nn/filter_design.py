"""Low-pass FIR filter design for the alias-free (StyleGAN3) layers: Kaiser-windowed sinc (separable) and
Kaiser-windowed jinc (radially symmetric) filters, computed in float64 and returned as float32 tensors.

Kaiser's empirical formulas (Oppenheim & Schafer, §7.5.3), for ``numtaps`` taps and a transition band of
``width`` as a fraction of the Nyquist frequency:

- attenuation ``A = 2.285 · (numtaps − 1) · π · width + 7.95`` dB;
- window shape ``β = 0.1102 (A − 8.7)`` if ``A > 50``, ``0.5842 (A − 21)^0.4 + 0.07886 (A − 21)`` if
  ``21 ≤ A ≤ 50``, else 0.

The separable filter is ``h[n] = 2 fc/fs · sinc(2 fc/fs · (n − (numtaps − 1)/2)) · kaiser[n]`` normalized to
unit sum; the radial one is ``h(r) = J1(2π fc r) / (π r) · kaiser[i] · kaiser[j]`` on the grid of tap
positions ``r = |(i, j) − (numtaps − 1)/2| / fs``, normalized to unit sum.
"""
from __future__ import annotations

import math

import numpy as np
import torch


def kaiser_attenuation(numtaps: int, width: float) -> float:
    """Stopband attenuation in dB of a Kaiser-window FIR filter; ``width`` is relative to Nyquist."""
    return 2.285 * (numtaps - 1) * math.pi * width + 7.95


def kaiser_beta(attenuation: float) -> float:
    """The Kaiser window's β for a stopband attenuation in dB (Kaiser's formula)."""
    a = attenuation
    if a > 50:
        return 0.1102 * (a - 8.7)
    if a > 21:
        return 0.5842 * (a - 21) ** 0.4 + 0.07886 * (a - 21)
    return 0.0


def _check(cutoff: float, width: float, fs: float) -> None:
    if not (0 < cutoff < fs / 2):
        raise ValueError(f"cutoff must lie in (0, fs/2) = (0, {fs / 2}), got {cutoff}")
    if width <= 0:
        raise ValueError(f"transition width must be positive, got {width}")


def _window(numtaps: int, width: float, fs: float) -> np.ndarray:
    return np.kaiser(numtaps, kaiser_beta(kaiser_attenuation(numtaps, width / (fs / 2))))


def _jinc(cutoff: float, r: np.ndarray) -> np.ndarray:
    """``J1(2π fc r) / (π r)``, with its limit ``fc`` at ``r = 0``."""
    rt = torch.from_numpy(r)
    safe = torch.where(rt > 0, rt, torch.ones_like(rt))
    v = torch.special.bessel_j1(2 * math.pi * cutoff * safe) / (math.pi * safe)
    return torch.where(rt > 0, v, torch.full_like(rt, cutoff)).numpy()


def lowpass_filter(numtaps: int, cutoff: float, width: float, fs: float, radial: bool = False) -> torch.Tensor | None:
    """Kaiser-windowed low-pass filter: 1-D taps (separable, applied along rows and columns) or, with
    ``radial``, a [numtaps, numtaps] radially symmetric jinc filter. ``cutoff`` and ``width`` (the full
    transition band) are in the units of the sampling rate ``fs``. One tap means no filter: None."""
    if not isinstance(numtaps, int) or numtaps < 1:
        raise ValueError(f"numtaps must be a positive integer, got {numtaps!r}")
    if numtaps == 1:
        return None
    _check(cutoff, width, fs)
    pos = np.arange(numtaps, dtype=np.float64) - (numtaps - 1) / 2
    w = _window(numtaps, width, fs)
    if radial:
        x = pos / fs
        f = _jinc(cutoff, np.hypot(*np.meshgrid(x, x))) * np.outer(w, w)
    else:
        rel = cutoff / (fs / 2)
        f = rel * np.sinc(rel * pos) * w
    return torch.as_tensor(f / f.sum(), dtype=torch.float32)


def gaussian_taps(sigma: float) -> torch.Tensor | None:
    """1-D blur taps ``2^(−(x/σ)²)`` for ``x = −⌊3σ⌋ … ⌊3σ⌋``, normalized to unit sum (the discriminator's
    input blur of StyleGAN3-R); None when ``⌊3σ⌋ = 0``."""
    size = int(math.floor(sigma * 3)) if sigma > 0 else 0
    if size == 0:
        return None
    f = torch.exp2(-(torch.arange(-size, size + 1, dtype=torch.float64) / sigma).square())
    return (f / f.sum()).float()
