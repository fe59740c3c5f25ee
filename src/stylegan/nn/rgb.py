"""toRGB (features → image, a 1×1 modulated conv without demodulation) and fromRGB (image → features,
a 1×1 equalized conv with leaky ReLU). Formulas: docs/design.md §1.8."""
from __future__ import annotations

import math

import torch

from stylegan.nn.equalized import EqualizedConv2d
from stylegan.cpu.layout import to_preferred_layout
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

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        # The features leave in the preferred layout: from a one-channel image (NCHW and NHWC at once) the
        # convolution would answer in NCHW, and every later layer of D would run in the slower layout.
        return to_preferred_layout(super().forward(x, *args, **kwargs))
