"""Typed network configuration, validated up front, saved with every checkpoint, and the named
configurations of the three papers: ProGAN, StyleGAN Table 1 (A–F) and StyleGAN2 Table 1 (A–F).

A :class:`NetworkConfig` alone rebuilds the networks (see :func:`stylegan.networks.build_networks`). A
:class:`Preset` pairs one with the training recipe of its paper row (:class:`TrainingRecipe`), which the
flags of :class:`stylegan.training.options.TrainingOptions` override one by one.
"""
from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass, field
from typing import Any, Callable

G_ARCHS = ("orig", "skip", "resnet")
#: ``projected``: a discriminator on frozen VGG16 features (Projected GAN); see stylegan.networks.projected.
D_ARCHS = ("orig", "skip", "resnet", "projected")
FAMILIES = ("progan", "stylegan", "stylegan2")
#: How w reaches the synthesis layers: ``none`` (the latent feeds the 4×4 input only; pixel norm after every
#: conv), ``adain`` (StyleGAN) or ``demod`` (StyleGAN2: modulated convolutions with weight demodulation).
STYLES = ("none", "adain", "demod")
#: ``fir``: FIR [1, 3, 3, 1] up- and downsampling (bilinear); ``nearest``: nearest-neighbour up, 2×2
#: average-pool down (ProGAN).
RESAMPLES = ("fir", "nearest")
#: Adversarial losses: non-saturating logistic (StyleGAN, StyleGAN2), WGAN-GP with drift (ProGAN).
LOSSES = ("nonsaturating", "wgangp")
#: Discriminator augmentation: adaptive (ADA), fixed strength, none, DiffAugment.
AUG_MODES = ("ada", "fixed", "noaug", "diffaug")


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


def num_ws_for(resolution: int) -> int:
    """Number of style vectors a synthesis network of this resolution consumes: 2·log2(res) − 2."""
    return 2 * int(math.log2(resolution)) - 2


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ConfigError(msg)


def _check_common(name: str, c: "GeneratorConfig | DiscriminatorConfig") -> None:
    _check(is_power_of_two(c.resolution) and 4 <= c.resolution <= 1024,
           f"{name}.resolution must be a power of two in [4, 1024], got {c.resolution}")
    _check(c.img_channels in (1, 3), f"{name}.img_channels must be 1 or 3, got {c.img_channels}")
    _check(isinstance(c.cbase, int) and 4 <= c.cbase <= MAX_CBASE,
           f"{name}.cbase must be an integer in [4, {MAX_CBASE}], got {c.cbase}")
    _check(isinstance(c.cmax, int) and 1 <= c.cmax <= MAX_CHANNELS,
           f"{name}.cmax must be an integer in [1, {MAX_CHANNELS}], got {c.cmax}")
    _check(isinstance(c.c_dim, int) and 0 <= c.c_dim <= MAX_CLASSES,
           f"{name}.c_dim must be an integer in [0, {MAX_CLASSES}], got {c.c_dim}")
    _check(channels_at(c.resolution, c.cbase, c.cmax) >= 1,
           f"{name}: cbase {c.cbase} gives no channels at resolution {c.resolution} (need cbase >= resolution)")
    _check(isinstance(c.num_fp16_res, int) and c.num_fp16_res >= 0,
           f"{name}.num_fp16_res must be >= 0, got {c.num_fp16_res}")
    _check(c.conv_clamp is None or c.conv_clamp > 0, f"{name}.conv_clamp must be positive or None")
    _check(c.resample in RESAMPLES, f"{name}.resample must be one of {', '.join(RESAMPLES)}, got {c.resample!r}")
    _check(isinstance(c.growing, bool), f"{name}.growing must be true or false")
    if c.progressive:
        _check(c.arch == "orig", f"{name}.arch must be 'orig' for the progressive (ProGAN-style) networks; "
                                 f"skip and resnet exist for StyleGAN2 E/F, without growing (got {c.arch!r})")
        _check(c.num_fp16_res == 0, f"{name}.num_fp16_res: reduced precision is implemented for the StyleGAN2 "
                                    f"E/F networks only; use 0")


@dataclass
class GeneratorConfig:
    """Generator: mapping network z (+ c) → w, synthesis network ws → image.

    z_dim, w_dim: latent sizes (512). c_dim: class-label size, 0 for unconditional.
    resolution, img_channels: output image size (power of two 4–1024) and channels (1 or 3).
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

    @property
    def num_ws(self) -> int:
        """One w per style layer (plus the last toRGB's); without styles, the latent enters once."""
        return 1 if self.style == "none" else num_ws_for(self.resolution)

    @property
    def progressive(self) -> bool:
        """Built by :mod:`stylegan.networks.progressive` (ProGAN, StyleGAN, StyleGAN2 A–D) rather than by the
        StyleGAN2 E/F synthesis network."""
        return self.growing or self.style != "demod"

    def validate(self) -> "GeneratorConfig":
        _check(self.style in STYLES, f"G.style must be one of {', '.join(STYLES)}, got {self.style!r}")
        _check_common("G", self)
        _check(isinstance(self.z_dim, int) and 0 <= self.z_dim <= MAX_LATENT,
               f"G.z_dim must be an integer in [0, {MAX_LATENT}], got {self.z_dim}")
        _check(self.z_dim > 0 or self.c_dim > 0, "G needs z_dim > 0 or c_dim > 0")
        _check(isinstance(self.w_dim, int) and 1 <= self.w_dim <= MAX_LATENT,
               f"G.w_dim must be an integer in [1, {MAX_LATENT}], got {self.w_dim}")
        _check(isinstance(self.map_depth, int) and 0 <= self.map_depth <= MAX_MAP_DEPTH,
               f"G.map_depth must be an integer in [0, {MAX_MAP_DEPTH}], got {self.map_depth}")
        if self.map_depth == 0:
            _check(self.c_dim == 0, "G.map_depth 0 (no mapping network) takes no class labels; conditional "
                                    "training needs a configuration with a mapping network")
            _check(self.w_dim == self.z_dim, f"G.map_depth 0 (no mapping network): the normalized z is the input, "
                                             f"so w_dim must equal z_dim (got {self.w_dim} and {self.z_dim})")
        _check(self.map_lr_mul > 0, f"G.map_lr_mul must be positive, got {self.map_lr_mul}")
        _check(0 <= self.w_avg_beta <= 1, f"G.w_avg_beta must be in [0, 1], got {self.w_avg_beta}")
        _check(self.arch in G_ARCHS, f"G.arch must be one of {', '.join(G_ARCHS)}, got {self.arch!r}")
        _check(isinstance(self.const_input, bool) and isinstance(self.noise, bool),
               "G.const_input and G.noise must be true or false")
        _check(self.style != "none" or not self.const_input,
               "G.style 'none' (no styles) needs the latent input: const_input must be false")
        if self.style == "demod":
            _check(self.resample == "fir" and self.const_input,
                   "G.style 'demod' (StyleGAN2) uses FIR resampling and the constant input")
        if not self.progressive:
            _check(self.noise, "G.noise false is available for the progressive networks only (style none or "
                               "adain, or growing)")
        return self


@dataclass
class DiscriminatorConfig:
    """Discriminator (ProGAN-derived).

    arch: ``orig`` | ``skip`` | ``resnet`` (default). mbstd_group, mbstd_channels: minibatch standard
    deviation group size (4) and channels (1); mbstd_gain multiplies its output (1 in the papers). cmap_dim:
    size of the class projection (conditional only; None = channels at 4²). resample, growing: as in :class:`GeneratorConfig` (ProGAN's discriminator:
    a fromRGB per resolution, average-pool down). Other fields as in :class:`GeneratorConfig`.
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

    @property
    def progressive(self) -> bool:
        """Built by :mod:`stylegan.networks.progressive` rather than by the StyleGAN2 discriminator."""
        return self.growing or self.resample != "fir"

    def validate(self) -> "DiscriminatorConfig":
        _check_common("D", self)
        _check(self.arch in D_ARCHS, f"D.arch must be one of {', '.join(D_ARCHS)}, got {self.arch!r}")
        if self.arch == "projected":
            _check(self.resolution >= 32 and not self.progressive,
                   f"D.arch 'projected' needs a non-growing discriminator of at least 32x32 (got {self.resolution})")
        _check(isinstance(self.mbstd_group, int) and 1 <= self.mbstd_group <= 4096,
               f"D.mbstd_group must be an integer in [1, 4096], got {self.mbstd_group}")
        c4 = channels_at(4, self.cbase, self.cmax)
        _check(isinstance(self.mbstd_channels, int) and self.mbstd_channels >= 0
               and (self.mbstd_channels == 0 or c4 % self.mbstd_channels == 0),
               f"D.mbstd_channels must be >= 0 and divide the {c4} channels at 4x4, got {self.mbstd_channels}")
        _check(self.mbstd_gain > 0, f"D.mbstd_gain must be positive, got {self.mbstd_gain}")
        _check(self.cmap_dim is None or 1 <= self.cmap_dim <= MAX_LATENT,
               f"D.cmap_dim must be None or an integer in [1, {MAX_LATENT}]")
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
        _check(self.G.growing == self.D.growing, "G and D grow together: G.growing and D.growing must agree")
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
        except (json.JSONDecodeError, RecursionError, TypeError) as e:
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


# --------------------------------------------------------------------------------------------------------
# Training recipes and named configurations (presets).

@dataclass(frozen=True)
class TrainingRecipe:
    """How a named configuration is trained in its paper (the defaults of ``stylegan train --cfg NAME``).

    loss: ``nonsaturating`` or ``wgangp`` (λ = 10, drift ε = 0.001). gamma: R1 weight (None: the heuristic
    0.0002·res²/batch; 0: no R1). r1_interval: R1 every this many minibatches, lazily (1: in every D step,
    not lazy). pl_weight: path-length weight (0: off); pl_interval: its lazy interval. style_mixing:
    mixing-regularization probability. glr, dlr: Adam learning rates. start_resolution, fade_kimg,
    stable_kimg: progressive growing starts at this resolution; each new one fades in over fade_kimg
    thousand images, then trains stable for stable_kimg. batch: minibatch size (32). aug: discriminator
    augmentation (``ada``). ema_kimg: half-life of the generator EMA (None: batch·10/32 kimg). betas: Adam's
    β1, β2 (0, 0.99). mode_seeking: weight of the mode-seeking penalty on G (0: off; not in the papers).
    train_noise: the noise inputs while training: ``random`` (the papers), ``const`` (each layer's fixed noise
    image) or ``none``. ema_rampup: the EMA half-life is at most this share of the images seen (0.05; 0: none).
    """

    loss: str = "nonsaturating"
    gamma: float | None = None
    r1_interval: int = 16
    pl_weight: float = 2.0
    pl_interval: int = 4
    style_mixing: float = 0.9
    glr: float = 0.002
    dlr: float = 0.002
    start_resolution: int = 4
    fade_kimg: float = 600
    stable_kimg: float = 600
    batch: int = 32
    aug: str = "ada"
    ema_kimg: float | None = None
    betas: tuple[float, float] = (0.0, 0.99)
    mode_seeking: float = 0.0
    train_noise: str = "random"
    ema_rampup: float = 0.05

    def validate(self) -> "TrainingRecipe":
        _check(self.loss in LOSSES, f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        _check(self.gamma is None or self.gamma >= 0, f"gamma must be >= 0, got {self.gamma}")
        _check(isinstance(self.r1_interval, int) and self.r1_interval >= 1, "the R1 interval must be >= 1")
        _check(isinstance(self.pl_interval, int) and self.pl_interval >= 1, "the path-length interval must be >= 1")
        _check(self.pl_weight >= 0, f"the path-length weight must be >= 0, got {self.pl_weight}")
        _check(0 <= self.style_mixing <= 1, f"the style-mixing probability must be in [0, 1], got {self.style_mixing}")
        _check(self.glr > 0 and self.dlr > 0, "learning rates must be positive")
        _check(is_power_of_two(self.start_resolution, 4),
               f"the start resolution must be a power of two >= 4, got {self.start_resolution}")
        _check(self.fade_kimg >= 0 and self.stable_kimg >= 0, "fade and stable phase lengths must be >= 0")
        _check(isinstance(self.batch, int) and self.batch >= 1, f"the batch must be >= 1, got {self.batch}")
        _check(self.aug in AUG_MODES, f"aug must be one of {', '.join(AUG_MODES)}, got {self.aug!r}")
        _check(self.ema_kimg is None or self.ema_kimg >= 0, "the EMA half-life must be >= 0")
        _check(self.ema_rampup >= 0, f"the EMA ramp-up must be >= 0, got {self.ema_rampup}")
        _check(self.mode_seeking >= 0, f"the mode-seeking weight must be >= 0, got {self.mode_seeking}")
        _check(self.train_noise in ("random", "const", "none"),
               f"train_noise must be random, const or none, got {self.train_noise!r}")
        _check(self.mode_seeking == 0 or self.loss == "nonsaturating",
               "the mode-seeking penalty is implemented with the non-saturating loss only")
        _check(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
               f"Adam betas must be in [0, 1), got {self.betas}")
        return self


@dataclass(frozen=True)
class Preset:
    """A named configuration: its networks, its training, one line on what it adds and the paper row."""

    name: str
    build: Callable[[], NetworkConfig]
    training: TrainingRecipe
    adds: str
    paper: str


def _progan() -> NetworkConfig:
    """ProGAN (seed 002's table): channels min(16384 / res, 512), latent input, pixel norm, nearest-neighbour
    up and average-pool down, minibatch std, progressive growing."""
    common = dict(cbase=16384, cmax=512, arch="orig", num_fp16_res=0, conv_clamp=None, resample="nearest",
                  growing=True)
    return NetworkConfig(family="progan",
                         G=GeneratorConfig(map_depth=0, style="none", const_input=False, noise=False, **common),
                         D=DiscriminatorConfig(**common))


def _lineage() -> dict[str, NetworkConfig]:
    """Each row of the papers' tables, as the previous row plus its one change."""
    rows: dict[str, NetworkConfig] = {}

    def row(name: str, base: NetworkConfig, family: str, **g: Any) -> NetworkConfig:
        c = NetworkConfig(family=family, cfg=name, G=dataclasses.replace(base.G, **g), D=dataclasses.replace(base.D))
        rows[name] = c
        return c

    a = row("stylegan-a", _progan(), "stylegan")
    b = row("stylegan-b", a, "stylegan", resample="fir")
    b.D.resample = "fir"
    c = row("stylegan-c", b, "stylegan", map_depth=8, style="adain")
    d = row("stylegan-d", c, "stylegan", const_input=True)
    e = row("stylegan-e", d, "stylegan", noise=True)
    f = row("stylegan-f", e, "stylegan")
    a2 = row("stylegan2-a", f, "stylegan2")
    b2 = row("stylegan2-b", a2, "stylegan2", style="demod")
    c2 = row("stylegan2-c", b2, "stylegan2")
    d2 = row("stylegan2-d", c2, "stylegan2")
    e2 = row("stylegan2-e", d2, "stylegan2", growing=False, arch="skip", num_fp16_res=4, conv_clamp=256)
    e2.D = DiscriminatorConfig(cbase=16384, arch="resnet")
    row("stylegan2-f", e2, "stylegan2", cbase=32768)
    rows["stylegan2-f"].D.cbase = 32768
    return rows


_PROGAN_TRAINING = TrainingRecipe(loss="wgangp", gamma=0.0, r1_interval=1, pl_weight=0.0, style_mixing=0.0,
                                  glr=0.001, dlr=0.001, start_resolution=4)
# StyleGAN B-F: non-saturating loss, R1 in every D step, growing from 8², ProGAN's learning rate.
_STYLEGAN_TRAINING = TrainingRecipe(r1_interval=1, pl_weight=0.0, style_mixing=0.0, glr=0.001, dlr=0.001,
                                    start_resolution=8)
_R = dataclasses.replace

_PRESET_LIST = [
    Preset("progan", _progan, _PROGAN_TRAINING,
           "Progressive GAN: latent input, pixel norm, nearest up / average-pool down, minibatch std, "
           "progressive growing, WGAN-GP + drift",
           "ProGAN (Karras et al. 2018), Table 2 networks; CelebA-HQ 1024²"),
    Preset("stylegan-a", lambda: _lineage()["stylegan-a"], _PROGAN_TRAINING,
           "the Progressive GAN baseline (its networks and WGAN-GP training)",
           "StyleGAN Table 1 A (FFHQ FID 8.04)"),
    Preset("stylegan-b", lambda: _lineage()["stylegan-b"], _STYLEGAN_TRAINING,
           "+ tuning: bilinear (FIR) up/down, non-saturating loss + R1, growing from 8²",
           "StyleGAN Table 1 B (FFHQ FID 5.25)"),
    Preset("stylegan-c", lambda: _lineage()["stylegan-c"], _STYLEGAN_TRAINING,
           "+ mapping network (8 layers) and styles (AdaIN)", "StyleGAN Table 1 C (FFHQ FID 4.85)"),
    Preset("stylegan-d", lambda: _lineage()["stylegan-d"], _STYLEGAN_TRAINING,
           "+ learned constant input instead of the latent", "StyleGAN Table 1 D (FFHQ FID 4.88)"),
    Preset("stylegan-e", lambda: _lineage()["stylegan-e"], _STYLEGAN_TRAINING,
           "+ per-layer noise inputs", "StyleGAN Table 1 E (FFHQ FID 4.42)"),
    Preset("stylegan-f", lambda: _lineage()["stylegan-f"], _R(_STYLEGAN_TRAINING, style_mixing=0.9),
           "+ mixing regularization (90 %)", "StyleGAN Table 1 F (FFHQ FID 4.40)"),
    Preset("stylegan2-a", lambda: _lineage()["stylegan2-a"],
           TrainingRecipe(r1_interval=1, pl_weight=0.0, start_resolution=8),
           "the StyleGAN baseline (config F of StyleGAN, lr 0.002)",
           "StyleGAN2 Table 1 A (FFHQ 1024² FID 4.40)"),
    Preset("stylegan2-b", lambda: _lineage()["stylegan2-b"],
           TrainingRecipe(r1_interval=1, pl_weight=0.0, start_resolution=8),
           "+ weight demodulation (revised style block: modulated conv, noise and bias outside)",
           "StyleGAN2 Table 1 B (FID 4.39)"),
    Preset("stylegan2-c", lambda: _lineage()["stylegan2-c"], TrainingRecipe(pl_weight=0.0, start_resolution=8),
           "+ lazy regularization (R1 every 16 minibatches)", "StyleGAN2 Table 1 C (FID 4.38)"),
    Preset("stylegan2-d", lambda: _lineage()["stylegan2-d"], TrainingRecipe(start_resolution=8),
           "+ path-length regularization (weight 2, every 4 minibatches)", "StyleGAN2 Table 1 D (FID 4.34)"),
    Preset("stylegan2-e", lambda: _lineage()["stylegan2-e"], TrainingRecipe(),
           "+ no growing, skip generator, resnet discriminator", "StyleGAN2 Table 1 E (FID 3.31)"),
    Preset("stylegan2-f", lambda: _lineage()["stylegan2-f"], TrainingRecipe(),
           "+ large networks (cbase 32768: 512 channels up to 64²)", "StyleGAN2 Table 1 F (FID 2.84)"),
]



def _small() -> NetworkConfig:
    """StyleGAN2's networks (modulated convolutions, skip G, resnet D) sized for a CPU: see SMALL_TRAINING."""
    c = _lineage()["stylegan2-f"]
    for net in (c.G, c.D):
        net.cbase, net.cmax = SMALL_CBASE, SMALL_CMAX
    c.G.map_depth = SMALL_MAP_DEPTH
    c.D.mbstd_group = SMALL_MBSTD_GROUP
    return c


# The small-compute recipe, from the study in docs/small-compute.md (equal training time on a 2-core CPU). Not a
# paper row: the papers' rows above stay as the papers define them.
SMALL_CBASE, SMALL_CMAX, SMALL_MAP_DEPTH, SMALL_MBSTD_GROUP = 1024, 64, 2, 4
SMALL_TRAINING = TrainingRecipe(gamma=None, pl_weight=0.0, style_mixing=0.0, batch=16, aug="diffaug")

_PRESET_LIST.append(
    Preset("small", _small, SMALL_TRAINING,
           "StyleGAN2's networks, narrow (cbase 1024, cmax 64, 2 mapping layers), batch 16, no path length or "
           "mixing, DiffAugment: the fastest setting of the small-compute study (docs/small-compute.md)",
           "not a paper row: this package's recipe for a laptop"))

def _ada(fmaps: float, map_depth: int, mbstd_group: int, d_arch: str = "resnet") -> NetworkConfig:
    """StyleGAN2's networks as the stylegan2-ada code's presets size them: cbase = fmaps·32768, cmax 512."""
    c = _lineage()["stylegan2-f"]
    for net in (c.G, c.D):
        net.cbase, net.cmax = int(fmaps * 32768), 512
    c.G.map_depth, c.D.mbstd_group, c.D.arch = map_depth, mbstd_group, d_arch
    return c


# The presets of the stylegan2-ada-pytorch code (its train.py), which users of that code know by name; not rows
# of the papers' tables. Same lr for G and D; EMA ramp-up none except cifar's.
_PRESET_LIST.extend([
    Preset("paper256", lambda: _ada(0.5, 8, 8),
           TrainingRecipe(batch=64, glr=0.0025, dlr=0.0025, gamma=1.0, ema_kimg=20, ema_rampup=0.0),
           "stylegan2-ada's paper256: cbase 16384, batch 64, minibatch-std group 8, lr 0.0025, γ 1, EMA 20 kimg",
           "the ADA paper's 256² setting (FFHQ, LSUN Cat ...)"),
    Preset("paper512", lambda: _ada(1, 8, 8),
           TrainingRecipe(batch=64, glr=0.0025, dlr=0.0025, gamma=0.5, ema_kimg=20, ema_rampup=0.0),
           "stylegan2-ada's paper512: cbase 32768, batch 64, minibatch-std group 8, lr 0.0025, γ 0.5, EMA 20 kimg",
           "the ADA paper's 512² setting (AFHQ, BreCaHAD, MetFaces)"),
    Preset("paper1024", lambda: _ada(1, 8, 4),
           TrainingRecipe(batch=32, glr=0.002, dlr=0.002, gamma=2.0, ema_kimg=10, ema_rampup=0.0),
           "stylegan2-ada's paper1024: cbase 32768, batch 32, minibatch-std group 4, lr 0.002, γ 2, EMA 10 kimg",
           "the ADA paper's 1024² setting (FFHQ, MetFaces)"),
    Preset("cifar", lambda: _ada(1, 2, 32, d_arch="orig"),
           TrainingRecipe(batch=64, glr=0.0025, dlr=0.0025, gamma=0.01, ema_kimg=500, ema_rampup=0.05,
                          pl_weight=0.0, style_mixing=0.0),
           "stylegan2-ada's cifar: cbase 32768, 2 mapping layers, batch 64, minibatch-std group 32, lr 0.0025, "
           "γ 0.01, EMA 500 kimg, no path length or mixing, orig D",
           "the ADA paper's CIFAR-10 setting (FID 2.42 class-conditional)"),
])

#: Short names for the last row of each paper.
ALIASES = {"stylegan": "stylegan-f", "stylegan2": "stylegan2-f"}
#: Every name ``--cfg`` accepts (aliases included) → its preset.
PRESETS: dict[str, Preset] = {p.name: p for p in _PRESET_LIST}
PRESETS.update({alias: PRESETS[target] for alias, target in ALIASES.items()})


def get_preset(cfg: str) -> Preset:
    if cfg not in PRESETS:
        raise ConfigError(f"unknown --cfg {cfg!r}; known: {', '.join(sorted(PRESETS))}")
    return PRESETS[cfg]


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
    mbstd_group: int | None = None,
    mbstd_channels: int | None = None,
    mbstd_gain: float | None = None,
    num_fp16_res: int | None = None,
    conv_clamp: float | None | str = "keep",
) -> NetworkConfig:
    """A preset by name with overrides applied to G and D alike; validated.

    Without a mapping network (``map_depth`` 0) w is the normalized z: a ``z_dim`` override sets ``w_dim``
    too unless that is given."""
    c = get_preset(cfg).build()
    c.cfg = cfg
    shared = dict(resolution=resolution, img_channels=img_channels, c_dim=c_dim, cbase=cbase, cmax=cmax,
                  num_fp16_res=num_fp16_res)
    for k, v in shared.items():
        if v is not None:
            setattr(c.G, k, v)
            setattr(c.D, k, v)
    if conv_clamp != "keep":
        c.G.conv_clamp = c.D.conv_clamp = conv_clamp  # type: ignore[assignment]
    if map_depth is not None and c.G.style == "none" and map_depth != c.G.map_depth:
        raise ConfigError(f"map_depth: the {cfg} configuration has no mapping network (its latent feeds the 4x4 "
                          f"input directly); a mapping network would make it another architecture")
    for k, v in dict(map_depth=map_depth, z_dim=z_dim, w_dim=w_dim, arch=g_arch).items():
        if v is not None:
            setattr(c.G, k, v)
    if c.G.map_depth == 0 and z_dim is not None and w_dim is None:
        c.G.w_dim = z_dim
    if d_arch is not None:
        c.D.arch = d_arch
    if mbstd_group is not None:
        c.D.mbstd_group = mbstd_group
    if mbstd_channels is not None:
        c.D.mbstd_channels = mbstd_channels
    if mbstd_gain is not None:
        c.D.mbstd_gain = mbstd_gain
    return c.validate()
