"""Bias + activation with gain and optional clamp. Formulas: docs/design.md §1.2."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from stylegan.nn.conv import fast_autograd_enabled

#: Default gain of each activation: leaky ReLU keeps unit variance with sqrt(2).
DEFAULT_GAIN = {"linear": 1.0, "lrelu": math.sqrt(2.0)}
LRELU_SLOPE = 0.2


class _LeakyReLU(torch.autograd.Function):
    """Leaky ReLU whose derivative is a constant mask, so that second derivatives (R1, path length) do not
    flow back through the forward activations: its derivative with respect to x is 0 almost everywhere, but
    PyTorch's own formula still sends a tensor of zeros through every layer before it, a full backward pass
    of convolutions on zeros. The output is saved (its sign is the input's), so no extra memory is kept."""

    @staticmethod
    def forward(ctx, x):
        y = F.leaky_relu(x, LRELU_SLOPE)
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, gy):
        (y,) = ctx.saved_tensors
        return torch.ops.aten.leaky_relu_backward(gy, y.detach(), LRELU_SLOPE, True)


def leaky_relu(x: torch.Tensor) -> torch.Tensor:
    """``F.leaky_relu(x, 0.2)``; under :func:`stylegan.nn.conv.reference_autograd` PyTorch's own."""
    if fast_autograd_enabled() and torch.is_grad_enabled() and x.requires_grad:
        return _LeakyReLU.apply(x)
    return F.leaky_relu(x, LRELU_SLOPE)


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    act: str = "linear",
    gain: float | None = None,
    clamp: float | None = None,
    dim: int = 1,
    scale: torch.Tensor | None = None,
    add: torch.Tensor | None = None,
) -> torch.Tensor:
    """``clamp(act(x · scale + add + b) · gain)``, with ``b`` broadcast along ``dim``.

    ``gain`` defaults to the activation's own gain (sqrt(2) for ``lrelu``, 1 for ``linear``); ``clamp``
    limits the output to ``[-clamp, clamp]`` (used with reduced precision to avoid overflow). ``scale``
    ([N, C], e.g. the demodulation coefficients) and ``add`` (broadcastable to x, e.g. scaled noise) are
    optional. Both activations are positively homogeneous, so a positive gain is folded into ``scale``,
    ``add`` and ``b`` and the whole is three passes over x (multiply-add, add, activation) instead of six.
    """
    if act not in DEFAULT_GAIN:
        raise ValueError(f"unknown activation {act!r}; expected one of {sorted(DEFAULT_GAIN)}")
    gain = DEFAULT_GAIN[act] if gain is None else float(gain)
    g = 1.0
    if gain > 0:  # fold: act(v) * gain == act(v * gain) for gain > 0
        g, gain = gain, 1.0
    shape = [1] * x.ndim
    shape[dim] = -1
    bias = None if b is None else (b.to(x.dtype) * g if g != 1 else b.to(x.dtype)).reshape(shape)
    if scale is not None:
        sc = scale.to(x.dtype) * g if g != 1 else scale.to(x.dtype)
        sc = sc.reshape(*scale.shape, *([1] * (x.ndim - scale.ndim)))
        x = torch.addcmul(bias, x, sc) if bias is not None else x * sc
    elif bias is not None:
        x = torch.add(bias, x, alpha=g) if g != 1 else x + bias
    elif g != 1:
        x = x * g
    if add is not None:
        x = x + (add.to(x.dtype) * g if g != 1 else add.to(x.dtype))
    if act == "lrelu":
        x = leaky_relu(x)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x
