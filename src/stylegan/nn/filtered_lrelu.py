"""The filtered nonlinearity of the alias-free generator (StyleGAN3): add the bias, upsample by ``up`` with a
low-pass FIR filter, apply the leaky ReLU (slope ``slope``, gain ``gain``, clamp), then low-pass filter and
keep every ``down``-th sample:

    y = down_d( f_d * clamp( gain · lrelu( f_u * up_u(x + b) · u² ) ) )

where ``up_u`` inserts ``u − 1`` zeros after every sample and pads by ``padding`` = (x0, x1, y0, y1), ``*``
is a (valid) convolution and ``down_d`` keeps every d-th sample. Filters are 1-D tap vectors (separable:
the 2-D filter is the outer product) or 2-D arrays (radial filters); None is no filtering.

Two paths compute the same function:

- :func:`filtered_lrelu_ref`, the plain composition: 2-D kernels, full-rate convolutions, then slicing;
- :func:`filtered_lrelu`, the one the networks use: separable filters as two 1-D passes, strided
  convolutions instead of full-rate ones followed by slicing, and the project's convolutions and leaky ReLU
  whose derivatives of every order are again convolutions and masks (R1 differentiates twice). The
  activation's gain goes into the up filter (both activations are positively homogeneous), and without
  gradients the activation and clamp run in place on the full-rate tensor, so that no second full-rate
  tensor is allocated. The upsampling is polyphase (:func:`stylegan.nn.upfirdn.upfirdn2d`: a strided
  transposed convolution per axis, no zero-inserted copy), and without gradients a layer whose full-rate
  tensor would exceed :data:`CHUNK_BYTES` runs over groups of channels.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F

from stylegan.nn.activation import bias_act
from stylegan.nn.conv import conv2d
from stylegan.nn.upfirdn import upfirdn2d


def _check(x: torch.Tensor, padding: Sequence[int], up: int, down: int, slope: float) -> None:
    if x.ndim != 4:
        raise ValueError(f"filtered_lrelu expects an NCHW tensor, got shape {tuple(x.shape)}")
    if len(padding) != 4:
        raise ValueError(f"padding must be (x0, x1, y0, y1), got {padding!r}")
    if up < 1 or down < 1:
        raise ValueError(f"up and down must be >= 1, got {up} and {down}")
    if slope not in (0.2, 1.0):
        raise ValueError(f"slope must be 0.2 (leaky ReLU) or 1 (linear), got {slope}")


def _kernel2d(f: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor | None:
    if f is None:
        return None
    f = f.to(x.dtype)
    return f.outer(f) if f.ndim == 1 else f


def _fir_ref(x: torch.Tensor, f: torch.Tensor | None, up: int, down: int, padding: Sequence[int],
             gain: float) -> torch.Tensor:
    """Plain upfirdn: zero insertion, padding (negative crops), true convolution with the 2-D kernel × gain,
    every ``down``-th sample."""
    n, c, h, w = x.shape
    if up > 1:
        z = x.new_zeros(n, c, h * up, w * up)
        z[:, :, ::up, ::up] = x
        x = z
    x = F.pad(x, list(padding))
    k = _kernel2d(f, x)
    if k is not None:
        k = (k * gain).flip(0, 1)
        x = F.conv2d(x, k.expand(c, 1, *k.shape), groups=c)
    elif gain != 1:
        x = x * gain
    return x[:, :, ::down, ::down]


def filtered_lrelu_ref(x: torch.Tensor, fu: torch.Tensor | None, fd: torch.Tensor | None, b: torch.Tensor | None,
                       up: int = 1, down: int = 1, padding: Sequence[int] = (0, 0, 0, 0), gain: float = 2 ** 0.5,
                       slope: float = 0.2, clamp: float | None = None) -> torch.Tensor:
    """The reference composition (see the module docstring), with PyTorch's own operations only."""
    _check(x, padding, up, down, slope)
    if b is not None:
        x = x + b.to(x.dtype).reshape(1, -1, 1, 1)
    x = _fir_ref(x, fu, up, 1, padding, up * up)
    x = torch.where(x >= 0, x, x * slope) * gain
    if clamp is not None:
        x = x.clamp(-clamp, clamp)
    return _fir_ref(x, fd, 1, down, (0, 0, 0, 0), 1.0)


def _down_fast(x: torch.Tensor, fd: torch.Tensor | None, down: int) -> torch.Tensor:
    if fd is None or fd.ndim == 1:
        return upfirdn2d(x, fd, down=down)
    c = x.shape[1]
    k = fd.to(x.dtype).flip(0, 1)
    return conv2d(x, k.expand(c, 1, *k.shape), stride=down, groups=c)


def filtered_lrelu(x: torch.Tensor, fu: torch.Tensor | None, fd: torch.Tensor | None, b: torch.Tensor | None,
                   up: int = 1, down: int = 1, padding: Sequence[int] = (0, 0, 0, 0), gain: float = 2 ** 0.5,
                   slope: float = 0.2, clamp: float | None = None) -> torch.Tensor:
    """The filtered leaky ReLU (see the module docstring); equal to :func:`filtered_lrelu_ref`, with its
    first and second derivatives. ``fu`` must be separable (1-D) or None; ``fd`` may be 1-D, 2-D or None."""
    _check(x, padding, up, down, slope)
    if fu is not None and fu.ndim != 1:
        raise ValueError("filtered_lrelu: the upsampling filter must be separable (1-D taps)")
    if gain <= 0:
        raise ValueError(f"gain must be positive, got {gain}")
    args = (fu, fd, up, down, padding, gain, slope, clamp)
    full_rate = x.shape[0] * x.shape[1] * (x.shape[2] * up + padding[2] + padding[3]) \
        * (x.shape[3] * up + padding[0] + padding[1]) * x.element_size()
    if not (torch.is_grad_enabled() and (x.requires_grad or (b is not None and b.requires_grad))) \
            and full_rate > CHUNK_BYTES and x.shape[1] > 1:
        return _by_channel_chunks(x, b, full_rate, args)
    return _filtered_lrelu(x, b, *args)


#: Without gradients, a filtered leaky ReLU whose upsampled (full-rate) tensor would be larger than this runs
#: over groups of channels (the filters act on each channel alone), so that only one group's full-rate tensors
#: are alive at a time: at 256² a StyleGAN3 layer's full-rate tensors are several times its input.
CHUNK_BYTES = 128 * 2 ** 20


def _by_channel_chunks(x: torch.Tensor, b: torch.Tensor | None, full_rate: int, args) -> torch.Tensor:
    c = x.shape[1]
    step = max(1, c * CHUNK_BYTES // full_rate)
    first = _filtered_lrelu(x[:, :step], None if b is None else b[:step], *args)
    layout = torch.channels_last if first.is_contiguous(memory_format=torch.channels_last) and \
        not first.is_contiguous() else torch.contiguous_format
    out = torch.empty(first.shape[0], c, *first.shape[2:], dtype=first.dtype, device=first.device,
                      memory_format=layout)
    out[:, :step] = first
    del first
    for i in range(step, c, step):
        out[:, i:i + step] = _filtered_lrelu(x[:, i:i + step], None if b is None else b[i:i + step], *args)
    return out


def _filtered_lrelu(x: torch.Tensor, b: torch.Tensor | None, fu, fd, up, down, padding, gain, slope,
                    clamp) -> torch.Tensor:
    given = x
    if b is not None:
        x = x + b.to(x.dtype).reshape(1, -1, 1, 1)
    # Both activations are positively homogeneous: the gain goes into the up filter.
    x = upfirdn2d(x, fu, up=up, padding=tuple(padding), gain=up * up * gain)
    if (x.requires_grad and torch.is_grad_enabled()) or x is given:
        x = bias_act(x, None, act="lrelu" if slope != 1 else "linear", gain=1.0, clamp=clamp)
    else:  # nothing to differentiate, and a tensor of our own: in place, no second full-rate tensor
        if slope != 1:
            x = F.leaky_relu_(x, slope)
        if clamp is not None:
            x = x.clamp_(-clamp, clamp)
    return _down_fast(x, fd, down)
