"""Training options: typed, validated before anything runs, saved as ``options.json`` in the run folder and
in every snapshot."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from stylegan.config import (AUG_MODES, D_ARCHS, G_ARCHS, LOSSES, PRESETS, ConfigError, TrainingRecipe,
                             is_power_of_two)
from stylegan.training.augment import PIPELINES

AUG_PIPELINES = tuple(PIPELINES)  # the named pipelines of the augmentation, in their order


#: Training options that override a field of the configuration's recipe (option name → recipe field).
RECIPE_OPTIONS = {"loss": "loss", "gamma": "gamma", "r1_interval": "r1_interval", "pl_weight": "pl_weight",
                  "pl_interval": "pl_interval", "style_mixing": "style_mixing", "glr": "glr", "dlr": "dlr",
                  "start_res": "start_resolution", "fade_kimg": "fade_kimg", "stable_kimg": "stable_kimg",
                  "batch": "batch", "aug": "aug", "ema_kimg": "ema_kimg", "betas": "betas",
                  "mode_seeking": "mode_seeking", "train_noise": "train_noise", "ema_rampup": "ema_rampup"}


class OptionsError(ValueError):
    """A training option is out of range or inconsistent."""


@dataclass
class TrainingOptions:
    """Options of ``stylegan train`` (defaults as in the authors' StyleGAN2 configuration F).

    outdir: parent folder of run folders ``NNNNN-desc``. data: prepared dataset path or ``builtin:NAME``.
    data_resolution: resolution for a built-in dataset (their default otherwise).
    cfg: named configuration (``stylegan configs`` lists them); cbase, cmax, map_depth, g_arch, d_arch,
    mbstd_group, mbstd_channels and mbstd_gain (the discriminator's minibatch-std group size, channels and
    output multiplier) override its networks. The training options that are None take the configuration's
    recipe (:class:`stylegan.config.TrainingRecipe`; the values in brackets are StyleGAN2 config F's):
    loss (nonsaturating | wgangp), gamma: R1 weight (0.0002·res²/batch), r1_interval (16; 1 = R1 in every D
    step, not lazy), pl_weight: path-length weight (2; 0 = off), pl_interval (4), style_mixing: mixing
    probability (0.9), glr, dlr: Adam learning rates (0.002), betas: Adam's β1, β2 (0, 0.99), mode_seeking:
    weight of the mode-seeking penalty on G (0), train_noise: the noise inputs while training (random),
    batch [32], aug [ada], ema_kimg: half-life of the generator EMA in kimg [batch·10/32], start_res,
    fade_kimg, stable_kimg: progressive growing's first resolution and phase lengths in kimg (growing
    configurations only).
    cond: train on the dataset's class labels. mirror: add x-flipped copies of the data.
    batch: global batch (split across processes).
    kimg: length in thousands of real images shown to D. minutes: budget of training time (the training steps
    only, not snapshots or metrics), counted across resumes; training stops at kimg or minutes, whichever
    comes first. tick: kimg per progress report; snap: ticks per snapshot (image grid + checkpoint).
    ema_rampup: ramp-up ratio of the EMA half-life [0.05; 0 = none]. fp32: disable mixed precision
    (float16 in the highest resolutions on CUDA, with conv clamp). cpu_bf16: run those layers in bfloat16
    on the CPU (off by default: see README for when it pays).
    workers: data-loading processes. procs: training processes on this machine (one process group, each with
    an equal share of the cores; the batch is split between them); under torchrun leave it at 1.
    seed: random seed. resume: checkpoint path, or ``latest`` (newest snapshot of the newest run in outdir).
    dry_run: print the options and networks, train nothing.
    device: auto, cpu, cuda. desc: extra text for the run folder name.
    metrics: comma-separated metric names (e.g. fid10k_full) computed on G_ema at every snapshot.
    aug: discriminator augmentation: ``ada`` (adaptive strength), ``fixed`` (strength ``p``), ``noaug``, or
    ``diffaug`` (DiffAugment: colour, translation, cutout). augpipe: the ADA pipeline (bgc). p: fixed or
    initial strength. target: ADA's target for r_t = E[sign(D(real))] (0.6). ada_kimg: kimg for p to move
    by 1 (500). freezed: freeze the first N discriminator blocks, from the top resolution (transfer learning).
    """

    outdir: str = "runs"
    data: str = ""
    data_resolution: int | None = None
    cfg: str = "stylegan2"
    cbase: int | None = None
    cmax: int | None = None
    map_depth: int | None = None
    g_arch: str | None = None
    d_arch: str | None = None
    mbstd_group: int | None = None
    mbstd_channels: int | None = None
    mbstd_gain: float | None = None
    cond: bool = False
    mirror: bool = False
    batch: int | None = None
    loss: str | None = None
    gamma: float | None = None
    kimg: float = 25000
    minutes: float | None = None
    tick: float = 4
    snap: int = 50
    glr: float | None = None
    dlr: float | None = None
    betas: tuple[float, float] | None = None
    mode_seeking: float | None = None
    train_noise: str | None = None
    ema_kimg: float | None = None
    ema_rampup: float | None = None
    style_mixing: float | None = None
    pl_weight: float | None = None
    r1_interval: int | None = None
    pl_interval: int | None = None
    start_res: int | None = None
    fade_kimg: float | None = None
    stable_kimg: float | None = None
    metrics: str = ""
    aug: str | None = None
    augpipe: str = "bgc"
    p: float = 0.0
    target: float = 0.6
    ada_kimg: float = 500
    freezed: int = 0
    fp32: bool = False
    cpu_bf16: bool = False
    workers: int = 2
    procs: int = 1
    seed: int = 0
    resume: str | None = None
    dry_run: bool = False
    device: str = "auto"
    desc: str | None = None

    def validate(self) -> "TrainingOptions":
        def check(cond, msg):
            if not cond:
                raise OptionsError(msg)
        check(bool(self.data), "--data is required (a dataset path or builtin:NAME)")
        check(self.cfg in PRESETS, f"unknown --cfg {self.cfg!r}; known: {', '.join(sorted(PRESETS))}")
        check(self.batch is None or (isinstance(self.batch, int) and self.batch >= 1),
              f"--batch must be >= 1, got {self.batch}")
        check(self.aug is None or self.aug in AUG_MODES, f"--aug must be one of {', '.join(AUG_MODES)}, got {self.aug!r}")
        # batch and aug not given: the configuration's (saved resolved, so that a resumed run keeps them)
        if self.batch is None or self.aug is None:
            recipe = self.recipe()
            self.batch = recipe.batch if self.batch is None else self.batch
            self.aug = recipe.aug if self.aug is None else self.aug
        check(self.g_arch is None or self.g_arch in G_ARCHS, f"--g-arch must be one of {G_ARCHS}")
        check(self.d_arch is None or self.d_arch in D_ARCHS, f"--d-arch must be one of {D_ARCHS}")
        check(self.mbstd_group is None or (isinstance(self.mbstd_group, int) and self.mbstd_group >= 1),
              f"--mbstd-group must be >= 1, got {self.mbstd_group}")
        check(self.mbstd_channels is None or (isinstance(self.mbstd_channels, int) and self.mbstd_channels >= 0),
              f"--mbstd-channels must be >= 0, got {self.mbstd_channels}")
        check(self.mbstd_gain is None or self.mbstd_gain > 0, f"--mbstd-gain must be positive, got {self.mbstd_gain}")
        check(self.loss is None or self.loss in LOSSES, f"--loss must be one of {', '.join(LOSSES)}, got {self.loss!r}")
        check(self.gamma is None or self.gamma >= 0, f"--gamma must be >= 0, got {self.gamma}")
        check(self.kimg > 0, f"--kimg must be positive, got {self.kimg}")
        check(self.minutes is None or self.minutes > 0, f"--minutes must be positive, got {self.minutes}")
        check(self.tick > 0, f"--tick must be positive, got {self.tick}")
        check(isinstance(self.snap, int) and self.snap >= 1, f"--snap must be >= 1, got {self.snap}")
        check((self.glr is None or self.glr > 0) and (self.dlr is None or self.dlr > 0),
              "--glr and --dlr must be positive")
        check(self.ema_kimg is None or self.ema_kimg >= 0, "--ema-kimg must be >= 0")
        check(self.style_mixing is None or 0 <= self.style_mixing <= 1,
              f"--style-mixing must be in [0, 1], got {self.style_mixing}")
        check(self.pl_weight is None or self.pl_weight >= 0, "--pl-weight must be >= 0")
        check(all(v is None or (isinstance(v, int) and v >= 1) for v in (self.r1_interval, self.pl_interval)),
              "regularization intervals (--r1-interval, --pl-interval) must be integers >= 1")
        check(self.start_res is None or is_power_of_two(self.start_res, 4),
              f"--start-res must be a power of two >= 4, got {self.start_res}")
        check(all(v is None or v >= 0 for v in (self.fade_kimg, self.stable_kimg)),
              "--fade-kimg and --stable-kimg must be >= 0")
        check(self.workers >= 0, "--workers must be >= 0")
        check(isinstance(self.procs, int) and self.procs >= 1, f"--procs must be >= 1, got {self.procs}")
        check(self.batch % self.procs == 0, f"--batch {self.batch} is not divisible by --procs {self.procs}")
        if self.metrics:
            from stylegan.metrics.registry import list_metrics

            unknown = [m for m in self.metric_names() if m not in list_metrics()]
            check(not unknown, f"--metrics: unknown metric(s) {', '.join(unknown)}; `stylegan metrics --list` names them")
        check(self.augpipe in AUG_PIPELINES, f"--augpipe must be one of {', '.join(AUG_PIPELINES)}, got {self.augpipe!r}")
        check(0 <= self.p <= 1, f"--p must be in [0, 1], got {self.p}")
        check(0 < self.target < 1, f"--target must be in (0, 1), got {self.target}")
        check(self.ada_kimg > 0, "--ada-kimg must be positive")
        check(isinstance(self.freezed, int) and self.freezed >= 0, "--freezed must be >= 0")
        check(0 <= self.seed < 2 ** 32, "--seed must be in [0, 2^32)")
        check(self.device in ("auto", "cpu", "cuda") or self.device.startswith("cuda:"),
              f"--device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        self.recipe()  # the configuration's recipe with these options on top must be consistent
        return self

    def metric_names(self) -> list[str]:
        return [m.strip() for m in self.metrics.split(",") if m.strip()]

    def recipe(self, cfg: str | None = None) -> TrainingRecipe:
        """The training recipe of the configuration ``cfg`` (default: ``self.cfg``) with the options given
        here on top."""
        cfg = cfg or self.cfg
        if cfg not in PRESETS:
            raise OptionsError(f"unknown --cfg {cfg!r}; known: {', '.join(sorted(PRESETS))}")
        given = {field: getattr(self, name) for name, field in RECIPE_OPTIONS.items()
                 if getattr(self, name) is not None}
        try:
            return dataclasses.replace(PRESETS[cfg].training, **given).validate()
        except ConfigError as e:
            raise OptionsError(str(e)) from None

    def resolved_gamma(self, resolution: int, cfg: str | None = None) -> float:
        """The R1 weight: --gamma, the configuration's, or the authors' heuristic 0.0002·res²/batch."""
        gamma = self.recipe(cfg).gamma
        return gamma if gamma is not None else 0.0002 * resolution ** 2 / self.batch

    def resolved_ema_kimg(self, cfg: str | None = None) -> float:
        """The EMA half-life: --ema-kimg, the configuration's, or the authors' batch·10/32."""
        ema = self.recipe(cfg).ema_kimg
        return ema if ema is not None else self.batch * 10 / 32

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainingOptions":
        names = {f.name for f in dataclasses.fields(cls)}
        if isinstance(d.get("betas"), list):  # JSON has no tuples
            d = {**d, "betas": tuple(d["betas"])}
        unknown = sorted(set(d) - names)
        if unknown:
            raise OptionsError(f"unknown training option(s): {', '.join(unknown)}")
        return cls(**d)
