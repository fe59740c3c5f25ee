"""Adaptive instance normalization (StyleGAN):

    AdaIN(x, y) = y_s · (x − μ(x)) / σ(x) + y_b,

per sample and feature map, with the style (y_s, y_b) = A(w) a learned affine map of w whose y_s bias starts
at 1. StyleGAN2 replaced it by weight demodulation (:mod:`stylegan.nn.modconv`).

Formulas: docs/design.md §1.7.
"""
from __future__ import annotations

import torch
from torch import nn

from stylegan.nn.equalized import EqualizedLinear

INSTANCE_NORM_EPS = 1e-8


def instance_norm(x: torch.Tensor, eps: float = INSTANCE_NORM_EPS) -> torch.Tensor:
    """Each feature map of each sample to zero mean and unit standard deviation over its pixels."""
    x = x - x.mean(dim=[2, 3], keepdim=True)
    return x * (x.square().mean(dim=[2, 3], keepdim=True) + eps).rsqrt()


def adain(x: torch.Tensor, scale: torch.Tensor, shift: torch.Tensor) -> torch.Tensor:
    """``scale · instance_norm(x) + shift`` with ``scale``, ``shift`` [N, C]: the output's feature map i has
    mean ``shift[:, i]`` and standard deviation ``|scale[:, i]|``."""
    n, c = scale.shape
    return instance_norm(x) * scale.to(x.dtype).reshape(n, c, 1, 1) + shift.to(x.dtype).reshape(n, c, 1, 1)


class AdaIN(nn.Module):
    """AdaIN with its affine style map A: w [N, w_dim] → (y_s, y_b) [N, channels] each."""

    def __init__(self, channels: int, w_dim: int):
        super().__init__()
        self.channels = channels
        self.scale = EqualizedLinear(w_dim, channels, bias_init=1.0)
        self.shift = EqualizedLinear(w_dim, channels, bias_init=0.0)

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return adain(x, self.scale(w), self.shift(w))

    def extra_repr(self) -> str:
        return f"channels={self.channels}"
