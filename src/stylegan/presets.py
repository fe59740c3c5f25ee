"""The named configurations: every row of ProGAN, StyleGAN Table 1 (A–F) and StyleGAN2 Table 1 (A–F), the
presets of the stylegan2-ada code, and this package's own recipes. A :class:`Preset` pairs a
:class:`~stylegan.config.NetworkConfig` with the training recipe of its paper row (:class:`TrainingRecipe`),
which the options of :class:`stylegan.training.options.TrainingOptions` override one by one;
:func:`make_config` builds a preset's configuration with overrides."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

from stylegan.config import (AUG_MODES, LOSSES, ConfigError, DiscriminatorConfig, GeneratorConfig, NetworkConfig,
                             is_power_of_two, require)

@dataclass(frozen=True)
class TrainingRecipe:
    """How a named configuration is trained in its paper (the defaults of ``stylegan train --cfg NAME``).

    loss: ``nonsaturating``, ``wgangp`` (λ = 10, drift ε = 0.001) or ``rpgan`` (R3GAN's relativistic pairing
    loss; no paper row here uses it). gamma: R1 weight (None: the heuristic
    0.0002·res²/batch; 0: no R1). r1_interval: R1 every this many minibatches, lazily (1: in every D step,
    not lazy). pl_weight: path-length weight (0: off); pl_interval: its lazy interval. style_mixing:
    mixing-regularization probability. glr, dlr: Adam learning rates. start_resolution, fade_kimg,
    stable_kimg: progressive growing starts at this resolution; each new one fades in over fade_kimg
    thousand images, then trains stable for stable_kimg. batch: minibatch size (32). aug: discriminator
    augmentation (``ada``). ema_kimg: half-life of the generator EMA (None: batch·10/32 kimg). betas: Adam's
    β1, β2 (0, 0.99). ema_rampup: the EMA half-life is at most this share of the images seen (0.05; 0: none).
    r2_gamma: R2 weight (R1's formula on fakes, on R1's interval; 0: off). gamma_end, gamma_kimg: the R1 weight
    decays from gamma to gamma_end over gamma_kimg thousand images along a cosine, then stays (None: constant);
    R2's weight follows in proportion, r2_gamma·γ(t)/gamma. None of the papers' rows uses these three (R3GAN).
    blur_sigma, blur_kimg: every image D sees is blurred with σ falling linearly from blur_sigma to 0 over
    blur_kimg·batch/32 thousand images (StyleGAN3-R: 10 and 200; 0: none).
    cond_fade: (start, end) in kimg: transitional training of a conditional GAN (Shahbazi et al. 2022,
    "Collapse by Conditioning"): unconditional until ``start``, the class conditioning of G and of D faded in
    linearly until ``end`` (:func:`stylegan.training.loss.condition_strength`); None: conditional throughout.
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
    ema_rampup: float = 0.05
    r2_gamma: float = 0.0
    gamma_end: float | None = None
    gamma_kimg: float | None = None
    blur_sigma: float = 0.0
    blur_kimg: float = 0.0
    cond_fade: tuple[float, float] | None = None

    @classmethod
    def from_saved(cls, saved) -> "TrainingRecipe | None":
        """The recipe a snapshot saved (``extra["recipe"]``), validated; None when it saved none or one this
        version cannot read (the configuration's recipe is used then)."""
        if not isinstance(saved, dict):
            return None
        names = {f.name for f in dataclasses.fields(cls)}
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in saved.items() if k in names}
        try:
            return cls(**values).validate()
        except (TypeError, ValueError, ConfigError):
            return None

    def validate(self) -> "TrainingRecipe":
        require(self.loss in LOSSES, f"loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        require(self.gamma is None or self.gamma >= 0, f"gamma must be >= 0, got {self.gamma}")
        require(isinstance(self.r1_interval, int) and self.r1_interval >= 1, "the R1 interval must be >= 1")
        require(isinstance(self.pl_interval, int) and self.pl_interval >= 1, "the path-length interval must be >= 1")
        require(self.pl_weight >= 0, f"the path-length weight must be >= 0, got {self.pl_weight}")
        require(0 <= self.style_mixing <= 1, f"the style-mixing probability must be in [0, 1], got {self.style_mixing}")
        require(self.glr > 0 and self.dlr > 0, "learning rates must be positive")
        require(is_power_of_two(self.start_resolution, 4),
               f"the start resolution must be a power of two >= 4, got {self.start_resolution}")
        require(self.fade_kimg >= 0 and self.stable_kimg >= 0, "fade and stable phase lengths must be >= 0")
        require(isinstance(self.batch, int) and self.batch >= 1, f"the batch must be >= 1, got {self.batch}")
        require(self.aug in AUG_MODES, f"aug must be one of {', '.join(AUG_MODES)}, got {self.aug!r}")
        require(self.ema_kimg is None or self.ema_kimg >= 0, "the EMA half-life must be >= 0")
        require(self.ema_rampup >= 0, f"the EMA ramp-up must be >= 0, got {self.ema_rampup}")
        self._validate_gamma_schedule()
        require(self.blur_sigma >= 0 and self.blur_kimg >= 0, "the D blur σ and its fade length must be >= 0")
        require(len(self.betas) == 2 and all(0 <= b < 1 for b in self.betas),
               f"Adam betas must be in [0, 1), got {self.betas}")
        require(self.cond_fade is None or (len(self.cond_fade) == 2 and 0 <= self.cond_fade[0] <= self.cond_fade[1]),
                f"the conditioning fade must be START END in kimg with 0 <= START <= END, got {self.cond_fade}")
        return self

    def _validate_gamma_schedule(self) -> None:
        require(self.r2_gamma >= 0, f"the R2 weight must be >= 0, got {self.r2_gamma}")
        require(self.gamma_end is None or self.gamma_end >= 0, f"gamma_end must be >= 0, got {self.gamma_end}")
        require(self.gamma_kimg is None or self.gamma_kimg > 0, f"gamma_kimg must be > 0, got {self.gamma_kimg}")
        require(self.gamma_end is None or self.gamma_kimg is not None,
                "--gamma-end needs --gamma-kimg, the length of the decay in kimg")
        require(self.gamma_kimg is None or self.gamma_end is not None,
                "--gamma-kimg without --gamma-end: there is nothing to decay to (give --gamma-end)")
        require(self.gamma_end is None or self.gamma != 0,
                "--gamma-end with --gamma 0: the schedule decays from the R1 weight --gamma, which must be positive")


@dataclass(frozen=True)
class Preset:
    """A named configuration: its networks, its training, one line on what it adds and the paper row."""

    name: str
    build: Callable[[], NetworkConfig]
    training: TrainingRecipe
    adds: str
    paper: str


def _progan() -> NetworkConfig:
    """ProGAN (Karras et al. 2018, Table 2): channels min(16384 / res, 512), latent input, pixel norm,
    nearest-neighbour up and average-pool down, minibatch std, progressive growing."""
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



def _stylegan3(arch: str) -> NetworkConfig:
    """StyleGAN3 (Karras et al. 2021) as the authors' train.py builds it: the alias-free G (2 mapping layers, w_avg
    decay 0.998, cbase 32768 and cmax 512 for T, doubled for R) and StyleGAN2's resnet D (cbase 32768)."""
    double = 2 if arch == "stylegan3-r" else 1
    g = GeneratorConfig(map_depth=2, w_avg_beta=0.998, cbase=32768 * double, cmax=512 * double, arch=arch,
                        noise=False)
    return NetworkConfig(family="stylegan3", cfg=arch, G=g, D=DiscriminatorConfig(cbase=32768, arch="resnet"))


# The authors' train.py for --cfg stylegan3-t / -r: lr G 0.0025, D 0.002, no mixing or path length; R1 γ has no
# default there (chosen per dataset), so the recipe keeps the heuristic.
_SG3_TRAINING = TrainingRecipe(glr=0.0025, dlr=0.002, style_mixing=0.0, pl_weight=0.0)
_PRESET_LIST.extend([
    Preset("stylegan3-t", lambda: _stylegan3("stylegan3-t"), _SG3_TRAINING,
           "alias-free G: Fourier-feature input, 14 layers of modulated conv 3×3 + filtered leaky ReLU (Kaiser "
           "sinc filters), no noise or skips; 2 mapping layers; lr G 0.0025 D 0.002, no mixing or path length",
           "StyleGAN3 (Karras et al. 2021) config T"),
    Preset("stylegan3-r", lambda: _stylegan3("stylegan3-r"), _R(_SG3_TRAINING, blur_sigma=10.0, blur_kimg=200.0),
           "+ 1×1 convolutions, radial (jinc) downsampling filters, doubled channels; D's input blurred (σ 10) "
           "fading out over 200 kimg", "StyleGAN3 (Karras et al. 2021) config R"),
])


def _small() -> NetworkConfig:
    """StyleGAN2's networks (modulated convolutions, skip G, resnet D) sized for a CPU: see SMALL_TRAINING."""
    c = _lineage()["stylegan2-f"]
    for net in (c.G, c.D):
        net.cbase, net.cmax = SMALL_CBASE, SMALL_CMAX
    c.G.map_depth = SMALL_MAP_DEPTH
    c.D.mbstd_group = SMALL_MBSTD_GROUP
    return c


# ------------------------------------------------------------------ not in the papers
# This package's own recipe, the one thing the small-compute study kept (studies/small_compute; documented in
# docs/configurations.md, "Not in the papers"). The papers' rows above stay as the papers define them.
SMALL_CBASE, SMALL_CMAX, SMALL_MAP_DEPTH, SMALL_MBSTD_GROUP = 1024, 64, 2, 4
SMALL_TRAINING = TrainingRecipe(gamma=None, pl_weight=0.0, style_mixing=0.0, batch=16, aug="diffaug")

_PRESET_LIST.append(
    Preset("small", _small, SMALL_TRAINING,
           "StyleGAN2's networks, narrow (cbase 1024, cmax 64, 2 mapping layers), batch 16, no path length or "
           "mixing, DiffAugment: the fastest setting of the small-compute study (studies/small_compute)",
           "not a paper row: this package's recipe for a laptop"))


def _small_rpgan() -> NetworkConfig:
    """StyleGAN2's networks with 64 channels at every resolution up to 64² (cbase 2048), 2 mapping layers and a
    minibatch-std group of 32: the packaged mnist32's networks."""
    c = _lineage()["stylegan2-f"]
    for net in (c.G, c.D):
        net.cbase, net.cmax = 2048, 64
    c.G.map_depth = 2
    c.D.mbstd_group = 32
    return c


# R3GAN's objective (Huang et al. 2024) on those networks, trained from scratch: the relativistic pairing loss
# with R1 and R2, their weight cosine-decayed from 1 to 0.1 over 100 kimg (R3GAN's StackedMNIST schedule);
# DiffAugment, no path length or mixing. Batch 16 with R1 and R2 every 4th D step: the early collapse ends after
# a number of steps rather than of images, so small batches leave it sooner (30 minutes with --procs 2: FID 26.3
# at batch 16, 32.6 at 32, 48.6 at 64). The packaged mnist32 was trained at batch 64 with R1 and R2 in every
# step (its model card). Measured in docs/training.md, "Training on a CPU: what to expect".
SMALL_RPGAN_TRAINING = TrainingRecipe(loss="rpgan", gamma=1.0, r2_gamma=1.0, r1_interval=4, gamma_end=0.1,
                                      gamma_kimg=100.0, pl_weight=0.0, style_mixing=0.0, batch=16, aug="diffaug")
_PRESET_LIST.append(
    Preset("small-rpgan", _small_rpgan, SMALL_RPGAN_TRAINING,
           "64 channels (cbase 2048, cmax 64), 2 mapping layers, minibatch-std group 32; R3GAN's relativistic "
           "pairing loss with R1 + R2 every 4th D step, γ 1 → 0.1 over 100 kimg (cosine); batch 16, DiffAugment, "
           "no path length or mixing: digits from scratch on a 2-core CPU",
           "not a paper row: this package's from-scratch recipe for a laptop"))

# The same at 1.5× the learning rate, for a 30-minute budget: from scratch on mnist5k the digits come sooner (at
# 135.8 kimg, two runs read 74.6 % and 76.7 % confidently, FID 21.3 and 21.7; lr 0.002 read 67–69 % there, lr 0.004
# 73.6 %). Measured in docs/training.md. small-rpgan keeps 0.002: the packaged models' cards cite it as it is.
SMALL_RPGAN_30MIN_TRAINING = dataclasses.replace(SMALL_RPGAN_TRAINING, glr=0.003, dlr=0.003)
_PRESET_LIST.append(
    Preset("small-rpgan-30min", _small_rpgan, SMALL_RPGAN_30MIN_TRAINING,
           "small-rpgan at Adam lr 0.003 for G and D (small-rpgan: 0.002): digits from scratch in 30 minutes on a "
           "2-core CPU",
           "not a paper row: this package's 30-minute recipe for a laptop"))


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

AUTO = "auto"


def auto_settings(resolution: int, gpus: int) -> dict:
    """What stylegan2-ada's ``auto`` preset chooses for a resolution and a number of GPUs (processes): batch
    max(min(gpus·min(4096 // res, 32), 64), gpus), minibatch-std group min(batch // gpus, 4), cbase
    32768·(1 if res ≥ 512 else 0.5), 2 mapping layers, learning rate 0.002 at 1024² and above, else 0.0025. R1 γ
    (0.0002·res²/batch), the EMA half-life (batch·10/32 kimg) and its ramp-up (0.05) are the recipe's own
    defaults, which follow the batch."""
    batch = max(min(gpus * min(4096 // resolution, 32), 64), gpus)
    lr = 0.002 if resolution >= 1024 else 0.0025
    return {"batch": batch, "mbstd_group": min(batch // gpus, 4), "cbase": 32768 if resolution >= 512 else 16384,
            "map_depth": 2, "glr": lr, "dlr": lr}


_PRESET_LIST.append(
    Preset(AUTO, lambda: _ada(0.5, 2, 4), TrainingRecipe(),
           "stylegan2-ada's auto: batch, minibatch-std group, channels and learning rate from the resolution and the "
           "number of processes (auto_settings); 2 mapping layers; γ, EMA from the batch",
           "the ADA code's default preset"))

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
    uncond_head: bool | None = None,
    num_fp16_res: int | None = None,
    conv_clamp: float | None | str = "keep",
    base: tuple[int, int] | None = None,
) -> NetworkConfig:
    """A preset by name with overrides applied to G and D alike; validated.

    Without a mapping network (``map_depth`` 0) w is the normalized z: a ``z_dim`` override sets ``w_dim``
    too unless that is given. ``base``: (base_h, base_w) of non-square networks (see
    :class:`~stylegan.config.GeneratorConfig`)."""
    c = get_preset(cfg).build()
    c.cfg = cfg
    shared = dict(resolution=resolution, img_channels=img_channels, c_dim=c_dim, cbase=cbase, cmax=cmax,
                  num_fp16_res=num_fp16_res, base_h=base[0] if base else None, base_w=base[1] if base else None)
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
    if uncond_head is not None:
        c.D.uncond_head = uncond_head
    return c.validate()
