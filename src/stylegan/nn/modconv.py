"""Modulated convolution with weight demodulation (StyleGAN2).

- modulation:   w'_ijk  = s_i · w_ijk, with the style s = A(w) (an affine map of w, bias init 1);
- demodulation: w''_ijk = w'_ijk / sqrt(Σ_{i,k} w'_ijk² + 1e-8).

Two executions give the same result:

- ``fused=True``: per-sample weights, applied as one grouped convolution with a group per sample
  (cheap for inference and small batches);
- ``fused=False``: the shared weight applied to ``x · s``, followed by the per-sample, per-output-channel
  scale ``d_j`` (cheap for training at large batch: one ordinary convolution).

Formulas: docs/design.md §1.8.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import nn

from stylegan.nn.activation import DEFAULT_GAIN, bias_act
from stylegan.nn.equalized import EqualizedLinear
from stylegan.nn.noise import NoiseInjection
from stylegan.nn.upfirdn import DEFAULT_FILTER, conv2d_resample, setup_filter

DEMOD_EPS = 1e-8


def demodulation_coefficients(weight: torch.Tensor, styles: torch.Tensor) -> torch.Tensor:
    """``d[n, j] = 1 / sqrt(Σ_{i,k} (s[n, i] · w[j, i, k])² + eps)`` without forming per-sample weights."""
    return (styles.square() @ weight.square().sum(dim=[2, 3]).t() + DEMOD_EPS).rsqrt()


def modulate_weights(weight: torch.Tensor, styles: torch.Tensor, demodulate: bool = True) -> torch.Tensor:
    """Per-sample weights [N, O, I, k, k]: ``w' = s · w``, then, with ``demodulate``, each output channel
    scaled to unit L2 norm: ``w'' = w' / sqrt(Σ w'² + eps)``."""
    w = weight.unsqueeze(0) * styles.reshape(styles.shape[0], 1, -1, 1, 1)
    if demodulate:
        w = w * (w.square().sum(dim=[2, 3, 4], keepdim=True) + DEMOD_EPS).rsqrt()
    return w


def modulated_conv2d(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    demodulate: bool = True,
    up: int = 1,
    padding: int = 0,
    resample_filter: torch.Tensor | None = None,
    fused: bool = True,
) -> torch.Tensor:
    """Convolve ``x`` [N, I, H, W] with ``weight`` [O, I, k, k] modulated per sample by ``styles`` [N, I]."""
    x, scale = modulated_conv2d_unscaled(x, weight, styles, demodulate, up, padding, resample_filter, fused)
    if scale is not None:
        x = x * scale.to(x.dtype).reshape(*scale.shape, 1, 1)
    return x


def modulated_conv2d_unscaled(
    x: torch.Tensor,
    weight: torch.Tensor,
    styles: torch.Tensor,
    demodulate: bool = True,
    up: int = 1,
    padding: int = 0,
    resample_filter: torch.Tensor | None = None,
    fused: bool = True,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """:func:`modulated_conv2d` less its last step: returns the convolution and the per-sample,
    per-output-channel demodulation factor [N, O] still to apply (None where there is none), so that a caller
    can fold it into the bias and activation pass (:func:`stylegan.nn.activation.bias_act`'s ``scale``)."""
    n = x.shape[0]
    out_ch, in_ch, kh, kw = weight.shape
    if styles.shape != (n, in_ch):
        raise ValueError(f"styles must have shape {(n, in_ch)}, got {tuple(styles.shape)}")
    if demodulate and x.dtype in (torch.float16, torch.bfloat16):
        # Keep the per-sample weights in range in half precision; demodulation removes the scale anyway.
        weight = weight * (1 / math.sqrt(in_ch * kh * kw) / weight.norm(float("inf"), dim=[1, 2, 3], keepdim=True))
        styles = styles / styles.norm(float("inf"), dim=1, keepdim=True)

    if fused:
        w = modulate_weights(weight, styles, demodulate)
        x = x.reshape(1, n * in_ch, *x.shape[2:])
        w = w.reshape(n * out_ch, in_ch, kh, kw).to(x.dtype)
        x = conv2d_resample(x, w, resample_filter, up=up, padding=padding, groups=n)
        return x.reshape(n, out_ch, *x.shape[2:]), None

    x = x * styles.to(x.dtype).reshape(n, in_ch, 1, 1)
    x = conv2d_resample(x, weight.to(x.dtype), resample_filter, up=up, padding=padding)
    return x, (demodulation_coefficients(weight, styles) if demodulate else None)


class ModulatedConv2d(nn.Module):
    """A style layer: affine A(w) → modulated (and demodulated) conv → noise → bias → activation. NVIDIA's
    ``SynthesisLayer`` (with the convolution of their ``modulated_conv2d``), rosinality's ``StyledConv`` (whose
    ``ModulatedConv2d`` is the convolution alone).

    With ``demodulate=False``, ``noise_resolution=None``, ``activation='linear'`` and
    ``style_gain=1/sqrt(fan_in)`` this is StyleGAN2's toRGB (see :class:`stylegan.nn.rgb.ToRGB`).
    ``fused=None`` picks the grouped execution for inference on CUDA, and the shared-weight one in training and
    on the CPU (where the grouped convolution is slower even at inference; docs/speed.md, "Speed choices in the
    code").
    """

    def __init__(
        self,
        in_channels: int,                    # channels of the input feature map
        out_channels: int,                   # channels of the output feature map
        w_dim: int,                          # size of w; the affine A maps it to one style per input channel
        kernel_size: int = 3,                # 3 in the synthesis blocks, 1 for toRGB
        demodulate: bool = True,             # scale each output channel's weights to unit norm (StyleGAN2 eq. 3)
        up: int = 1,                         # 2: upsample x2 (transposed convolution, then the FIR filter)
        activation: str = "lrelu",           # "lrelu" (leaky ReLU 0.2 with gain sqrt 2) or "linear" (toRGB)
        noise_resolution: int | tuple[int, int] | None = None,  # size of the noise input (None: no noise)
        conv_clamp: float | None = None,     # clamp the output to +-conv_clamp (None: no clamp)
        style_gain: float = 1.0,             # multiplier of the styles (1/sqrt(fan_in) for toRGB)
        resample_filter: Sequence[float] = DEFAULT_FILTER,  # FIR filter of the upsampling, [1, 3, 3, 1]
    ):
        super().__init__()
        self.in_channels, self.out_channels, self.kernel_size = in_channels, out_channels, kernel_size
        self.demodulate, self.up, self.activation = demodulate, up, activation
        self.conv_clamp, self.style_gain = conv_clamp, style_gain
        self.padding = kernel_size // 2
        self.act_gain = DEFAULT_GAIN[activation]
        self.fused: bool | None = None
        self.register_buffer("resample_filter", setup_filter(resample_filter), persistent=False)
        self.affine = EqualizedLinear(w_dim, in_channels, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_channels, in_channels, kernel_size, kernel_size))
        self.noise = NoiseInjection(noise_resolution) if noise_resolution is not None else None
        self.bias = nn.Parameter(torch.zeros(out_channels))

    def forward(
        self,
        x: torch.Tensor,
        w: torch.Tensor,
        noise_mode: str = "random",
        fused: bool | None = None,
        gain: float = 1.0,
        noise: torch.Tensor | None = None,
    ) -> torch.Tensor:
        styles = self.affine(w)
        if self.style_gain != 1:
            styles = styles * self.style_gain
        if fused is None:
            fused = self.fused if self.fused is not None else (not self.training and x.device.type != "cpu")
        x, scale = modulated_conv2d_unscaled(x, self.weight, styles, demodulate=self.demodulate, up=self.up,
                                             padding=self.padding, resample_filter=self.resample_filter, fused=fused)
        add = self.noise.scaled_noise(x, mode=noise_mode, noise=noise) if self.noise is not None else None
        clamp = self.conv_clamp * gain if self.conv_clamp is not None else None
        return bias_act(x, self.bias, act=self.activation, gain=self.act_gain * gain, clamp=clamp, scale=scale,
                        add=add)

    def extra_repr(self) -> str:
        return (f"in={self.in_channels}, out={self.out_channels}, k={self.kernel_size}, "
                f"demodulate={self.demodulate}, up={self.up}, act={self.activation}")
