"""FIR resampling: upsample, pad, FIR filter, downsample (upfirdn2d), and convolutions that resample.

The filter is separable: it is given as a 1-D tap vector ``f`` and applied along rows and columns (the 2-D
filter is the outer product ``f ⊗ f``, as for StyleGAN's [1, 3, 3, 1]). Padding counts are
``(x0, x1, y0, y1)`` and may be negative (cropping).

Formulas: docs/design.md §1.5.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from stylegan.nn.conv import conv2d, conv_transpose2d

DEFAULT_FILTER = (1, 3, 3, 1)


def setup_filter(taps: Sequence[float] = DEFAULT_FILTER, normalize: bool = True) -> torch.Tensor:
    """1-D float32 filter taps; with ``normalize`` the 2-D outer product sums to 1."""
    f = torch.as_tensor(list(taps), dtype=torch.float32)
    if f.ndim != 1 or f.numel() == 0:
        raise ValueError("filter taps must be a non-empty 1-D sequence")
    if normalize:
        f = f / f.sum()
    return f


def _pad4(padding: int | Sequence[int]) -> tuple[int, int, int, int]:
    if isinstance(padding, int):
        return (padding, padding, padding, padding)
    p = tuple(int(v) for v in padding)
    if len(p) == 2:
        return (p[0], p[0], p[1], p[1])
    if len(p) != 4:
        raise ValueError(f"padding must have 1, 2 or 4 entries, got {padding!r}")
    return p  # type: ignore[return-value]


def upfirdn2d(
    x: torch.Tensor,
    f: torch.Tensor | None,
    up: int = 1,
    down: int = 1,
    padding: int | Sequence[int] = 0,
    gain: float = 1.0,
) -> torch.Tensor:
    """Upsample by zero insertion, pad, convolve with the separable FIR filter ``f`` (times ``gain`` in 2-D),
    then keep every ``down``-th sample. ``x`` is NCHW."""
    n, c, h, w = x.shape
    px0, px1, py0, py1 = _pad4(padding)
    if up > 1 and f is not None:
        return _upfirdn2d_polyphase(x, f, up, down, (px0, px1, py0, py1), gain)
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, [0, up - 1, 0, 0, 0, up - 1])
        x = x.reshape(n, c, h * up, w * up)
    # Symmetric zero padding is done by the filter's convolutions themselves (no padded copy of x: a fill and
    # a copy pass saved); other padding, and cropping, by F.pad.
    by_conv = f is not None and px0 == px1 >= 0 and py0 == py1 >= 0
    if not by_conv:
        x = F.pad(x, [px0, px1, py0, py1])  # negative pads crop
    if f is None:
        return x[:, :, ::down, ::down] * gain if (down > 1 or gain != 1) else x
    taps = (f * (gain ** 0.5)).to(x.dtype).flip(0)  # true convolution; gain split between the two passes
    k = taps.numel()
    x = conv2d(x, taps.reshape(1, 1, 1, k).expand(c, 1, 1, k), stride=(1, down), padding=(0, px0 if by_conv else 0),
               groups=c)
    return conv2d(x, taps.reshape(1, 1, k, 1).expand(c, 1, k, 1), stride=(down, 1),
                  padding=(py0 if by_conv else 0, 0), groups=c)


def _up_pass(x: torch.Tensor, taps: torch.Tensor, up: int, p0: int, p1: int, dim: int) -> torch.Tensor:
    """Zero insertion by ``up``, padding (p0, p1) and the true convolution with ``taps`` along ``dim`` (2: rows,
    3: columns), as one strided transposed convolution: the zeros are never stored or multiplied.

    Zero insertion then true convolution gives ``y[m] = Σ_i x[i] · t[m − p0 + k − 1 − i·up]``; the transposed
    convolution gives ``out[j] = Σ_i x[i] · t[j − i·up]``, so ``y`` is ``out`` less ``k − 1 − p0`` samples on the
    left and ``k − up − p1`` on the right (a negative count: zeros added)."""
    c, k = x.shape[1], taps.numel()
    left, right = k - 1 - p0, k - up - p1
    crop = max(min(left, right), 0)  # the symmetric part, cropped by the transposed convolution itself
    shape = (1, 1, k, 1) if dim == 2 else (1, 1, 1, k)
    stride, padding = ((up, 1), (crop, 0)) if dim == 2 else ((1, up), (0, crop))
    x = conv_transpose2d(x, taps.reshape(shape).expand(c, *shape[1:]), stride=stride, padding=padding, groups=c)
    left, right = left - crop, right - crop
    if left or right:
        pads = [0, 0, -left, -right] if dim == 2 else [-left, -right]
        x = F.pad(x, pads)  # negative pads crop
    return x


def _upfirdn2d_polyphase(x: torch.Tensor, f: torch.Tensor, up: int, down: int,
                         padding: tuple[int, int, int, int], gain: float) -> torch.Tensor:
    """:func:`upfirdn2d` with ``up > 1``: each axis's upsampling and filter as one transposed convolution
    (:func:`_up_pass`), then every ``down``-th sample. The same function as zero insertion, padding and two
    full-rate filter passes, with neither the zero-inserted nor the padded full-rate copy (StyleGAN3's filtered
    leaky ReLU keeps ≈ 4× less in memory at its peak) and without the multiplications by the inserted zeros."""
    px0, px1, py0, py1 = padding
    taps = (f * (gain ** 0.5)).to(x.dtype)  # the transposed convolution needs no flip; gain split in two
    x = _up_pass(x, taps, up, px0, px1, dim=3)
    x = _up_pass(x, taps, up, py0, py1, dim=2)
    return x[:, :, ::down, ::down] if down > 1 else x


def upsample2d(x: torch.Tensor, f: torch.Tensor, up: int = 2) -> torch.Tensor:
    """Upsample by ``up`` with the FIR filter (output size ``up`` × input)."""
    k = f.numel()
    p0, p1 = (k + up - 1) // 2, (k - up) // 2
    return upfirdn2d(x, f, up=up, padding=(p0, p1, p0, p1), gain=up * up)


def downsample2d(x: torch.Tensor, f: torch.Tensor, down: int = 2) -> torch.Tensor:
    """Filter with the FIR filter, then downsample by ``down`` (output size input / ``down``)."""
    k = f.numel()
    p0, p1 = (k - down + 1) // 2, (k - down) // 2
    return upfirdn2d(x, f, down=down, padding=(p0, p1, p0, p1))


def conv2d_resample(
    x: torch.Tensor,
    w: torch.Tensor,
    f: torch.Tensor | None = None,
    up: int = 1,
    down: int = 1,
    padding: int = 0,
    groups: int = 1,
) -> torch.Tensor:
    """Convolution with ``w`` ([out, in/groups, kh, kw]) fused with FIR up- or downsampling.

    - ``up > 1``: a stride-``up`` transposed convolution (weight used as the transposed kernel, i.e. the
      true convolution of the zero-upsampled input), then the FIR filter with gain ``up²``;
    - ``down > 1``: the FIR filter, then a stride-``down`` convolution;
    - 1×1 kernels resample after (up) or before (down) the convolution, which is cheaper.
    Output size is ``in · up / down`` for ``padding = k // 2``.
    """
    out_ch, in_per_group, kh, kw = w.shape
    if up > 1 and down > 1:
        raise ValueError("conv2d_resample: up and down together are not supported")
    if (up > 1 or down > 1) and f is None:
        raise ValueError("conv2d_resample: resampling needs a filter")
    fw = f.numel() if f is not None else 1
    p0 = p1 = padding
    if up > 1:
        p0 += (fw + up - 1) // 2
        p1 += (fw - up) // 2
    if down > 1:
        p0 += (fw - down + 1) // 2
        p1 += (fw - down) // 2

    if kh == 1 and kw == 1 and down > 1:
        x = upfirdn2d(x, f, down=down, padding=(p0, p1, p0, p1))
        return conv2d(x, w, groups=groups)
    if kh == 1 and kw == 1 and up > 1:
        x = conv2d(x, w, groups=groups)
        return upfirdn2d(x, f, up=up, padding=(p0, p1, p0, p1), gain=up * up)
    if down > 1:
        x = upfirdn2d(x, f, padding=(p0, p1, p0, p1))
        return conv2d(x, w, stride=down, groups=groups)
    if up > 1:
        # [out, in/g, k, k] -> [in, out/g, k, k] per group, the layout conv_transpose2d expects.
        wt = w.reshape(groups, out_ch // groups, in_per_group, kh, kw).transpose(1, 2)
        wt = wt.reshape(groups * in_per_group, out_ch // groups, kh, kw)
        p0 -= kw - 1
        p1 -= kw - up
        pt = max(min(-p0, -p1), 0)
        x = conv_transpose2d(x, wt, stride=up, padding=pt, groups=groups)
        return upfirdn2d(x, f, padding=(p0 + pt, p1 + pt, p0 + pt, p1 + pt), gain=up * up)
    if p0 == p1:
        return conv2d(x, w, padding=p0, groups=groups)
    return conv2d(F.pad(x, [p0, p1, p0, p1]), w, groups=groups)
