"""Typed network configuration, validated up front, saved with every checkpoint, and named presets.

A :class:`NetworkConfig` alone rebuilds the networks (see :func:`stylegan.networks.build_networks`).
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

G_ARCHS = ("orig", "skip", "resnet")
D_ARCHS = ("orig", "skip", "resnet")
FAMILIES = ("stylegan2",)


class ConfigError(ValueError):
    """A configuration value is out of range or unknown."""


def _is_pow2(n: int) -> bool:
    return isinstance(n, int) and n > 0 and (n & (n - 1)) == 0


def channels_at(resolution: int, cbase: int, cmax: int) -> int:
    """Feature maps at a resolution: ``min(cbase / res, cmax)``."""
    return min(cbase // resolution, cmax)


def num_ws_for(resolution: int) -> int:
    """Number of style vectors a synthesis network of this resolution consumes: 2·log2(res) − 2."""
    return 2 * int(math.log2(resolution)) - 2


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


def _check_common(name: str, c: "GeneratorConfig | DiscriminatorConfig") -> None:
    _check(_is_pow2(c.resolution) and 4 <= c.resolution <= 1024,
           f"{name}.resolution must be a power of two in [4, 1024], got {c.resolution}")
    _check(c.img_channels in (1, 3), f"{name}.img_channels must be 1 or 3, got {c.img_channels}")
    _check(isinstance(c.c_dim, int) and c.c_dim >= 0, f"{name}.c_dim must be >= 0, got {c.c_dim}")
    _check(isinstance(c.cbase, int) and c.cbase >= 4, f"{name}.cbase must be an integer >= 4, got {c.cbase}")
    _check(isinstance(c.cmax, int) and c.cmax >= 1, f"{name}.cmax must be a positive integer, got {c.cmax}")
    _check(channels_at(c.resolution, c.cbase, c.cmax) >= 1,
           f"{name}: cbase {c.cbase} gives no channels at resolution {c.resolution} (need cbase >= resolution)")
    _check(isinstance(c.num_fp16_res, int) and c.num_fp16_res >= 0,
           f"{name}.num_fp16_res must be >= 0, got {c.num_fp16_res}")
    _check(c.conv_clamp is None or c.conv_clamp > 0, f"{name}.conv_clamp must be positive or None")


@dataclass
class GeneratorConfig:
    """StyleGAN2 generator: mapping network z (+ c) → w, synthesis network ws → image.

    z_dim, w_dim: latent sizes (512). c_dim: class-label size, 0 for unconditional.
    resolution, img_channels: output image size (power of two 4–1024) and channels (1 or 3).
    map_depth: mapping layers (8). map_lr_mul: their learning-rate multiplier (0.01).
    w_avg_beta: decay of the running average of w used by truncation (0.995).
    cbase, cmax: channels at resolution r are min(cbase / r, cmax) (32768, 512 for config F).
    arch: synthesis architecture, ``orig`` | ``skip`` (default) | ``resnet``.
    num_fp16_res: the highest resolutions that run in reduced precision (4); conv_clamp: clamp of conv
    outputs (256) that keeps them in the float16 range.
    """

    z_dim: int = 512
    w_dim: int = 512
    c_dim: int = 0
    resolution: int = 1024
    img_channels: int = 3
    map_depth: int = 8
    map_lr_mul: float = 0.01
    w_avg_beta: float = 0.995
    cbase: int = 32768
    cmax: int = 512
    arch: str = "skip"
    num_fp16_res: int = 4
    conv_clamp: float | None = 256

    @property
    def num_ws(self) -> int:
        return num_ws_for(self.resolution)

    def validate(self) -> "GeneratorConfig":
        _check_common("G", self)
        _check(isinstance(self.z_dim, int) and self.z_dim >= 0, f"G.z_dim must be >= 0, got {self.z_dim}")
        _check(self.z_dim > 0 or self.c_dim > 0, "G needs z_dim > 0 or c_dim > 0")
        _check(isinstance(self.w_dim, int) and self.w_dim >= 1, f"G.w_dim must be >= 1, got {self.w_dim}")
        _check(isinstance(self.map_depth, int) and self.map_depth >= 1,
               f"G.map_depth must be >= 1, got {self.map_depth}")
        _check(self.map_lr_mul > 0, f"G.map_lr_mul must be positive, got {self.map_lr_mul}")
        _check(0 <= self.w_avg_beta <= 1, f"G.w_avg_beta must be in [0, 1], got {self.w_avg_beta}")
        _check(self.arch in G_ARCHS, f"G.arch must be one of {', '.join(G_ARCHS)}, got {self.arch!r}")
        return self


@dataclass
class DiscriminatorConfig:
    """StyleGAN2 discriminator.

    arch: ``orig`` | ``skip`` | ``resnet`` (default). mbstd_group, mbstd_channels: minibatch standard
    deviation group size (4) and channels (1). cmap_dim: size of the class projection (conditional only;
    None = channels at 4²). Other fields as in :class:`GeneratorConfig`.
    """

    c_dim: int = 0
    resolution: int = 1024
    img_channels: int = 3
    cbase: int = 32768
    cmax: int = 512
    arch: str = "resnet"
    mbstd_group: int = 4
    mbstd_channels: int = 1
    cmap_dim: int | None = None
    num_fp16_res: int = 4
    conv_clamp: float | None = 256

    def validate(self) -> "DiscriminatorConfig":
        _check_common("D", self)
        _check(self.arch in D_ARCHS, f"D.arch must be one of {', '.join(D_ARCHS)}, got {self.arch!r}")
        _check(isinstance(self.mbstd_group, int) and self.mbstd_group >= 1,
               f"D.mbstd_group must be >= 1, got {self.mbstd_group}")
        c4 = channels_at(4, self.cbase, self.cmax)
        _check(isinstance(self.mbstd_channels, int) and self.mbstd_channels >= 0
               and (self.mbstd_channels == 0 or c4 % self.mbstd_channels == 0),
               f"D.mbstd_channels must be >= 0 and divide the {c4} channels at 4x4, got {self.mbstd_channels}")
        _check(self.cmap_dim is None or self.cmap_dim >= 1, "D.cmap_dim must be positive or None")
        return self


@dataclass
class NetworkConfig:
    """Everything needed to rebuild G and D: the family, the preset name it came from, G and D."""

    family: str = "stylegan2"
    cfg: str = "stylegan2"
    G: GeneratorConfig = field(default_factory=GeneratorConfig)
    D: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)

    def validate(self) -> "NetworkConfig":
        _check(self.family in FAMILIES, f"family must be one of {', '.join(FAMILIES)}, got {self.family!r}")
        self.G.validate()
        self.D.validate()
        _check(self.G.resolution == self.D.resolution,
               f"G and D resolutions differ ({self.G.resolution} vs {self.D.resolution})")
        _check(self.G.img_channels == self.D.img_channels, "G and D image channels differ")
        _check(self.G.c_dim == self.D.c_dim, "G and D label sizes (c_dim) differ")
        return self

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "NetworkConfig":
        """Strict: unknown keys are an error (a file from a newer version, or a typo)."""
        if not isinstance(d, dict):
            raise ConfigError(f"network config must be a JSON object, got {type(d).__name__}")
        top = _strict_kwargs(cls, d, "config", skip=("G", "D"))
        g = _strict_kwargs(GeneratorConfig, d.get("G", {}), "config.G")
        dd = _strict_kwargs(DiscriminatorConfig, d.get("D", {}), "config.D")
        return cls(G=GeneratorConfig(**g), D=DiscriminatorConfig(**dd), **top).validate()

    @classmethod
    def from_json(cls, s: str) -> "NetworkConfig":
        try:
            d = json.loads(s)
        except json.JSONDecodeError as e:
            raise ConfigError(f"network config is not valid JSON: {e}") from None
        return cls.from_dict(d)


def _strict_kwargs(klass: type, d: Any, where: str, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    if not isinstance(d, dict):
        raise ConfigError(f"{where} must be a JSON object")
    names = {f.name for f in dataclasses.fields(klass)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}")
    return {k: v for k, v in d.items() if k not in skip}


# --------------------------------------------------------------------------------------------------------
# Presets: named configurations. The lineage issue adds ProGAN / StyleGAN / StyleGAN2 A–E here.

def _stylegan2_f() -> NetworkConfig:
    """StyleGAN2 config F: z = w = 512, 8 mapping layers, cbase 32768, cmax 512, skip G, resnet D."""
    return NetworkConfig(family="stylegan2", cfg="stylegan2-f")


PRESETS = {
    "stylegan2": _stylegan2_f,
    "stylegan2-f": _stylegan2_f,
}


def make_config(
    cfg: str = "stylegan2",
    *,
    resolution: int | None = None,
    img_channels: int | None = None,
    c_dim: int | None = None,
    cbase: int | None = None,
    cmax: int | None = None,
    map_depth: int | None = None,
    z_dim: int | None = None,
    w_dim: int | None = None,
    g_arch: str | None = None,
    d_arch: str | None = None,
    num_fp16_res: int | None = None,
    conv_clamp: float | None | str = "keep",
) -> NetworkConfig:
    """A preset by name with overrides applied to G and D alike; validated."""
    if cfg not in PRESETS:
        raise ConfigError(f"unknown --cfg {cfg!r}; known: {', '.join(sorted(PRESETS))}")
    c = PRESETS[cfg]()
    c.cfg = cfg
    shared = dict(resolution=resolution, img_channels=img_channels, c_dim=c_dim, cbase=cbase, cmax=cmax,
                  num_fp16_res=num_fp16_res)
    for k, v in shared.items():
        if v is not None:
            setattr(c.G, k, v)
            setattr(c.D, k, v)
    if conv_clamp != "keep":
        c.G.conv_clamp = c.D.conv_clamp = conv_clamp  # type: ignore[assignment]
    for k, v in dict(map_depth=map_depth, z_dim=z_dim, w_dim=w_dim, arch=g_arch).items():
        if v is not None:
            setattr(c.G, k, v)
    if d_arch is not None:
        c.D.arch = d_arch
    return c.validate()
