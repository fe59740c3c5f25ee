"""The ProGAN-structured networks of the lineage: ProGAN, StyleGAN Table 1 A–F and StyleGAN2 Table 1
A–D, all with progressive growing.

Synthesis: a 4×4 input (the latent through a dense layer — ProGAN's "conv 4×4" — or a learned constant),
then per resolution a 3×3 conv that upsamples and a 3×3 conv; a toRGB (1×1) at every resolution while growing.
What a layer does depends on the configuration's ``style``:

- ``none``  (ProGAN; the traditional generator of StyleGAN A/B): conv → bias → lrelu → pixel norm;
- ``adain`` (StyleGAN C–F): conv → noise → bias → lrelu → AdaIN(w), the noise strengths per feature map;
- ``demod`` (StyleGAN2 B–D, the revised block): modulated conv with weight demodulation → noise → bias → lrelu,
  toRGB modulated.

Upsampling is nearest-neighbour (``resample='nearest'``) or FIR (bilinear); the 4×4 constant (StyleGAN D+)
replaces the latent input.

Discriminator (ProGAN's, also StyleGAN's and StyleGAN2 A–D's): a fromRGB (1×1) per resolution; per resolution
conv 3×3 (C_r → C_r) and conv 3×3 (C_r → C_r/2) with downsampling (2×2 average pool after, or FIR before the
strided conv); at 4×4 minibatch std, conv 3×3, fully connected, output.

Progressive growing: both networks keep their current stage (a resolution) and fade-in α as buffers, saved with
them, so a network generates — and a discriminator reads — images of its current resolution. While a stage
fades in (α < 1), the new resolution's image is blended linearly with the previous one's, moved up or down by
nearest-neighbour / average-pool resampling: G: lerp(up(toRGB_{r/2}), toRGB_r, α); D: lerp(fromRGB_{r/2}(down(x)),
block_r(fromRGB_r(x)), α). :mod:`stylegan.training.growing` decides stage and α from the image count.

Formulas: docs/design.md §2.4, §2.7.
"""
from __future__ import annotations

import math

import torch
from torch import nn

from stylegan.config import DiscriminatorConfig, GeneratorConfig, channels_at
from stylegan.networks.discriminator import DiscriminatorEpilogue, class_embedding
from stylegan.networks.mapping import MappingNetwork
from stylegan.nn.activation import bias_act
from stylegan.nn.adain import AdaIN
from stylegan.nn.equalized import EqualizedConv2d, EqualizedLinear
from stylegan.nn.modconv import ModulatedConv2d
from stylegan.nn.noise import NoiseInjection, check_noise_mode
from stylegan.nn.normalize import normalize_2nd_moment
from stylegan.nn.resample import downsample_avg, upsample_nearest
from stylegan.nn.rgb import FromRGB, ToRGB


class GrowthBuffers(nn.Module):
    """The growth state of a progressive network: ``stage`` (the current resolution) and ``alpha`` (fade-in
    of that resolution, 1 when stable), as buffers that are saved and loaded with the network. A network that
    does not grow has neither and always runs at its full resolution."""

    def _init_growth(self, resolution: int, growing: bool) -> None:
        self.growing = growing
        if growing:
            self.register_buffer("stage", torch.tensor(4, dtype=torch.int64))
            self.register_buffer("alpha", torch.tensor(1.0))

    @property
    def current_resolution(self) -> int:
        return int(self.stage) if self.growing else self.resolution

    @property
    def current_alpha(self) -> float:
        return float(self.alpha) if self.growing else 1.0

    def set_growth(self, resolution: int, alpha: float) -> None:
        """Move to stage ``resolution`` with fade-in ``alpha`` (1 = the stage fully faded in)."""
        if not self.growing:
            raise ValueError("this network does not grow progressively (its configuration has growing=false)")
        if resolution not in self.stages or not 0 <= alpha <= 1 or (resolution == 4 and alpha != 1):
            raise ValueError(f"growth stage must be one of {self.stages} with alpha in [0, 1] (1 at 4x4), "
                             f"got {resolution} and {alpha}")
        self.stage.fill_(resolution)
        self.alpha.fill_(float(alpha))

    @property
    def stages(self) -> list[int]:
        return [2 ** i for i in range(2, int(math.log2(self.resolution)) + 1)]


# ---------------------------------------------------------------------------------------------- synthesis

class StyleLayer(nn.Module):
    """One layer of the ProGAN / StyleGAN synthesis: [upsample +] conv 3×3 → [noise] → bias → lrelu → pixel
    norm (``style='none'``) or AdaIN(w) (``style='adain'``). ``in_channels=0``: no conv (the layer that
    follows the 4×4 input)."""

    def __init__(self, in_channels: int, out_channels: int, w_dim: int, resolution: int, style: str, noise: bool,
                 up: bool = False, resample: str = "fir", conv_clamp: float | None = None):
        super().__init__()
        self.nearest_up = up and resample == "nearest"
        self.conv_clamp = conv_clamp
        fir_up = 2 if up and not self.nearest_up else 1
        self.conv = EqualizedConv2d(in_channels, out_channels, 3, bias=False, up=fir_up) if in_channels > 0 else None
        self.noise = NoiseInjection(resolution, channels=out_channels) if noise else None
        self.bias = nn.Parameter(torch.zeros(out_channels))
        self.adain = AdaIN(out_channels, w_dim) if style == "adain" else None

    def forward(self, x: torch.Tensor, w: torch.Tensor, noise_mode: str = "random", noise: torch.Tensor | None = None,
                fused: bool | None = None) -> torch.Tensor:
        if self.nearest_up:
            x = upsample_nearest(x)
        if self.conv is not None:
            x = self.conv(x)
        if self.noise is not None:
            x = self.noise(x, mode=noise_mode, noise=noise)
        x = bias_act(x, self.bias, act="lrelu", clamp=self.conv_clamp)
        return self.adain(x, w) if self.adain is not None else normalize_2nd_moment(x)


class ProgressiveSynthesisBlock(nn.Module):
    """One resolution: ``conv0`` (upsampling; at 4×4 the layer after the input, absent for ``demod``), ``conv1``
    and an optional ``torgb``. ``in_channels == 0`` makes the 4×4 block with the input."""

    def __init__(self, in_channels: int, out_channels: int, resolution: int, cfg: GeneratorConfig, torgb: bool):
        super().__init__()
        self.resolution, self.style = resolution, cfg.style
        first = in_channels == 0
        self.const = self.input = None
        if first and cfg.const_input:  # StyleGAN starts from ones, StyleGAN2 from N(0, 1)
            init = torch.randn if cfg.style == "demod" else torch.ones
            self.const = nn.Parameter(init(out_channels, resolution, resolution))
        elif first:  # ProGAN's "conv 4×4" on the 1×1 latent: a dense layer, bias per feature map (in conv0)
            self.input = EqualizedLinear(cfg.w_dim, out_channels * resolution * resolution, bias=False)
        noise_res = resolution if cfg.noise else None
        if cfg.style == "demod":
            self.conv0 = None if first else ModulatedConv2d(in_channels, out_channels, cfg.w_dim, up=2,
                                                            noise_resolution=noise_res, conv_clamp=cfg.conv_clamp)
            self.conv1 = ModulatedConv2d(out_channels, out_channels, cfg.w_dim, noise_resolution=noise_res,
                                         conv_clamp=cfg.conv_clamp)
            self.torgb = ToRGB(out_channels, cfg.img_channels, cfg.w_dim, conv_clamp=cfg.conv_clamp) if torgb else None
        else:
            self.conv0 = StyleLayer(in_channels, out_channels, cfg.w_dim, resolution, cfg.style, cfg.noise,
                                    up=not first, resample=cfg.resample, conv_clamp=cfg.conv_clamp)
            self.conv1 = StyleLayer(out_channels, out_channels, cfg.w_dim, resolution, cfg.style, cfg.noise,
                                    conv_clamp=cfg.conv_clamp)
            self.torgb = EqualizedConv2d(out_channels, cfg.img_channels, 1) if torgb else None
        self.layer_names = [k for k in ("conv0", "conv1") if getattr(self, k) is not None]

    def forward(self, x: torch.Tensor | None, ws: list[torch.Tensor], w_input: torch.Tensor, noise_mode: str,
                noise: dict[str, torch.Tensor], fused: bool | None) -> torch.Tensor:
        """``ws``: one w per layer of ``layer_names``; ``w_input``: the latent of a latent-input block."""
        if self.const is not None:
            x = self.const.unsqueeze(0).expand(w_input.shape[0], -1, -1, -1)
        elif self.input is not None:
            x = self.input(w_input).reshape(w_input.shape[0], -1, self.resolution, self.resolution)
        for name, w in zip(self.layer_names, ws):
            x = getattr(self, name)(x, w, noise_mode=noise_mode, noise=noise.get(name), fused=fused)
        return x

    def rgb(self, x: torch.Tensor, w: torch.Tensor, fused: bool | None = None) -> torch.Tensor:
        if self.style == "demod":
            return self.torgb(x, w, fused=fused).to(torch.float32)
        return self.torgb(x).to(torch.float32)


class ProgressiveSynthesis(GrowthBuffers):
    """ws [N, num_ws, w_dim] → images [N, img_channels, r, r] at the current resolution r (float32).

    w indices: layer k (in order, 4×4 first) takes ws[:, k]; with ``demod`` a resolution's toRGB takes the w
    after its last layer. Without styles (``none``) ws[:, 0] — the normalized latent — feeds the input only.
    """

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        self.w_dim, self.resolution, self.img_channels = cfg.w_dim, cfg.resolution, cfg.img_channels
        self.style = cfg.style
        self._init_growth(cfg.resolution, cfg.growing)
        self.blocks = nn.ModuleDict()
        self.layer_ws: dict[int, list[int]] = {}  # resolution -> w index of each layer
        idx = 0
        for res in self.stages:
            in_ch = channels_at(res // 2, cfg.cbase, cfg.cmax) if res > 4 else 0
            block = ProgressiveSynthesisBlock(in_ch, channels_at(res, cfg.cbase, cfg.cmax), res, cfg,
                                              torgb=cfg.growing or res == cfg.resolution)
            self.blocks[str(res)] = block
            self.layer_ws[res] = list(range(idx, idx + len(block.layer_names)))
            idx += len(block.layer_names)
        self.num_ws = cfg.num_ws
        if self.style == "demod":
            assert idx + 1 == self.num_ws
        elif self.style == "adain":
            assert idx == self.num_ws

    def _w(self, ws: torch.Tensor, i: int) -> torch.Tensor:
        return ws[:, 0] if self.style == "none" else ws[:, i]

    def _rgb_w(self, ws: torch.Tensor, res: int) -> torch.Tensor:
        return ws[:, self.layer_ws[res][-1] + 1] if self.style == "demod" else ws[:, 0]

    @property
    def num_active_ws(self) -> int:
        """The ws that affect the image at the current stage (style mixing draws its crossover among them)."""
        if self.style == "none":
            return 1
        res = self.current_resolution
        return self.layer_ws[res][-1] + (2 if self.style == "demod" else 1)

    def forward(
        self,
        ws: torch.Tensor,
        noise_mode: str = "const",
        fused: bool | None = None,
        force_fp32: bool = False,
        noise: dict[str, torch.Tensor] | None = None,
    ) -> torch.Tensor:
        """``noise`` maps layer names (``"8.conv0"``…, see :meth:`noise_layers`) to explicit noise images;
        ``force_fp32`` is accepted for the common interface (these networks always run in float32)."""
        check_noise_mode(noise_mode)
        if ws.ndim != 3 or ws.shape[1] != self.num_ws or ws.shape[2] != self.w_dim:
            raise ValueError(f"ws must have shape [N, {self.num_ws}, {self.w_dim}], got {tuple(ws.shape)}")
        if noise and self.style == "none":
            raise ValueError("this generator has no noise inputs")
        ws = ws.to(torch.float32)
        stage, alpha = self.current_resolution, self.current_alpha
        noise = noise or {}
        x = prev = None
        for name, block in self.blocks.items():
            res = int(name)
            if res > stage:
                break
            prev = x
            layer_noise = {k: noise[f"{name}.{k}"] for k in block.layer_names if f"{name}.{k}" in noise}
            x = block(x, [self._w(ws, i) for i in self.layer_ws[res]], ws[:, 0], noise_mode, layer_noise, fused)
        img = self.blocks[str(stage)].rgb(x, self._rgb_w(ws, stage), fused)
        if alpha < 1:
            low = self.blocks[str(stage // 2)].rgb(prev, self._rgb_w(ws, stage // 2), fused)
            img = torch.lerp(upsample_nearest(low), img, alpha)
        return img

    def noise_shapes(self) -> dict[str, tuple[int, int]]:
        """Names of the layers that take noise at the current stage, with the (height, width) of their noise."""
        return {name: (r, r) for name, r in self.noise_layers().items()}

    def noise_layers(self) -> dict[str, int]:
        """Names of the layers that take noise at the current stage, with their resolution, coarse to fine."""
        out = {}
        for name, block in self.blocks.items():
            if block.resolution > self.current_resolution:
                break
            for k in block.layer_names:
                if getattr(block, k).noise is not None:
                    out[f"{name}.{k}"] = block.resolution
        return out


# ---------------------------------------------------------------------------------------------- discriminator

class ProgressiveDiscriminatorBlock(nn.Module):
    """One resolution of ProGAN's D: [fromRGB,] conv 3×3 (C_r → C_r), conv 3×3 (C_r → C_{r/2}), downsampling
    (average pool after the conv, or FIR before its stride-2 application)."""

    def __init__(self, in_channels: int, out_channels: int, resolution: int, img_channels: int, resample: str,
                 fromrgb: bool, conv_clamp: float | None = None):
        super().__init__()
        self.resolution, self.pool = resolution, resample == "nearest"
        self.fromrgb = FromRGB(img_channels, in_channels, conv_clamp=conv_clamp) if fromrgb else None
        self.conv0 = EqualizedConv2d(in_channels, in_channels, 3, activation="lrelu", conv_clamp=conv_clamp)
        self.conv1 = EqualizedConv2d(in_channels, out_channels, 3, activation="lrelu", down=1 if self.pool else 2,
                                     conv_clamp=conv_clamp)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(self.conv0(x))
        return downsample_avg(x) if self.pool else x


class ProgressiveDiscriminator(GrowthBuffers):
    """images [N, C, r, r] at the current resolution r (+ labels [N, c_dim]) → logits [N, 1]."""

    def __init__(self, cfg: DiscriminatorConfig):
        super().__init__()
        self.c_dim, self.resolution, self.img_channels = cfg.c_dim, cfg.resolution, cfg.img_channels
        self._init_growth(cfg.resolution, cfg.growing)
        ch = lambda r: channels_at(r, cfg.cbase, cfg.cmax)  # noqa: E731
        self.blocks = nn.ModuleDict()
        for res in reversed(self.stages[1:]):
            self.blocks[str(res)] = ProgressiveDiscriminatorBlock(
                ch(res), ch(res // 2), res, cfg.img_channels, cfg.resample,
                fromrgb=cfg.growing or res == cfg.resolution, conv_clamp=cfg.conv_clamp)
        self.fromrgb4 = (FromRGB(cfg.img_channels, ch(4), conv_clamp=cfg.conv_clamp)
                         if cfg.growing or cfg.resolution == 4 else None)
        cmap_dim = 0 if cfg.c_dim == 0 else (cfg.cmap_dim or ch(4))
        self.mapping = (MappingNetwork(z_dim=0, c_dim=cfg.c_dim, w_dim=cmap_dim, num_ws=None, w_avg_beta=None)
                        if cfg.c_dim > 0 else None)
        self.epilogue = DiscriminatorEpilogue(ch(4), cmap_dim, cfg.img_channels, architecture="orig",
                                              mbstd_group=cfg.mbstd_group, mbstd_channels=cfg.mbstd_channels,
                                              conv_clamp=cfg.conv_clamp, mbstd_gain=cfg.mbstd_gain)

    def _fromrgb(self, res: int, img: torch.Tensor) -> torch.Tensor:
        return self.fromrgb4(img) if res == 4 else self.blocks[str(res)].fromrgb(img)

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None, force_fp32: bool = False) -> torch.Tensor:
        stage, alpha = self.current_resolution, self.current_alpha
        if img.ndim != 4 or img.shape[1:] != (self.img_channels, stage, stage):
            raise ValueError(f"D expects images [N, {self.img_channels}, {stage}, {stage}] at its current stage, "
                             f"got {tuple(img.shape)}")
        n = img.shape[0]
        img = img.to(torch.float32)
        x = self._fromrgb(stage, img)
        if stage > 4:
            x = self.blocks[str(stage)](x)
            if alpha < 1:
                x = torch.lerp(self._fromrgb(stage // 2, downsample_avg(img)), x, alpha)
            for name, block in self.blocks.items():
                if block.resolution < stage:
                    x = block(x)
        cmap = class_embedding(self.mapping, c, n, self.c_dim)
        return self.epilogue(x, None, cmap)
