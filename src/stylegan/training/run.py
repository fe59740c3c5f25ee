"""A training run, resolved once: the options after the configuration's presets, ``--cfg auto``, the resumed
snapshot and the command line; the networks' configuration; the training recipe; γ, the EMA half-life and
the batch per process. :func:`resolve_run` builds it and is the one place where options are validated;
:class:`Run` is frozen, and the :class:`~stylegan.training.loop.Trainer` only reads it.

The order, read top to bottom:

1. the command line, on top of a resumed snapshot's options (:func:`stylegan.training.runs.read_resume`,
   which reads the snapshot once and hands it on);
2. the dataset, opened (built-in datasets are built by rank 0 first);
3. ``--cfg auto``: the options not given take what the data's resolution and the processes choose;
4. batch and augmentation from the configuration's recipe where not given; every option checked;
5. the networks: the snapshot's, or the configuration's sized to the data; checked against the data;
6. the recipe, γ, the EMA half-life, the batch per process; what changed from the snapshot's, for the log.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stylegan.checkpoint import Checkpoint
from stylegan.config import NetworkConfig
from stylegan.data import ImageDataset, resolve_data
from stylegan.presets import PRESETS, TrainingRecipe, make_config
from stylegan.training.distributed import DistInfo, barrier
from stylegan.training.options import OptionsError, TrainingOptions, resolved_ema_kimg, resolved_gamma


@dataclass(frozen=True)
class Run:
    """Everything a training run decides before its first step (see the module's docstring)."""

    opts: TrainingOptions        # final: presets, auto, snapshot and command line applied; validated
    config: NetworkConfig        # the networks: the snapshot's or base's, or the configuration's for the data
    recipe: TrainingRecipe       # the configuration's training recipe with the options on top
    gamma: float                 # R1 weight (the recipe's, or 0.0002·res²/batch)
    ema_kimg: float              # G EMA half-life in kimg (the recipe's, or batch·10/32)
    world_size: int              # training processes
    batch_gpu: int               # images per process and step: batch / world_size
    dataset: ImageDataset        # the opened training data
    checkpoint: Checkpoint | None = None  # the snapshot or base resumed from, read once
    changes: tuple[str, ...] = ()  # derived settings that differ from the snapshot's, one line each, for the log

    @property
    def cfg_name(self) -> str:
        """The named configuration whose recipe trains the networks (the snapshot's when it has one)."""
        return self.config.cfg if self.config.cfg in PRESETS else self.opts.cfg


def open_dataset(opts: TrainingOptions, info: DistInfo) -> ImageDataset:
    """The training data (built-in datasets are built by rank 0 first, then read by everyone)."""
    if not opts.data:
        raise OptionsError("--data is required (a dataset path or builtin:NAME)")
    if info.is_main:
        data_path = resolve_data(opts.data, opts.data_resolution, progress=True)
    barrier(info)
    if not info.is_main:
        data_path = resolve_data(opts.data, opts.data_resolution, progress=False)
    dataset = ImageDataset(data_path, use_labels=opts.cond, xflip=opts.mirror)
    if opts.cond and not dataset.has_labels:
        raise OptionsError(f"--cond: the dataset {data_path} has no labels (dataset.json)")
    return dataset


def prepare_run(opts: TrainingOptions, info: DistInfo, checkpoint: Checkpoint | None = None) -> Run:
    """Open the data and resolve the run. ``checkpoint``: the snapshot ``opts.resume`` names, when the
    caller has read it already (it is read here otherwise)."""
    dataset = open_dataset(opts, info)
    if checkpoint is None and opts.resume:
        from stylegan.loader import read_network_file

        checkpoint = read_network_file(opts.resume)
    return resolve_run(opts, dataset, info.world_size, checkpoint)


def resolve_run(opts: TrainingOptions, dataset: ImageDataset, world_size: int,
                checkpoint: Checkpoint | None = None) -> Run:
    """The run of these options on this data in ``world_size`` processes (steps 3-6 of the module's
    docstring). Every option is validated here, once, on its final value."""
    opts = opts.resolve_auto(dataset.resolution, world_size).validate()
    if opts.batch % world_size:
        raise OptionsError(f"--batch {opts.batch} is not divisible by the {world_size} processes")
    config = checkpoint.config if checkpoint is not None else _config_for(opts, dataset)
    _check_data_fits(opts, config, dataset)
    if opts.metrics:
        from stylegan.metrics.registry import training_metric_problems

        problems = training_metric_problems(opts.metric_names(), config.G)
        if problems:
            raise OptionsError(f"--metrics: {'; '.join(problems)}")
    # A resumed snapshot keeps the recipe it trained with, though its configuration's recipe may have changed
    # since (a new run or a transfer takes the configuration's).
    saved = TrainingRecipe.from_saved(checkpoint.extra.get("recipe")) if checkpoint is not None and \
        "training" in checkpoint.extra else None
    recipe = opts.recipe(config.cfg if config.cfg in PRESETS else opts.cfg, base=saved)
    if recipe.cond_fade is not None and config.G.c_dim and not config.D.uncond_head:
        raise OptionsError(f"--cond-fade: the discriminator of {Path(opts.resume).name} has no unconditional output "
                           "to fade the class projection in beside; train it from scratch with --cond-fade, or "
                           "without it")
    if recipe.style_mixing > 0 and config.G.num_ws < 2:
        raise OptionsError(f"--style-mixing {recipe.style_mixing:g}: this generator takes a single latent, "
                           "there are no styles to mix (use 0)")
    gamma = resolved_gamma(recipe, config.G.resolution, opts.batch)
    ema_kimg = resolved_ema_kimg(recipe, opts.batch)
    return Run(opts=opts, config=config, recipe=recipe, gamma=gamma, ema_kimg=ema_kimg, world_size=world_size,
               batch_gpu=opts.batch // world_size, dataset=dataset, checkpoint=checkpoint,
               changes=_changes_from_snapshot(checkpoint, opts, recipe, gamma, ema_kimg))


def _config_for(opts: TrainingOptions, dataset: ImageDataset) -> NetworkConfig:
    """New networks: the named configuration sized to the data, with the options' overrides."""
    return make_config(
        opts.cfg, resolution=dataset.resolution, img_channels=dataset.num_channels,
        c_dim=dataset.label_dim if opts.cond else 0, cbase=opts.cbase, cmax=opts.cmax, map_depth=opts.map_depth,
        g_arch=opts.g_arch, d_arch=opts.d_arch, mbstd_group=opts.mbstd_group, mbstd_channels=opts.mbstd_channels,
        mbstd_gain=opts.mbstd_gain, uncond_head=opts.cond and opts.recipe().cond_fade is not None,
        # --fp32: no reduced-precision layers and no clamp, as in the authors' option
        num_fp16_res=0 if opts.fp32 else None, conv_clamp=None if opts.fp32 else "keep", base=dataset.base)


def _check_data_fits(opts: TrainingOptions, config: NetworkConfig, ds: ImageDataset) -> None:
    """The networks (new, or the snapshot's or base's when resuming) fit the data: resolution, channels and
    classes; a mismatch is one line that says which, before anything is trained."""
    g = config.G
    nets = f"the networks of {Path(opts.resume).name}" if opts.resume else "the networks"
    (h, w), (gh, gw) = ds.image_shape[1:], g.img_shape
    if (h, w) != (gh, gw):
        raise OptionsError(f"resolution: the dataset is {w}x{h}, {nets} {gw}x{gh}")
    if ds.num_channels != g.img_channels:
        raise OptionsError(f"channels: the dataset has {ds.num_channels}, {nets} {g.img_channels}")
    classes = ds.label_dim if opts.cond else 0
    if classes != g.c_dim:
        hint = ("; give --cond with a labelled dataset" if g.c_dim and not opts.cond
                else "; give --no-cond" if opts.cond and not g.c_dim else "")
        raise OptionsError(f"classes: the training uses {classes or 'no'} class labels, {nets} "
                           f"{g.c_dim or 'none (unconditional)'}{hint}")


def _changes_from_snapshot(checkpoint: Checkpoint | None, opts: TrainingOptions, recipe: TrainingRecipe,
                           gamma: float, ema_kimg: float) -> tuple[str, ...]:
    """The settings derived from others (γ and the EMA half-life follow the batch) that differ from those the
    snapshot trained with, one line each; nothing for a new run or a transfer from a base."""
    if checkpoint is None or "training" not in checkpoint.extra:
        return ()
    saved = checkpoint.extra.get("options") or {}
    old_batch = saved.get("batch")
    batch_note = (f"; the batch is {opts.batch}, was {old_batch}" if old_batch not in (None, opts.batch) else "")
    changes = []
    old_gamma = checkpoint.extra.get("gamma")
    if isinstance(old_gamma, (int, float)) and abs(old_gamma - gamma) > 1e-12 * max(abs(old_gamma), 1):
        changes.append(f"gamma {gamma:g} (the snapshot trained with {old_gamma:g}{batch_note}; give --gamma "
                       f"{old_gamma:g} to keep it)")
    old_ema = checkpoint.extra.get("ema_kimg")
    if old_ema is None and recipe.ema_kimg is None and saved.get("ema_kimg") is None and isinstance(old_batch, int):
        old_ema = resolved_ema_kimg(recipe, old_batch)  # snapshots that did not save it: batch·10/32 then too
    if isinstance(old_ema, (int, float)) and abs(old_ema - ema_kimg) > 1e-12 * max(abs(old_ema), 1):
        changes.append(f"EMA half-life {ema_kimg:g} kimg (the snapshot trained with {old_ema:g}{batch_note}; give "
                       f"--ema-kimg {old_ema:g} to keep it)")
    return tuple(changes)
