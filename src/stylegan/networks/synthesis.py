"""StyleGAN2 synthesis network: a learned 4×4 constant, then per resolution a modulated 3×3 conv
that upsamples and a modulated 3×3 conv, with toRGB per resolution. Architectures (StyleGAN2 Table 2):

- ``orig``: toRGB at the top only;
- ``skip``: output skips, ``img = upsample(img) + toRGB_r(x)`` at every resolution (config E/F);
- ``resnet``: residual blocks ``(skip(x) + convs(x)) / sqrt(2)``, the skip a 1×1 conv that upsamples.

Formulas: docs/design.md §2.5.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from stylegan.config import channels_at, stage_shape
from stylegan.nn.equalized import EqualizedConv2d
from stylegan.cpu.layout import to_preferred_layout
from stylegan.nn.modconv import ModulatedConv2d
from stylegan.nn.noise import check_noise_mode
from stylegan.nn.rgb import ToRGB
from stylegan.nn.upfirdn import DEFAULT_FILTER, setup_filter, upsample2d


def half_dtype_for(device: torch.device, cpu_half_dtype: torch.dtype | None) -> torch.dtype:
    """Reduced precision to use on a device: float16 on CUDA; on CPU ``cpu_half_dtype`` (None = float32)."""
    if device.type == "cuda":
        return torch.float16
    return cpu_half_dtype or torch.float32


class SynthesisBlock(nn.Module):
    """One resolution of the synthesis network. ``in_channels == 0`` makes the 4×4 block with the constant."""

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        w_dim: int,
        resolution: int,
        img_channels: int,
        is_last: bool,
        architecture: str = "skip",
        conv_clamp: float | None = None,
        use_fp16: bool = False,
        shape: tuple[int, int] | None = None,
    ):
        super().__init__()
        self.in_channels, self.out_channels, self.resolution = in_channels, out_channels, resolution
        #: (height, width) of this stage: ``resolution`` × ``resolution`` unless the network is not square.
        self.shape = shape or (resolution, resolution)
        self.architecture, self.is_last, self.use_fp16 = architecture, is_last, use_fp16
        self.register_buffer("resample_filter", setup_filter(DEFAULT_FILTER), persistent=False)
        self.num_conv = 0
        self.num_torgb = 0
        if in_channels == 0:
            self.const = nn.Parameter(torch.randn(out_channels, *self.shape))
            self.conv0 = None
        else:
            self.conv0 = ModulatedConv2d(in_channels, out_channels, w_dim, up=2, noise_resolution=self.shape,
                                         conv_clamp=conv_clamp)
            self.num_conv += 1
        self.conv1 = ModulatedConv2d(out_channels, out_channels, w_dim, noise_resolution=self.shape,
                                     conv_clamp=conv_clamp)
        self.num_conv += 1
        if is_last or architecture == "skip":
            self.torgb = ToRGB(out_channels, img_channels, w_dim, conv_clamp=conv_clamp)
            self.num_torgb += 1
        else:
            self.torgb = None
        if in_channels != 0 and architecture == "resnet":
            self.skip = EqualizedConv2d(in_channels, out_channels, kernel_size=1, bias=False, up=2)
        else:
            self.skip = None

    def forward(
        self,
        x: torch.Tensor | None,
        img: torch.Tensor | None,
        ws: torch.Tensor,
        noise_mode: str = "random",
        fused: bool | None = None,
        dtype: torch.dtype = torch.float32,
        noise: dict[str, torch.Tensor] | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """``ws`` [N, num_conv + num_torgb, w_dim]; ``noise`` may override the noise of ``conv0``/``conv1``."""
        noise = noise or {}
        w_iter = iter(ws.unbind(dim=1))
        if self.in_channels == 0:
            x = self.const.to(dtype).unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
            x = to_preferred_layout(x)
        else:
            x = x.to(dtype)
        if self.conv0 is None:
            x = self.conv1(x, next(w_iter), noise_mode=noise_mode, fused=fused, noise=noise.get("conv1"))
        elif self.skip is not None:
            y = self.skip(x, gain=math.sqrt(0.5))
            x = self.conv0(x, next(w_iter), noise_mode=noise_mode, fused=fused, noise=noise.get("conv0"))
            x = self.conv1(x, next(w_iter), noise_mode=noise_mode, fused=fused, gain=math.sqrt(0.5),
                           noise=noise.get("conv1"))
            x = y + x
        else:
            x = self.conv0(x, next(w_iter), noise_mode=noise_mode, fused=fused, noise=noise.get("conv0"))
            x = self.conv1(x, next(w_iter), noise_mode=noise_mode, fused=fused, noise=noise.get("conv1"))
        if img is not None:
            img = upsample2d(img, self.resample_filter)
        if self.torgb is not None:
            y = self.torgb(x, next(w_iter), fused=fused).to(torch.float32)
            img = img + y if img is not None else y
        return x, img


class SynthesisNetwork(nn.Module):
    """ws [N, num_ws, w_dim] → images [N, img_channels, H, W] (float32, roughly [−1, 1]): H = W = resolution,
    or for a non-square network (``base_h`` × ``base_w`` lowest stage) :func:`~stylegan.config.stage_shape`."""

    def __init__(
        self,
        w_dim: int,
        resolution: int,
        img_channels: int,
        cbase: int = 32768,
        cmax: int = 512,
        architecture: str = "skip",
        num_fp16_res: int = 0,
        conv_clamp: float | None = None,
        base_h: int = 4,
        base_w: int = 4,
    ):
        super().__init__()
        self.w_dim, self.resolution, self.img_channels = w_dim, resolution, img_channels
        self.img_shape = stage_shape(resolution, base_h, base_w)
        self.resolutions = [2 ** i for i in range(2, int(math.log2(resolution)) + 1)]
        fp16_resolution = max(2 ** (int(math.log2(resolution)) + 1 - num_fp16_res), 8)
        #: Reduced precision on CPU for the fp16 resolutions (None = stay in float32); float16 on CUDA.
        self.cpu_half_dtype: torch.dtype | None = None
        self.blocks = nn.ModuleDict()
        self.num_ws = 0
        for res in self.resolutions:
            in_ch = channels_at(res // 2, cbase, cmax) if res > 4 else 0
            block = SynthesisBlock(in_ch, channels_at(res, cbase, cmax), w_dim, res, img_channels,
                                   is_last=(res == resolution), architecture=architecture, conv_clamp=conv_clamp,
                                   use_fp16=(res >= fp16_resolution and num_fp16_res > 0),
                                   shape=stage_shape(res, base_h, base_w))
            self.blocks[str(res)] = block
            self.num_ws += block.num_conv
            if res == resolution:
                self.num_ws += block.num_torgb

    def block_ws(self, ws: torch.Tensor) -> list[torch.Tensor]:
        """Split ws per block: each block takes its convs' ws plus the next one for its toRGB."""
        out, idx = [], 0
        for block in self.blocks.values():
            out.append(ws.narrow(1, idx, block.num_conv + block.num_torgb))
            idx += block.num_conv
        return out

    def forward(
        self,
        ws: torch.Tensor,
        noise_mode: str = "const",
        fused: bool | None = None,
        force_fp32: bool = False,
        noise: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """``noise`` maps layer names (``"8.conv0"``…, see :meth:`noise_layers`) to explicit noise images
        that replace ``noise_mode`` for those layers."""
        check_noise_mode(noise_mode)
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}")
        ws = ws.to(torch.float32)
        half = half_dtype_for(ws.device, self.cpu_half_dtype)
        x = img = None
        for (name, block), bws in zip(self.blocks.items(), self.block_ws(ws)):
            dtype = half if (block.use_fp16 and not force_fp32) else torch.float32
            layer_noise = None
            if noise:
                layer_noise = {k: noise[f"{name}.{k}"] for k in ("conv0", "conv1") if f"{name}.{k}" in noise}
            x, img = block(x, img, bws, noise_mode=noise_mode, fused=fused, dtype=dtype, noise=layer_noise)
        return img

    def noise_layers(self) -> dict[str, int]:
        """Names of the layers that take noise, with their resolution, coarse to fine."""
        return {name: max(shape) for name, shape in self.noise_shapes().items()}

    def noise_shapes(self) -> dict[str, tuple[int, int]]:
        """Names of the layers that take noise, with the (height, width) of their noise images, coarse to fine."""
        out = {}
        for name, block in self.blocks.items():
            for k in ("conv0", "conv1"):
                if getattr(block, k) is not None:
                    out[f"{name}.{k}"] = block.shape
        return out

