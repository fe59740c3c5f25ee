"""toRGB (features → image, a 1×1 modulated conv without demodulation) and fromRGB (image → features,
a 1×1 equalized conv with leaky ReLU). Formulas: docs/design.md §1.8."""
from __future__ import annotations

import math

import torch

from stylegan.nn.equalized import EqualizedConv2d
from stylegan.cpu.layout import memory_format_for, to_preferred_layout
from stylegan.nn.activation import bias_act
from stylegan.nn.modconv import ModulatedConv2d


class ToRGB(ModulatedConv2d):
    """1×1 modulated conv, no demodulation, style scaled by 1/sqrt(fan_in), linear output plus bias."""

    def __init__(self, in_channels: int, img_channels: int, w_dim: int, conv_clamp: float | None = None):
        super().__init__(in_channels, img_channels, w_dim, kernel_size=1, demodulate=False, activation="linear",
                         noise_resolution=None, conv_clamp=conv_clamp, style_gain=1 / math.sqrt(in_channels))

    def forward(self, x: torch.Tensor, w: torch.Tensor, fused: bool | None = None) -> torch.Tensor:  # type: ignore[override]
        return super().forward(x, w, noise_mode="none", fused=fused)


class FromRGB(EqualizedConv2d):
    """1×1 equalized conv from image channels to features, leaky ReLU."""

    def __init__(self, img_channels: int, out_channels: int, conv_clamp: float | None = None):
        super().__init__(img_channels, out_channels, kernel_size=1, activation="lrelu", conv_clamp=conv_clamp)

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        # The features leave in the preferred layout: from a one-channel image (NCHW and NHWC at once) the
        # convolution would answer in NCHW, and every later layer of D would run in the slower layout.
        if memory_format_for(x.device) == torch.channels_last and x.shape[1] <= 4 and gain > 0:
            return self._channels_last(x, gain)
        return to_preferred_layout(super().forward(x, gain))

    def _channels_last(self, x: torch.Tensor, gain: float) -> torch.Tensor:
        """The same 1×1 convolution as one matrix product written straight into channels-last features: the
        image's pixels [N·H·W, C] times the weight [C, O], with the bias and the activation's gain folded in
        (both activations are positively homogeneous), then the activation. Two passes over the features
        where the convolution took four (convolution, layout copy, bias, activation)."""
        n, c, h, w_ = x.shape
        g = self.act_gain * gain
        weight = self.weight.to(x.dtype).reshape(self.out_channels, c) * (self.weight_gain * g)
        pixels = x.permute(0, 2, 3, 1).reshape(n * h * w_, c)
        y = (torch.addmm(self.bias.to(x.dtype).unsqueeze(0) * g, pixels, weight.t()) if self.bias is not None
             else pixels @ weight.t())
        y = y.reshape(n, h, w_, self.out_channels).permute(0, 3, 1, 2)
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(y, None, act=self.activation, gain=1.0, clamp=clamp)
