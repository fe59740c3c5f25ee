"""StyleGAN2 discriminator: fromRGB at the top; per resolution conv 3×3 and conv 3×3 that
downsamples; at 4×4 the epilogue (minibatch std, conv 3×3, fully connected, output). Architectures:

- ``orig``: fromRGB at the top only;
- ``skip``: input skips, fromRGB of the downsampled image added at every resolution;
- ``resnet``: residual blocks ``(skip(x) + convs(x)) / sqrt(2)``, the skip a 1×1 conv that downsamples
  (config E/F).

A conditional D projects its output onto an embedding of the class label (mapping network c → cmap). With an
unconditional head (transitional training, ``--cond-fade``) it outputs head(x) + λ·projection, λ the strength of
the conditioning (:attr:`DiscriminatorEpilogue.cond_strength`, 1 unless training sets it).

Formulas: docs/design.md §2.6.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from stylegan.config import channels_at, stage_shape
from stylegan.networks.mapping import MappingNetwork
from stylegan.networks.synthesis import half_dtype_for
from stylegan.nn.equalized import EqualizedConv2d, EqualizedLinear
from stylegan.cpu.layout import to_preferred_layout
from stylegan.nn.mbstd import MinibatchStd
from stylegan.nn.rgb import FromRGB
from stylegan.nn.upfirdn import DEFAULT_FILTER, downsample2d, setup_filter


def class_embedding(mapping: MappingNetwork | None, c: torch.Tensor | None, n: int, c_dim: int) -> torch.Tensor | None:
    """The projection discriminator's embedding of the labels ``c`` [n, c_dim] (None when unconditional)."""
    if mapping is None:
        return None
    if c is None or tuple(c.shape) != (n, c_dim):
        raise ValueError(f"this discriminator is conditional: c must have shape [{n}, {c_dim}], got "
                         f"{None if c is None else tuple(c.shape)}")
    return mapping(None, c)


class DiscriminatorBlock(nn.Module):
    """One resolution of D: ``tmp_channels`` at this resolution → ``out_channels`` at half of it.
    ``in_channels == 0`` marks the top block (it reads the image)."""

    def __init__(
        self,
        in_channels: int,
        tmp_channels: int,
        out_channels: int,
        resolution: int,
        img_channels: int,
        architecture: str = "resnet",
        conv_clamp: float | None = None,
        use_fp16: bool = False,
    ):
        super().__init__()
        self.in_channels, self.resolution, self.architecture = in_channels, resolution, architecture
        self.use_fp16 = use_fp16
        self.register_buffer("resample_filter", setup_filter(DEFAULT_FILTER), persistent=False)
        self.fromrgb = (FromRGB(img_channels, tmp_channels, conv_clamp=conv_clamp)
                        if in_channels == 0 or architecture == "skip" else None)
        self.conv0 = EqualizedConv2d(tmp_channels, tmp_channels, 3, activation="lrelu", conv_clamp=conv_clamp)
        self.conv1 = EqualizedConv2d(tmp_channels, out_channels, 3, activation="lrelu", down=2,
                                     conv_clamp=conv_clamp)
        self.skip = (EqualizedConv2d(tmp_channels, out_channels, 1, bias=False, down=2)
                     if architecture == "resnet" else None)

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, dtype: torch.dtype = torch.float32):
        if self.fromrgb is not None:
            y = self.fromrgb(img.to(dtype))
            x = x.to(dtype) + y if x is not None else y
            img = downsample2d(img, self.resample_filter) if self.architecture == "skip" else None
        else:
            x = x.to(dtype)
        if self.skip is not None:
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv1(self.conv0(x), gain=math.sqrt(0.5))
            x = y + x
        else:
            x = self.conv1(self.conv0(x))
        return x, img


class DiscriminatorEpilogue(nn.Module):
    """The 4×4 end of D: [fromRGB (skip)], minibatch std, conv 3×3, fc (C·16 → C), out (C → 1 or cmap)."""

    def __init__(
        self,
        in_channels: int,
        cmap_dim: int,
        img_channels: int,
        architecture: str = "resnet",
        mbstd_group: int = 4,
        mbstd_channels: int = 1,
        conv_clamp: float | None = None,
        resolution: int | tuple[int, int] = 4,
        mbstd_gain: float = 1.0,
        uncond_head: bool = False,
    ):
        super().__init__()
        self.cmap_dim, self.architecture = cmap_dim, architecture
        self.cond_strength = 1.0  # λ of transitional training; not saved (the loop sets it from the images seen)
        self.fromrgb = FromRGB(img_channels, in_channels, conv_clamp=conv_clamp) if architecture == "skip" else None
        self.mbstd = MinibatchStd(mbstd_group, mbstd_channels, mbstd_gain) if mbstd_channels > 0 else None
        self.conv = EqualizedConv2d(in_channels + mbstd_channels, in_channels, 3, activation="lrelu",
                                    conv_clamp=conv_clamp)
        h, w = (resolution, resolution) if isinstance(resolution, int) else resolution
        self.fc = EqualizedLinear(in_channels * h * w, in_channels, activation="lrelu")
        self.out = EqualizedLinear(in_channels, 1 if cmap_dim == 0 else cmap_dim)
        self.out_uncond = EqualizedLinear(in_channels, 1) if uncond_head and cmap_dim > 0 else None

    def forward(self, x: torch.Tensor | None, img: torch.Tensor | None, cmap: torch.Tensor | None) -> torch.Tensor:
        """``x`` is None only when D is this epilogue alone (resolution 4): it then reads ``img``."""
        if self.fromrgb is not None:
            y = self.fromrgb(img.to(torch.float32))
            x = y if x is None else x.to(torch.float32) + y
        x = x.to(torch.float32)
        if self.mbstd is not None:
            x = self.mbstd(x)
        x = self.conv(x)
        h = self.fc(x.flatten(1))
        x = self.out(h)
        if self.cmap_dim > 0:
            x = (x * cmap).sum(dim=1, keepdim=True) / math.sqrt(self.cmap_dim)
        if self.out_uncond is not None:
            x = self.out_uncond(h) + self.cond_strength * x
        return x


class Discriminator(nn.Module):
    """images [N, C, H, W] (+ labels [N, c_dim]) → logits [N, 1]. H = W = resolution, or for a non-square
    network (``base_h`` × ``base_w`` lowest stage) :func:`~stylegan.config.stage_shape`."""

    def __init__(
        self,
        c_dim: int,
        resolution: int,
        img_channels: int,
        cbase: int = 32768,
        cmax: int = 512,
        architecture: str = "resnet",
        mbstd_group: int = 4,
        mbstd_channels: int = 1,
        cmap_dim: int | None = None,
        num_fp16_res: int = 0,
        conv_clamp: float | None = None,
        mbstd_gain: float = 1.0,
        base_h: int = 4,
        base_w: int = 4,
        uncond_head: bool = False,
    ):
        super().__init__()
        self.c_dim, self.resolution, self.img_channels = c_dim, resolution, img_channels
        self.img_shape = stage_shape(resolution, base_h, base_w)
        log2 = int(math.log2(resolution))
        fp16_resolution = max(2 ** (log2 + 1 - num_fp16_res), 8)
        self.cpu_half_dtype: torch.dtype | None = None
        self.blocks = nn.ModuleDict()
        for res in [2 ** i for i in range(log2, 2, -1)]:
            in_ch = channels_at(res, cbase, cmax) if res < resolution else 0
            self.blocks[str(res)] = DiscriminatorBlock(
                in_ch, channels_at(res, cbase, cmax), channels_at(res // 2, cbase, cmax), res, img_channels,
                architecture=architecture, conv_clamp=conv_clamp,
                use_fp16=(res >= fp16_resolution and num_fp16_res > 0))
        c4 = channels_at(4, cbase, cmax)
        if cmap_dim is None:
            cmap_dim = c4
        if c_dim == 0:
            cmap_dim = 0
        self.mapping = (MappingNetwork(z_dim=0, c_dim=c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None)
                        if c_dim > 0 else None)
        # The 4x4 epilogue reads the image itself with the skip architecture, or when it is all of D.
        epi_arch = "skip" if resolution == 4 else architecture
        self.epilogue = DiscriminatorEpilogue(c4, cmap_dim, img_channels, architecture=epi_arch,
                                              mbstd_group=mbstd_group, mbstd_channels=mbstd_channels,
                                              conv_clamp=conv_clamp, mbstd_gain=mbstd_gain,
                                              resolution=(base_h, base_w), uncond_head=uncond_head)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None, force_fp32: bool = False) -> torch.Tensor:
        if img.ndim != 4 or img.shape[1:] != (self.img_channels, *self.img_shape):
            raise ValueError(f"D expects images [N, {self.img_channels}, {self.img_shape[0]}, {self.img_shape[1]}], "
                             f"got {tuple(img.shape)}")
        n = img.shape[0]
        half = half_dtype_for(img.device, self.cpu_half_dtype)
        img = to_preferred_layout(img.to(torch.float32))
        x = None
        for block in self.blocks.values():
            x, img = block(x, img, dtype=half if (block.use_fp16 and not force_fp32) else torch.float32)
        cmap = class_embedding(self.mapping, c, n, self.c_dim)
        return self.epilogue(x, img, cmap)
