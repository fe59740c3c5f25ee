"""Typed network configuration, validated up front and saved with every checkpoint: a :class:`NetworkConfig`
alone rebuilds the networks (see :func:`stylegan.networks.build_networks`). The named configurations are in
:mod:`stylegan.presets`."""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any

#: The alias-free generators (StyleGAN3 T and R; family ``stylegan3``), built by stylegan.networks.stylegan3.
ALIAS_FREE_ARCHS = ("stylegan3-t", "stylegan3-r")
#: Their synthesis layers before toRGB; num_ws is this + 2.
ALIAS_FREE_LAYERS = 14
G_ARCHS = ("orig", "skip", "resnet") + ALIAS_FREE_ARCHS
D_ARCHS = ("orig", "skip", "resnet")
FAMILIES = ("progan", "stylegan", "stylegan2", "stylegan3")
#: How w reaches the synthesis layers: ``none`` (the latent feeds the 4×4 input only; pixel norm after every
#: conv), ``adain`` (StyleGAN) or ``demod`` (StyleGAN2: modulated convolutions with weight demodulation).
STYLES = ("none", "adain", "demod")
#: ``fir``: FIR [1, 3, 3, 1] up- and downsampling (bilinear); ``nearest``: nearest-neighbour up, 2×2
#: average-pool down (ProGAN).
RESAMPLES = ("fir", "nearest")
#: Adversarial losses: non-saturating logistic (StyleGAN, StyleGAN2), WGAN-GP with drift (ProGAN), the relativistic
#: pairing loss RpGAN (R3GAN; not a recipe of the papers here).
LOSSES = ("nonsaturating", "wgangp", "rpgan")
#: Discriminator augmentation: adaptive (ADA), fixed strength, none, DiffAugment.
AUG_MODES = ("ada", "fixed", "noaug", "diffaug")
#: The named augmentation pipelines (--augpipe): the transform groups each enables (stylegan.training.augment).
AUGMENT_PIPELINES: dict[str, tuple[str, ...]] = {
    "blit": ("blit",),
    "geom": ("geom",),
    "color": ("color",),
    "filter": ("filter",),
    "noise": ("noise",),
    "cutout": ("cutout",),
    "bg": ("blit", "geom"),
    "bgc": ("blit", "geom", "color"),
    "bgcf": ("blit", "geom", "color", "filter"),
    "bgcfn": ("blit", "geom", "color", "filter", "noise"),
    "bgcfnc": ("blit", "geom", "color", "filter", "noise", "cutout"),
}
#: Noise inputs of the synthesis layers: fresh each call, the stored buffer, or none (stylegan.nn.noise).
NOISE_MODES = ("random", "const", "none")


#: Upper bounds of the network sizes a configuration may claim (far above every network of the papers), so
#: that a configuration read from a file cannot make the loader build gigabytes of layers before the file's
#: tensors are compared with it.
MAX_LATENT = 8192  # z_dim, w_dim, cmap_dim
MAX_CLASSES = 100_000
MAX_CHANNELS = 8192  # cmax
MAX_CBASE = 2 ** 22
MAX_MAP_DEPTH = 64


class ConfigError(ValueError):
    """A configuration value is out of range or unknown."""


def is_power_of_two(n: int, minimum: int = 1) -> bool:
    """``n`` is an integer power of two, at least ``minimum``: the one check of every resolution."""
    return isinstance(n, int) and not isinstance(n, bool) and n >= max(minimum, 1) and (n & (n - 1)) == 0


def channels_at(resolution: int, cbase: int, cmax: int) -> int:
    """Feature maps at a resolution: ``min(cbase / res, cmax)``."""
    return min(cbase // resolution, cmax)


def stage_shape(resolution: int, base_h: int = 4, base_w: int = 4) -> tuple[int, int]:
    """(height, width) of a network stage of nominal ``resolution`` (its longer side) when the 4×4 stage is
    ``base_h × base_w``: square networks have base 4×4; a 4:3 landscape network (e.g. 512×384) has 3×4."""
    return resolution * base_h // 4, resolution * base_w // 4


def num_ws_for(resolution: int) -> int:
    """Number of style vectors a synthesis network of this resolution consumes: 2·log2(res) − 2."""
    return 2 * int(math.log2(resolution)) - 2


def require(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


def _check_common(name: str, c: "GeneratorConfig | DiscriminatorConfig") -> None:
    require(is_power_of_two(c.resolution) and 4 <= c.resolution <= 1024,
           f"{name}.resolution must be a power of two in [4, 1024], got {c.resolution}")
    require(c.img_channels in (1, 3), f"{name}.img_channels must be 1 or 3, got {c.img_channels}")
    require(isinstance(c.cbase, int) and 4 <= c.cbase <= MAX_CBASE,
           f"{name}.cbase must be an integer in [4, {MAX_CBASE}], got {c.cbase}")
    require(isinstance(c.cmax, int) and 1 <= c.cmax <= MAX_CHANNELS,
           f"{name}.cmax must be an integer in [1, {MAX_CHANNELS}], got {c.cmax}")
    require(isinstance(c.c_dim, int) and 0 <= c.c_dim <= MAX_CLASSES,
           f"{name}.c_dim must be an integer in [0, {MAX_CLASSES}], got {c.c_dim}")
    require(channels_at(c.resolution, c.cbase, c.cmax) >= 1,
           f"{name}: cbase {c.cbase} gives no channels at resolution {c.resolution} (need cbase >= resolution)")
    require(isinstance(c.num_fp16_res, int) and c.num_fp16_res >= 0,
           f"{name}.num_fp16_res must be >= 0, got {c.num_fp16_res}")
    require(c.conv_clamp is None or c.conv_clamp > 0, f"{name}.conv_clamp must be positive or None")
    require(isinstance(c.base_h, int) and isinstance(c.base_w, int) and 1 <= min(c.base_h, c.base_w)
            and max(c.base_h, c.base_w) == 4,
            f"{name}.base_h and base_w (the lowest stage) must be integers in [1, 4] with the larger one 4, "
            f"got {c.base_h}x{c.base_w}")
    if (c.base_h, c.base_w) != (4, 4):
        require(not c.progressive, f"{name}: non-square images ({c.base_h}x{c.base_w} base) are implemented for the "
                                   f"StyleGAN2 E/F networks only")
    require(c.resample in RESAMPLES, f"{name}.resample must be one of {', '.join(RESAMPLES)}, got {c.resample!r}")
    require(isinstance(c.growing, bool), f"{name}.growing must be true or false")
    if c.progressive:
        require(c.arch == "orig", f"{name}.arch must be 'orig' for the progressive (ProGAN-style) networks; "
                                 f"skip and resnet exist for StyleGAN2 E/F, without growing (got {c.arch!r})")
        require(c.num_fp16_res == 0, f"{name}.num_fp16_res: reduced precision is implemented for the StyleGAN2 "
                                    f"E/F networks only; use 0")


@dataclass
class GeneratorConfig:
    """Generator: mapping network z (+ c) → w, synthesis network ws → image.

    z_dim, w_dim: latent sizes (512). c_dim: class-label size, 0 for unconditional.
    resolution, img_channels: output image size (power of two 4–1024) and channels (1 or 3).
    base_h, base_w: the lowest stage (the learned constant), 4×4 for square images; for non-square ones the
    shorter side is 1–3 (e.g. 3×4: 4:3 landscape, ``resolution`` × ``resolution``·3/4), every stage keeps
    that shape (see :func:`stage_shape`).
    map_depth: mapping layers (8; 0 = no mapping network, the normalized z is the input).
    map_lr_mul: their learning-rate multiplier (0.01).
    w_avg_beta: decay of the running average of w used by truncation (0.995).
    cbase, cmax: channels at resolution r are min(cbase / r, cmax) (32768, 512 for config F).
    arch: synthesis architecture, ``orig`` | ``skip`` (default) | ``resnet``.
    num_fp16_res: the highest resolutions that run in reduced precision (4); conv_clamp: clamp of conv
    outputs (256) that keeps them in the float16 range.

    The older members of the lineage (built by :mod:`stylegan.networks.progressive`) differ in:
    style: ``none`` | ``adain`` | ``demod`` (default; see :data:`STYLES`). const_input: a learned 4×4
    constant (default) or a dense layer from the latent (ProGAN, StyleGAN A–C). noise: per-layer noise
    inputs. resample: ``fir`` (default) or ``nearest`` (see :data:`RESAMPLES`). growing: progressive
    growing: a toRGB per resolution, images at the current stage, new stages faded in linearly.
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
    style: str = "demod"
    const_input: bool = True
    noise: bool = True
    resample: str = "fir"
    growing: bool = False
    base_h: int = 4
    base_w: int = 4

    @property
    def img_shape(self) -> tuple[int, int]:
        """(height, width) of the images: ``resolution`` is the longer side."""
        return stage_shape(self.resolution, self.base_h, self.base_w)

    @property
    def num_ws(self) -> int:
        """One w per style layer (plus the last toRGB's); without styles, the latent enters once."""
        if self.arch in ALIAS_FREE_ARCHS:
            return ALIAS_FREE_LAYERS + 2
        return 1 if self.style == "none" else num_ws_for(self.resolution)

    @property
    def progressive(self) -> bool:
        """Built by :mod:`stylegan.networks.progressive` (ProGAN, StyleGAN, StyleGAN2 A–D) rather than by the
        StyleGAN2 E/F synthesis network."""
        return self.growing or self.style != "demod"

    def validate(self) -> "GeneratorConfig":
        require(self.style in STYLES, f"G.style must be one of {', '.join(STYLES)}, got {self.style!r}")
        _check_common("G", self)
        require(isinstance(self.z_dim, int) and 0 <= self.z_dim <= MAX_LATENT,
               f"G.z_dim must be an integer in [0, {MAX_LATENT}], got {self.z_dim}")
        require(self.z_dim > 0 or self.c_dim > 0, "G needs z_dim > 0 or c_dim > 0")
        require(isinstance(self.w_dim, int) and 1 <= self.w_dim <= MAX_LATENT,
               f"G.w_dim must be an integer in [1, {MAX_LATENT}], got {self.w_dim}")
        require(isinstance(self.map_depth, int) and 0 <= self.map_depth <= MAX_MAP_DEPTH,
               f"G.map_depth must be an integer in [0, {MAX_MAP_DEPTH}], got {self.map_depth}")
        if self.map_depth == 0:
            require(self.c_dim == 0, "G.map_depth 0 (no mapping network) takes no class labels; conditional "
                                    "training needs a configuration with a mapping network")
            require(self.w_dim == self.z_dim, f"G.map_depth 0 (no mapping network): the normalized z is the input, "
                                             f"so w_dim must equal z_dim (got {self.w_dim} and {self.z_dim})")
        require(self.map_lr_mul > 0, f"G.map_lr_mul must be positive, got {self.map_lr_mul}")
        require(0 <= self.w_avg_beta <= 1, f"G.w_avg_beta must be in [0, 1], got {self.w_avg_beta}")
        require(self.arch in G_ARCHS, f"G.arch must be one of {', '.join(G_ARCHS)}, got {self.arch!r}")
        require(isinstance(self.const_input, bool) and isinstance(self.noise, bool),
               "G.const_input and G.noise must be true or false")
        require(self.style != "none" or not self.const_input,
               "G.style 'none' (no styles) needs the latent input: const_input must be false")
        if self.style == "demod":
            require(self.resample == "fir" and self.const_input,
                   "G.style 'demod' (StyleGAN2) uses FIR resampling and the constant input")
        if self.arch in ALIAS_FREE_ARCHS:
            require(not self.progressive and not self.noise and (self.base_h, self.base_w) == (4, 4),
                   f"G.arch {self.arch!r} (alias-free): square images, no growing, style 'demod', G.noise false")
        elif not self.progressive:
            require(self.noise, "G.noise false is available for the progressive networks only (style none or "
                               "adain, or growing)")
        return self


@dataclass
class DiscriminatorConfig:
    """Discriminator (ProGAN-derived).

    arch: ``orig`` | ``skip`` | ``resnet`` (default). mbstd_group, mbstd_channels: minibatch standard
    deviation group size (4) and channels (1); mbstd_gain multiplies its output (1 in the papers). cmap_dim:
    size of the class projection (conditional only; None = channels at 4²). uncond_head: a conditional D also
    has an unconditional output, added to the projection's, beside which transitional training
    (``--cond-fade``) fades the projection in (no paper row has it; False). resample, growing: as in
    :class:`GeneratorConfig` (ProGAN's discriminator: a fromRGB per resolution, average-pool down). Other fields
    as in :class:`GeneratorConfig`.
    """

    c_dim: int = 0
    resolution: int = 1024
    img_channels: int = 3
    cbase: int = 32768
    cmax: int = 512
    arch: str = "resnet"
    mbstd_group: int = 4
    mbstd_channels: int = 1
    mbstd_gain: float = 1.0
    cmap_dim: int | None = None
    num_fp16_res: int = 4
    conv_clamp: float | None = 256
    resample: str = "fir"
    growing: bool = False
    base_h: int = 4
    base_w: int = 4
    uncond_head: bool = False

    @property
    def img_shape(self) -> tuple[int, int]:
        return stage_shape(self.resolution, self.base_h, self.base_w)

    @property
    def progressive(self) -> bool:
        """Built by :mod:`stylegan.networks.progressive` rather than by the StyleGAN2 discriminator."""
        return self.growing or self.resample != "fir"

    def validate(self) -> "DiscriminatorConfig":
        _check_common("D", self)
        require(self.arch in D_ARCHS, f"D.arch must be one of {', '.join(D_ARCHS)}, got {self.arch!r}")
        require(isinstance(self.mbstd_group, int) and 1 <= self.mbstd_group <= 4096,
               f"D.mbstd_group must be an integer in [1, 4096], got {self.mbstd_group}")
        c4 = channels_at(4, self.cbase, self.cmax)
        require(isinstance(self.mbstd_channels, int) and self.mbstd_channels >= 0
               and (self.mbstd_channels == 0 or c4 % self.mbstd_channels == 0),
               f"D.mbstd_channels must be >= 0 and divide the {c4} channels at 4x4, got {self.mbstd_channels}")
        require(self.mbstd_gain > 0, f"D.mbstd_gain must be positive, got {self.mbstd_gain}")
        require(self.cmap_dim is None or 1 <= self.cmap_dim <= MAX_LATENT,
               f"D.cmap_dim must be None or an integer in [1, {MAX_LATENT}]")
        require(not self.uncond_head or (self.c_dim > 0 and not self.progressive),
               "D.uncond_head needs a conditional StyleGAN2 discriminator (c_dim > 0, not progressive)")
        return self


@dataclass
class NetworkConfig:
    """Everything needed to rebuild G and D: the family, the preset name it came from, G and D."""

    family: str = "stylegan2"
    cfg: str = "stylegan2"
    G: GeneratorConfig = field(default_factory=GeneratorConfig)
    D: DiscriminatorConfig = field(default_factory=DiscriminatorConfig)

    def validate(self) -> "NetworkConfig":
        require(self.family in FAMILIES, f"family must be one of {', '.join(FAMILIES)}, got {self.family!r}")
        self.G.validate()
        self.D.validate()
        require(self.G.img_shape == self.D.img_shape,
               f"G and D image sizes differ ({self.G.img_shape} vs {self.D.img_shape})")
        require(self.G.img_channels == self.D.img_channels, "G and D image channels differ")
        require((self.family == "stylegan3") == (self.G.arch in ALIAS_FREE_ARCHS),
               f"family 'stylegan3' goes with G.arch {' or '.join(ALIAS_FREE_ARCHS)} (got {self.family!r}, "
               f"{self.G.arch!r})")
        require(self.G.c_dim == self.D.c_dim, "G and D label sizes (c_dim) differ")
        require(self.G.growing == self.D.growing, "G and D grow together: G.growing and D.growing must agree")
        return self

    @property
    def growing(self) -> bool:
        return self.G.growing

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
        except (ValueError, RecursionError, TypeError) as e:  # ValueError: also integers of too many digits
            raise ConfigError(f"network config is not valid JSON: {str(e)[:100]}") from None
        return cls.from_dict(d)


def _type_ok(value: Any, annotation: str) -> bool:
    """Whether a JSON value fits a field's annotation (``int``, ``float | None``, ...): bool is not a number,
    an int is a float, a float must be finite."""
    for t in (a.strip() for a in annotation.split("|")):
        if t == "None" and value is None:
            return True
        if t == "bool" and isinstance(value, bool):
            return True
        if t == "str" and isinstance(value, str):
            return True
        if t == "int" and isinstance(value, int) and not isinstance(value, bool):
            return True
        if (t == "float" and isinstance(value, (int, float)) and not isinstance(value, bool)
                and math.isfinite(value)):
            return True
    return False


def _strict_kwargs(klass: type, d: Any, where: str, skip: tuple[str, ...] = ()) -> dict[str, Any]:
    """The fields of ``klass`` in ``d``: unknown names and values of the wrong JSON type are errors."""
    if not isinstance(d, dict):
        raise ConfigError(f"{where} must be a JSON object")
    fields = {f.name: f for f in dataclasses.fields(klass)}
    unknown = sorted(set(d) - set(fields))
    if unknown:
        raise ConfigError(f"{where}: unknown field(s) {', '.join(unknown)}")
    out = {}
    for k, v in d.items():
        if k in skip:
            continue
        annotation = str(fields[k].type)
        if not _type_ok(v, annotation):
            raise ConfigError(f"{where}.{k} must be {annotation.replace(' | ', ' or ')}, got {json.dumps(v)[:40]}")
        out[k] = v
    return out
