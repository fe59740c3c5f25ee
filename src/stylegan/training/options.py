"""Training options: typed, validated before anything runs, saved as ``options.json`` in the run folder and
in every snapshot."""
from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import Field, dataclass, field, fields
from typing import Any

from stylegan.config import AUG_MODES, D_ARCHS, G_ARCHS, LOSSES, ConfigError, is_power_of_two
from stylegan.device import DEVICE_CHOICES, DEVICE_PATTERN
from stylegan.presets import AUTO, auto_settings, PRESETS, TrainingRecipe
from stylegan.config import AUGMENT_PIPELINES as PIPELINES

AUG_PIPELINES = tuple(PIPELINES)  # the named pipelines of the augmentation, in their order


class OptionsError(ValueError):
    """A training option is out of range or inconsistent."""


def option(default: Any, help: str, *, kind: str, low: float | None = None, high: float | None = None,
           low_open: bool = False, high_open: bool = False, choices: tuple[str, ...] | None = None,
           recipe: str | None = None, metavar: str | None = None, flag: str | None = None,
           directory: bool = False) -> Any:
    """A training option, declared once: its default, its help text, its kind (``int``, ``float``, ``str``,
    ``bool`` or ``pair`` of floats), its bounds or choices, and — for options whose default comes from the
    configuration's training recipe — the recipe field it overrides (``recipe``). ``stylegan train``'s
    command-line options and :meth:`TrainingOptions.validate` are generated from these declarations.
    ``flag``: the command-line form of a bool (``--x/--no-x`` by default; ``is_flag``: only ``--x``; or the
    name of the negative switch). ``directory``: the value is a folder path."""
    meta = dict(help=help, kind=kind, low=low, high=high, low_open=low_open, high_open=high_open,
                choices=choices, recipe=recipe, metavar=metavar, flag=flag, directory=directory)
    return field(default=default, metadata=meta)


def cli_name(name: str) -> str:
    """The command-line spelling of an option: ``style_mixing`` → ``--style-mixing``."""
    return "--" + name.replace("_", "-")


def _bounds_text(m: dict[str, Any]) -> str:
    low, high = m["low"], m["high"]
    if low is not None and high is not None:
        return f"in {'(' if m['low_open'] else '['}{low:g}, {high:g}{')' if m['high_open'] else ']'}"
    if low is not None:
        return f"{'>' if m['low_open'] else '>='} {low:g}"
    return f"{'<' if m['high_open'] else '<='} {high:g}"


def _in_bounds(v: float, m: dict[str, Any]) -> bool:
    low, high = m["low"], m["high"]
    return ((low is None or (v > low if m["low_open"] else v >= low))
            and (high is None or (v < high if m["high_open"] else v <= high)))


def option_problem(f: Field, value: Any) -> str | None:
    """What is wrong with ``value`` for the option declared by ``f`` (None: nothing): its kind, its bounds,
    its choices. None is every optional option's "not given"."""
    m, name = f.metadata, cli_name(f.name)
    if value is None:
        return None if f.default is None else f"{name} is required"
    kind = m["kind"]
    if kind == "bool":
        return None if isinstance(value, bool) else f"{name} must be true or false, got {value!r}"
    if kind == "str":
        if not isinstance(value, str):
            return f"{name} must be a string, got {value!r}"
        if m["choices"] is not None and value not in m["choices"]:
            return f"{name} must be one of {', '.join(m['choices'])}, got {value!r}"
        return None
    if kind == "pair":
        ok = (isinstance(value, (tuple, list)) and len(value) == 2
              and all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
                      and _in_bounds(v, m) for v in value))
        return None if ok else f"{name} must be two numbers {_bounds_text(m)}, got {value!r}"
    if kind == "int":
        if not isinstance(value, int) or isinstance(value, bool):
            return f"{name} must be an integer, got {value!r}"
    elif not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
        return f"{name} must be a finite number, got {value!r}"
    if not _in_bounds(value, m):
        return f"{name} must be {_bounds_text(m)}, got {value!r}"
    return None


def preset_default_text(recipe_field: str) -> str:
    """The default of a [preset] option as help text: the value in the default configuration, then the
    configurations that differ, e.g. ``[preset: 32; 16 for small; 64 for cifar, paper256]``."""
    def show(v):
        if v is None:
            return {"gamma": "heuristic 0.0002 * res^2 / batch", "ema_kimg": "batch * 10 / 32",
                    "gamma_end": "none, constant"}.get(recipe_field, "-")
        return " ".join(f"{x:g}" for x in v) if isinstance(v, tuple) else (f"{v:g}" if isinstance(v, float) else str(v))
    default = getattr(PRESETS[DEFAULT_CFG].training, recipe_field)
    others: dict[str, list[str]] = {}
    for name in sorted(PRESETS):
        v = getattr(PRESETS[name].training, recipe_field)
        if v != default:
            others.setdefault(show(v), []).append(name)
    return "[preset: " + "; ".join([show(default)] + [f"{v} for {', '.join(n)}" for v, n in others.items()]) + "]"


DEFAULT_CFG = "stylegan2"

#: The options that describe one run rather than how its networks are trained: a transfer from a base
#: (``--resume NAME``) takes every other option from the options the base was trained with, these from the
#: command line. ``cond_fade`` is one run's too: its transfer keeps the class conditioning's strength λ where the
#: base was trained (1 past its fade; a base taken mid-fade, as the packaged mnist32, keeps its λ).
RUN_FIELDS = frozenset({"outdir", "data", "data_resolution", "kimg", "minutes", "tick", "snap", "metrics",
                        "freezed", "threads", "workers", "procs", "seed", "resume", "dry_run", "device", "desc",
                        "cond_fade"})

#: Options that earlier versions saved and this one no longer has, with the values that meant "off": a
#: snapshot or packaged network saved with them still loads.
RETIRED: dict[str, tuple[Any, ...]] = {"mode_seeking": (None, 0, 0.0), "train_noise": (None, "random")}


@dataclass(frozen=True)
class TrainingOptions:
    """The options of ``stylegan train``: each field's declaration (:func:`option`) carries its help text,
    bounds and, for the options marked [preset], the training-recipe field whose value it overrides (None:
    the recipe of the named configuration, :class:`stylegan.presets.TrainingRecipe`).

    Frozen: the methods that fill in options (:meth:`validate`, :meth:`resolve_auto`) return a new object.
    A run resolves them once, in :func:`stylegan.training.run.resolve_run`."""

    outdir: str = option("runs", "Parent folder of the run folders (NNNNN-desc).", kind="str", directory=True)
    data: str = option("", "Prepared dataset (folder or zip from `stylegan dataset`) or a built-in dataset, e.g. "
                       "builtin:mnist5k.", kind="str", metavar="PATH|builtin:NAME")
    data_resolution: int | None = option(None, "Resolution of a built-in dataset [its default].", kind="int", low=1)
    cfg: str = option("stylegan2", "Named configuration: progan, stylegan-a..f, stylegan2-a..f (stylegan = "
                      "stylegan-f, stylegan2 = stylegan2-f), the stylegan2-ada presets, small; `stylegan configs` "
                      "lists them. It sets the networks and the defaults of the options marked [preset].",
                      kind="str", choices=tuple(sorted(PRESETS)))
    cbase: int | None = option(None, "Channel base: channels = min(cbase / res, cmax) [32768].", kind="int", low=1)
    cmax: int | None = option(None, "Maximum channels per layer [512].", kind="int", low=1)
    map_depth: int | None = option(None, "Mapping network layers [8].", kind="int", low=0)
    g_arch: str | None = option(None, "Generator architecture [skip].", kind="str", choices=G_ARCHS)
    d_arch: str | None = option(None, "Discriminator architecture [resnet].", kind="str", choices=D_ARCHS)
    mbstd_group: int | None = option(None, "Minibatch-std group size of the discriminator [4].", kind="int", low=1)
    mbstd_channels: int | None = option(None, "Minibatch-std channels of the discriminator (must divide its "
                                        "channels at 4x4) [1].", kind="int", low=0)
    mbstd_gain: float | None = option(None, "Multiplier of the minibatch-std feature, so that D sees a lack of "
                                      "variety early [1].", kind="float", low=0, low_open=True)
    cond: bool = option(False, "Train on the dataset's class labels.", kind="bool")
    mirror: bool = option(False, "Add x-flipped copies of the images.", kind="bool")
    batch: int | None = option(None, "Total batch size, split across processes.", kind="int", low=1, recipe="batch")
    loss: str | None = option(None, "Adversarial loss: non-saturating logistic, WGAN-GP with drift, or R3GAN's "
                              "relativistic pairing loss (rpgan).", kind="str", choices=LOSSES, recipe="loss")
    gamma: float | None = option(None, "R1 regularization weight (0: none).", kind="float", low=0, recipe="gamma")
    r1_interval: int | None = option(None, "Lazy R1 every N minibatches; 1 = in every D step.", kind="int", low=1,
                                     recipe="r1_interval")
    r2_gamma: float | None = option(None, "R2 regularization weight: R1's penalty on generated images, on R1's "
                                    "interval (0: none; R3GAN).", kind="float", low=0, recipe="r2_gamma")
    gamma_end: float | None = option(None, "Cosine-decay the R1 weight from --gamma to this over --gamma-kimg, then "
                                     "keep it; R2's weight follows in proportion (R3GAN).", kind="float",
                                     low=0, recipe="gamma_end")
    gamma_kimg: float | None = option(None, "Length of the --gamma-end decay in thousands of images.", kind="float",
                                      low=0, low_open=True, recipe="gamma_kimg")
    cond_fade: tuple[float, float] | None = option(
        None, "With --cond: transitional training (Shahbazi et al. 2022): unconditional until START kimg, the class "
        "conditioning of G and D faded in linearly until END; against the collapse of conditional GANs on small "
        "data. D gets an unconditional output beside its class projection.", kind="pair", low=0,
        recipe="cond_fade", metavar="START END")
    kimg: float = option(25000, "Training length in thousands of real images.", kind="float", low=0, low_open=True)
    minutes: float | None = option(None, "Budget of training time (training steps only, counted across resumes); "
                                   "stops at --kimg or --minutes, whichever comes first.", kind="float", low=0,
                                   low_open=True)
    tick: float = option(4, "Progress report interval in kimg.", kind="float", low=0, low_open=True)
    snap: int = option(50, "Snapshot (image grid and checkpoint) interval in ticks.", kind="int", low=1)
    glr: float | None = option(None, "G learning rate.", kind="float", low=0, low_open=True, recipe="glr")
    dlr: float | None = option(None, "D learning rate.", kind="float", low=0, low_open=True, recipe="dlr")
    betas: tuple[float, float] | None = option(None, "Adam's beta1 and beta2.", kind="pair", low=0, high=1,
                                               high_open=True, recipe="betas", metavar="B1 B2")
    ema_kimg: float | None = option(None, "Half-life of the G EMA in kimg.", kind="float", low=0, recipe="ema_kimg")
    ema_rampup: float | None = option(None, "EMA ramp-up: the half-life is at most this share of the images seen "
                                      "(0: none).", kind="float", low=0, recipe="ema_rampup")
    style_mixing: float | None = option(None, "Style-mixing regularization probability, e.g. 0, 0.5, 0.9, 1.",
                                        kind="float", low=0, high=1, recipe="style_mixing")
    pl_weight: float | None = option(None, "Path-length regularization weight, 0 disables it.", kind="float", low=0,
                                     recipe="pl_weight")
    pl_interval: int | None = option(None, "Lazy path-length regularization every N minibatches; 1 = in every G "
                                     "step.", kind="int", low=1, recipe="pl_interval")
    start_res: int | None = option(None, "Progressive growing: first resolution.", kind="int", low=4,
                                   recipe="start_resolution")
    fade_kimg: float | None = option(None, "Progressive growing: thousands of images over which a new resolution "
                                     "fades in.", kind="float", low=0, recipe="fade_kimg")
    stable_kimg: float | None = option(None, "Progressive growing: thousands of images of stable training per "
                                       "resolution.", kind="float", low=0, recipe="stable_kimg")
    metrics: str = option("", "Metrics computed on G_ema at every snapshot, e.g. fid10k_full,kid10k_full (none by "
                          "default).", kind="str", metavar="LIST")
    aug: str | None = option(None, "Discriminator augmentation: adaptive (ADA), fixed strength --p, none, or "
                             "DiffAugment.", kind="str", choices=AUG_MODES, recipe="aug")
    augpipe: str = option("bgc", "Augmentation pipeline: blit, geom(etric), color, filter, noise, cutout and "
                          "combinations.", kind="str", choices=AUG_PIPELINES)
    p: float = option(0.0, "Augmentation strength: fixed with --aug fixed, initial with --aug ada.", kind="float",
                      low=0, high=1)
    target: float = option(0.6, "ADA target for r_t = E[sign(D(real))].", kind="float", low=0, high=1,
                           low_open=True, high_open=True)
    ada_kimg: float = option(500, "ADA adjustment speed: kimg for p to move from 0 to 1.", kind="float", low=0,
                             low_open=True)
    freezed: int = option(0, "Freeze the first N discriminator blocks, from the top resolution (transfer "
                          "learning).", kind="int", low=0)
    fp32: bool = option(False, "--fp32 disables mixed precision (float16 in the highest resolutions on CUDA; "
                        "bfloat16 there on a CPU that has it natively, for layers of 256+ channels).",
                        kind="bool", flag="--mixed")
    cpu_bf16: bool = option(False, "On the CPU, run the reduced-precision layers in bfloat16 even where the "
                            "default would not (it does on CPUs with native bfloat16 for layers of 256+ channels; "
                            "--fp32 turns it off).", kind="bool",
                            flag="is_flag")
    threads: int | None = option(None, "CPU threads per training process (default: the cores idle when training "
                                 "starts, shared among --procs, at least 1; OMP_NUM_THREADS, when set, is kept). "
                                 "More threads than idle cores make training several times slower.", kind="int",
                                 low=1)
    workers: int = option(2, "Data-loading processes.", kind="int", low=0)
    procs: int = option(1, "Training processes on this machine, sharing its cores and splitting the batch (2 uses "
                        "both cores of a 2-core CPU better than 2 threads for small networks); under torchrun "
                        "leave it at 1.", kind="int", low=1)
    seed: int = option(0, "Random seed.", kind="int", low=0, high=2 ** 32 - 1)
    resume: str | None = option(None, "Continue from a snapshot, or from the newest snapshot in --outdir "
                                "('latest'); or start a new run from a packaged base by name (transfer learning, "
                                "with the base's recipe: `stylegan train --resume twemoji-nofaces32 --data "
                                "builtin:twemoji-faces`), the authors' .pkl or a rosinality .pt (networks only).",
                                kind="str", metavar="PATH|NAME|latest")
    dry_run: bool = option(False, "Print the options and networks and exit without training.", kind="bool",
                           flag="is_flag")
    device: str = option("auto", "auto (CUDA if present, else CPU), cpu, cuda, cuda:N or mps (Apple).", kind="str")
    desc: str | None = option(None, "Extra text for the run folder name.", kind="str")

    def validate(self) -> "TrainingOptions":
        """Check every option against its declaration, then what ties options together. Returns the options
        with batch and aug taken from the configuration where not given (saved resolved, so that a resumed
        run keeps them); ``self`` is not changed."""
        for f in fields(self):
            problem = option_problem(f, getattr(self, f.name))
            if problem:
                raise OptionsError(problem)

        def check(cond, msg):
            if not cond:
                raise OptionsError(msg)
        check(bool(self.data), "--data is required (a dataset path or builtin:NAME)")
        if (self.batch is None and self.cfg != AUTO) or self.aug is None:  # auto: the batch follows the data
            recipe = self.recipe()
            self = dataclasses.replace(self, batch=recipe.batch if self.batch is None and self.cfg != AUTO
                                       else self.batch, aug=recipe.aug if self.aug is None else self.aug)
        check(self.batch is None or self.batch % self.procs == 0,
              f"--batch {self.batch} is not divisible by --procs {self.procs}")
        check(self.cond_fade is None or self.cond, "--cond-fade fades in the class conditioning: it needs --cond")
        check(self.start_res is None or is_power_of_two(self.start_res, 4),
              f"--start-res must be a power of two >= 4, got {self.start_res}")
        check(re.fullmatch(DEVICE_PATTERN, self.device) is not None,
              f"--device must be {DEVICE_CHOICES}, got {self.device!r}")
        if self.metrics:
            from stylegan.metrics.registry import METRICS

            unknown = [m for m in self.metric_names() if m not in METRICS]  # any count: fid200, kid3k
            check(not unknown, f"--metrics: unknown metric(s) {', '.join(unknown)}; "
                               "`stylegan metrics --list` names them")
        self.recipe()  # the configuration's recipe with these options on top must be consistent
        return self

    def resolve_auto(self, resolution: int, gpus: int) -> "TrainingOptions":
        """For ``--cfg auto``: the options with those not given taking what
        :func:`stylegan.presets.auto_settings` chooses for this resolution and number of processes (saved
        resolved, so that a resumed run keeps them); ``self`` is not changed."""
        if self.cfg != AUTO:
            return self
        chosen = auto_settings(resolution, gpus)
        return dataclasses.replace(self, **{k: v for k, v in chosen.items() if getattr(self, k) is None})

    def metric_names(self) -> list[str]:
        return [m.strip() for m in self.metrics.split(",") if m.strip()]

    def recipe(self, cfg: str | None = None, base: TrainingRecipe | None = None) -> TrainingRecipe:
        """The training recipe of the configuration ``cfg`` (default: ``self.cfg``), or ``base`` (the recipe a
        resumed snapshot trained with), with the options given here on top."""
        cfg = cfg or self.cfg
        if cfg not in PRESETS:
            raise OptionsError(f"unknown --cfg {cfg!r}; known: {', '.join(sorted(PRESETS))}")
        given = {f.metadata["recipe"]: getattr(self, f.name) for f in fields(self)
                 if f.metadata.get("recipe") and getattr(self, f.name) is not None}
        try:
            return dataclasses.replace(base or PRESETS[cfg].training, **given).validate()
        except ConfigError as e:
            raise OptionsError(str(e)) from None

    def resolved_gamma(self, resolution: int, cfg: str | None = None) -> float:
        """The R1 weight of these options: :func:`resolved_gamma` of their recipe."""
        return resolved_gamma(self.recipe(cfg), resolution, self.batch)

    def resolved_ema_kimg(self, cfg: str | None = None) -> float:
        """The EMA half-life of these options: :func:`resolved_ema_kimg` of their recipe."""
        return resolved_ema_kimg(self.recipe(cfg), self.batch)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainingOptions":
        """Options saved in a snapshot or a packaged network's metadata; the options that left the package
        (:data:`RETIRED`) are dropped where they hold their neutral value, refused otherwise."""
        names = {f.name for f in fields(cls)}
        for name, neutral in RETIRED.items():
            if name in d and d[name] not in neutral:
                raise OptionsError(f"{cli_name(name)} {d[name]!r}: this option left the package (a knob of the "
                                   "small-compute study, studies/small_compute/README.md); the snapshot was trained "
                                   "with it")
        d = {k: v for k, v in d.items() if k not in RETIRED}
        if isinstance(d.get("betas"), list):  # JSON has no tuples
            d = {**d, "betas": tuple(d["betas"])}
        unknown = sorted(set(d) - names)
        if unknown:
            raise OptionsError(f"unknown training option(s): {', '.join(unknown)}")
        return cls(**d)


def resolved_gamma(recipe: TrainingRecipe, resolution: int, batch: int) -> float:
    """The R1 weight: the recipe's (--gamma or the configuration's), or the authors' heuristic
    0.0002·res²/batch."""
    return recipe.gamma if recipe.gamma is not None else 0.0002 * resolution ** 2 / batch


def resolved_ema_kimg(recipe: TrainingRecipe, batch: int) -> float:
    """The EMA half-life in kimg: the recipe's (--ema-kimg or the configuration's), or the authors'
    batch·10/32."""
    return recipe.ema_kimg if recipe.ema_kimg is not None else batch * 10 / 32
