"""Equalized learning rate: weights stored as N(0, 1) / lr_mul and scaled at run time by
``lr_mul / sqrt(fan_in)``; biases stored divided by lr_mul and multiplied by it at run time.
Formulas: docs/design.md §1.1."""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from stylegan.nn.activation import DEFAULT_GAIN, bias_act
from stylegan.nn.upfirdn import DEFAULT_FILTER, conv2d_resample, setup_filter


class EqualizedLinear(nn.Module):
    """Fully connected layer with equalized learning rate, bias and activation."""

    def __init__(
        self,
        in_features: int,
        out_features: int,
        bias: bool = True,
        activation: str = "linear",
        lr_mul: float = 1.0,
        bias_init: float = 0.0,
    ):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.activation = activation
        self.lr_mul = lr_mul
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / lr_mul)
        self.bias = nn.Parameter(torch.full([out_features], float(bias_init) / lr_mul)) if bias else None
        self.weight_gain = lr_mul / math.sqrt(in_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The activation's gain is folded into the weight and bias (both activations are positively
        # homogeneous): one addmm, then the activation. Not bias_act's add with alpha: torch.compile (inductor,
        # torch 2.13) fuses a matmul followed by add(..., alpha=g) into an addmm that drops g.
        gain = DEFAULT_GAIN[self.activation]
        w = self.weight.to(x.dtype) * (self.weight_gain * gain)
        y = x.matmul(w.t()) if self.bias is None else torch.addmm(self.bias.to(x.dtype).unsqueeze(0) *
                                                                   (self.lr_mul * gain), x, w.t())
        return y if self.activation == "linear" else bias_act(y, None, act=self.activation, gain=1.0)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, act={self.activation}, lr_mul={self.lr_mul}"


class EqualizedConv2d(nn.Module):
    """2-D convolution with equalized learning rate, optional FIR up/downsampling, bias, activation and
    clamp. ``forward(x, gain)`` multiplies the activation's output by ``gain`` (residual branches use
    sqrt(0.5))."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        bias: bool = True,
        activation: str = "linear",
        up: int = 1,
        down: int = 1,
        resample_filter: Sequence[float] = DEFAULT_FILTER,
        conv_clamp: float | None = None,
    ):
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.activation, self.up, self.down, self.conv_clamp = activation, up, down, conv_clamp
        self.padding = kernel_size // 2
        self.weight_gain = 1 / math.sqrt(in_channels * kernel_size * kernel_size)
        self.act_gain = DEFAULT_GAIN[activation]
        self.register_buffer("resample_filter", setup_filter(resample_filter), persistent=False)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        w = self.weight.to(x.dtype) * self.weight_gain
        x = conv2d_resample(x, w, self.resample_filter, up=self.up, down=self.down, padding=self.padding)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, act=self.activation, gain=self.act_gain * gain, clamp=clamp)

    def extra_repr(self) -> str:
        return (f"in={self.in_channels}, out={self.out_channels}, k={self.kernel_size}, "
                f"act={self.activation}, up={self.up}, down={self.down}")
