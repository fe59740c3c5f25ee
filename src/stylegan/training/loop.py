"""The training loop of every configuration: phases G main / G path length / D main / D R1 with lazy
(or, at interval 1, joint) regularization, progressive growing for the configurations that grow, EMA generator,
ticks with stats and logs, snapshots with full training state, resume, and multi-process training under
torchrun."""
from __future__ import annotations

import dataclasses
import json
import math
import signal
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm import tqdm

from stylegan.checkpoint import Checkpoint, CheckpointError, load_state_strict, save_checkpoint
from stylegan.cpu.memory import keep_freed_memory
from stylegan.cpu.precision import auto_cpu_bf16
from stylegan.data import infinite_loader
from stylegan.networks import build_networks, num_parameters
from stylegan.training.distributed import DistInfo, all_reduce_grads, all_reduce_sum, init_distributed, shutdown
from stylegan.training.ema import ema_beta, update_ema
from stylegan.training.growing import Growth, GrowthSchedule, apply_growth, images_at
from stylegan.training.loss import (blur_sigma_at, condition_strength, cosine_gamma, make_loss,
                                    saved_condition_strength, set_condition_strength)
from stylegan.training.options import OptionsError, TrainingOptions
from stylegan.training.run import Run, prepare_run
from stylegan.training.runs import (RunLog, is_newest_snapshot, next_run_dir, remove_stale_writes, run_description,
                                    trim_logs)
from stylegan.training.snapshots import MetricsAt, SnapshotGrid, snapshot_metrics, snapshot_tag
from stylegan.training.state import optimizer_from_tensors, optimizer_to_tensors, restore_rng, rng_state_tensors
from stylegan.training.ticks import TickState, mean_text, tick_line, tick_statistics

# ---------------------------------------------------------------------------------------------- the trainer

class Trainer:
    """Holds everything one training process needs; :meth:`run` trains until ``kimg`` or a stop signal.

    Built from a resolved :class:`~stylegan.training.run.Run` (what :func:`train` does), or from options,
    which are then resolved here as one process would (tests, notebooks)."""

    def __init__(self, run: Run | TrainingOptions, info: DistInfo | None = None,
                 log_fn: Callable[[str], None] | None = None):
        if isinstance(run, TrainingOptions):
            info = info or init_distributed(run.device)
            run = prepare_run(run, info)
        self.run_spec = run
        self.info = info or init_distributed(run.opts.device)
        self.opts, self.config, self.recipe, self.dataset = run.opts, run.config, run.recipe, run.dataset
        self.gamma, self.ema_kimg, self.batch_gpu = run.gamma, run.ema_kimg, run.batch_gpu
        self.device = self.info.device
        if self.device.type == "cpu":
            keep_freed_memory()
        self._make_networks()
        self._make_phases()
        self.cur_nimg = 0
        self.batch_idx = 0
        self.cur_tick = 0
        self.nan_grads = 0
        self.train_seconds = 0.0  # time spent in training steps, across resumes (the --minutes budget)
        opts = self.opts
        self.loader = infinite_loader(self.dataset, self.batch_gpu, seed=opts.seed, rank=self.info.rank,
                                      world_size=self.info.world_size, num_workers=opts.workers,
                                      # the loader's worker seeds come from its own generator, not the global RNG
                                      generator=torch.Generator().manual_seed(opts.seed + self.info.rank))
        if run.checkpoint is not None:
            self._restore(run.checkpoint)
        self.stop_requested = False
        self.log = log_fn

    # ------------------------------------------------------------------ set-up helpers
    def _make_networks(self) -> None:
        """G, G_ema and D of the run's configuration (their weights come from the snapshot in :meth:`_restore`)."""
        nets = build_networks(self.config, seed=self.opts.seed)
        self.G, self.G_ema, self.D = (nets[k].to(self.device) for k in ("G", "G_ema", "D"))
        self.G.train()
        self.D.train()
        # Reduced-precision layers in bfloat16 on a CPU: with --cpu-bf16, or by default where it is native and pays.
        self.cpu_bf16 = not self.opts.fp32 and auto_cpu_bf16(self.device, self.G.synthesis, self.D,
                                                               self.G_ema.synthesis, force=self.opts.cpu_bf16)

    def _make_phases(self) -> None:
        """What the run's recipe makes: the augmentation, the phases and their loss, the optimizers, the growth
        schedule."""
        recipe = self.recipe
        self.augment_pipe, self.ada = self._augmentation()
        self.loss = make_loss(recipe.loss, self.G, self.D, r1_gamma=self.gamma, r2_gamma=recipe.r2_gamma,
                              pl_weight=recipe.pl_weight, style_mixing=recipe.style_mixing, augment=self.augment_pipe)
        self.frozen_D = self._freeze_names(self.opts.freezed)
        self.pl_on = recipe.pl_weight > 0
        self.r1_on, self.r2_on = self.gamma > 0, recipe.r2_gamma > 0
        self.reg_on = self.r1_on or self.r2_on  # D's regularization phase: R1, R2 or both, on R1's interval
        # Interval 1: the penalty joins the main loss in every step, and the optimizer is not adjusted.
        self.pl_lazy, self.r1_lazy = recipe.pl_interval > 1, recipe.r1_interval > 1
        self.opt_G = self._adam(self.G, recipe.glr, recipe.pl_interval if self.pl_on and self.pl_lazy else None,
                                recipe.betas)
        self.opt_D = self._adam(self.D, recipe.dlr, recipe.r1_interval if self.reg_on and self.r1_lazy else None,
                                recipe.betas)
        # --cond-fade, on a D with the unconditional output it fades the projection in beside (else None)
        self.cond_fade = recipe.cond_fade if self.config.D.uncond_head else None
        self.schedule = (GrowthSchedule(self.config.G.resolution, recipe.start_resolution, recipe.fade_kimg,
                                        recipe.stable_kimg) if self.config.growing else None)
        self.growth: Growth | None = None

    def _augmentation(self):
        """The pipeline every image D sees goes through, and the ADA controller of its strength."""
        from stylegan.training.augment import AdaController, AugmentPipe
        from stylegan.training.diffaug import DiffAugment

        opts = self.opts
        if opts.aug == "noaug":
            return None, None
        if opts.aug == "diffaug":
            return DiffAugment().to(self.device), None
        pipe = AugmentPipe.from_name(opts.augpipe, p=opts.p).to(self.device)
        if opts.aug == "fixed":
            return pipe, None
        ada = AdaController(pipe, target=opts.target, interval=4, ada_kimg=opts.ada_kimg, p=opts.p,
                            reduce_fn=(lambda t: all_reduce_sum(t, self.info)) if self.info.enabled else None)
        return pipe, ada

    def _freeze_names(self, n: int) -> set[str]:
        """Parameter names of the first ``n`` D blocks from the top resolution (kept frozen in every phase)."""
        blocks = list(self.D.blocks.keys())
        if n > len(blocks) + 1:
            raise OptionsError(f"--freezed {n}: the discriminator has only {len(blocks) + 1} blocks")
        prefixes = tuple(f"blocks.{b}." for b in blocks[:n]) + (("epilogue.",) if n > len(blocks) else ())
        return {name for name, _ in self.D.named_parameters() if name.startswith(prefixes)}

    def _set_D_trainable(self, on: bool) -> None:
        for name, p in self.D.named_parameters():
            p.requires_grad_(on and name not in self.frozen_D)

    @staticmethod
    def _adam(module: torch.nn.Module, lr: float, reg_interval: int | None,
              betas: tuple[float, float] = (0.0, 0.99)) -> torch.optim.Adam:
        """Adam (β = 0, 0.99 unless the recipe says otherwise; ε = 1e-8), with lr and β adjusted by
        c = interval / (interval + 1) for lazy regularization, so that the regularized steps keep the same
        effective rate. PyTorch's fused implementation (one kernel per parameter instead of seven passes)."""
        c = reg_interval / (reg_interval + 1) if reg_interval else 1.0
        fused = all(p.device.type in ("cpu", "cuda") for p in module.parameters())
        return torch.optim.Adam(module.parameters(), lr=lr * c, betas=(betas[0] ** c, betas[1] ** c), eps=1e-8,
                                fused=fused)

    def _restore(self, ckpt) -> None:
        """The networks from the snapshot (G, G_ema, D) or a base (G_ema and D: G starts as G_ema), then the
        training state if the file has one."""
        if not {"G_ema", "D"} <= set(ckpt.networks) or ("G" not in ckpt.networks and "training" in ckpt.extra):
            raise CheckpointError(f"{ckpt.path}: resume needs G_ema and D (and G, for a snapshot), the file has "
                                  f"{', '.join(ckpt.networks)}")
        for name, module in (("G", self.G), ("G_ema", self.G_ema), ("D", self.D)):
            source = name if name in ckpt.networks else "G_ema"
            load_state_strict(module, {k: v.to(self.device) for k, v in ckpt.state_dict(source).items()},
                              f"{ckpt.path} [{source}]")
        if self.cond_fade is None and self.config.D.uncond_head:
            # No fade of this run's own: λ stays where the networks were trained (a base taken mid-fade keeps its)
            set_condition_strength(saved_condition_strength(ckpt.extra), self.D, self.G, self.G_ema)
        t = ckpt.extra.get("training")
        if t is None:  # networks only (an init checkpoint, or imported weights): start counting from zero
            return
        optimizer_from_tensors(self.opt_G, ckpt, "opt_G", t["opt_G"])
        optimizer_from_tensors(self.opt_D, ckpt, "opt_D", t["opt_D"])
        self.loss.pl_mean.copy_(ckpt.tensors["state.pl_mean"].to(self.device))
        self.cur_nimg, self.batch_idx, self.cur_tick = t["cur_nimg"], t["batch_idx"], t["cur_tick"]
        self.nan_grads = t.get("nan_grads", 0)
        self.train_seconds = float(t.get("train_seconds", 0.0))
        self.loader.load_state_dict(t["loader"])
        if self.ada is not None and t.get("ada") is not None:
            self.ada.load_state_dict(t["ada"])
        elif self.augment_pipe is not None and t.get("augment_p") is not None and self.opts.aug != "fixed":
            self.augment_pipe.set_p(t["augment_p"])
        if self.info.world_size == 1 and t["world_size"] == 1:
            restore_rng(ckpt)  # the exact continuation of a single-process run
        else:  # the snapshot holds rank 0's RNG; give every process its own stream from here on
            torch.manual_seed((self.opts.seed * 1_000_003 + self.cur_nimg) * self.info.world_size + self.info.rank)

    # ------------------------------------------------------------------ one iteration
    def _finish(self, opt: torch.optim.Optimizer, module: torch.nn.Module, phase: str) -> None:
        params = [p for p in module.parameters() if p.requires_grad]
        all_reduce_grads(params, self.info)
        grads = [p.grad for p in params if p.grad is not None]
        # One cheap reduction per tensor; only when a sum is not finite are the bad values counted.
        finite = bool(torch.isfinite(torch.stack([g.sum() for g in grads])).all()) if grads else True
        bad = 0 if finite else sum(int((~torch.isfinite(g)).sum()) for g in grads)
        if bad:
            self.nan_grads += 1
            if self.log:
                self.log(f"warning: {bad} non-finite gradient value(s) in phase {phase} at kimg "
                         f"{self.cur_nimg / 1000:.1f}; replaced (NaN -> 0, +-Inf -> +-1e5) before the step")
            for p in params:
                if p.grad is not None:
                    torch.nan_to_num(p.grad, nan=0.0, posinf=1e5, neginf=-1e5, out=p.grad)
        opt.step()

    def _labels(self, n: int) -> torch.Tensor | None:
        if not self.opts.cond:
            return None
        idx = torch.randint(len(self.dataset), (n,))
        return torch.stack([self.dataset.get_label(int(i)) for i in idx]).to(self.device)

    def _set_gammas(self) -> None:
        """This step's R1 weight, from --gamma along the --gamma-end schedule at the images seen so far (constant
        without one), and R2's in proportion to it: r2_gamma·γ(t)/γ_start; D's blur; the conditioning's
        strength λ along --cond-fade."""
        r = self.recipe
        gamma = cosine_gamma(self.gamma, r.gamma_end, self.cur_nimg / 1000, r.gamma_kimg)
        self.loss.r1_gamma = gamma
        self.loss.r2_gamma = r.r2_gamma * (gamma / self.gamma) if self.gamma > 0 else r.r2_gamma
        self.loss.blur_sigma = blur_sigma_at(r.blur_sigma, r.blur_kimg, self.opts.batch, self.cur_nimg / 1000)
        if self.cond_fade is not None:
            set_condition_strength(condition_strength(self.cond_fade, self.cur_nimg / 1000), self.D, self.G, self.G_ema)

    def _r2_fakes(self, n: int) -> dict[str, torch.Tensor | None]:
        """The latents and labels of the fakes R2 takes in the lazy regularization phase (none when R2 is off)."""
        return {"z": torch.randn(n, self.G.z_dim, device=self.device), "c": self._labels(n)} if self.r2_on else {}

    def step(self) -> dict[str, torch.Tensor]:
        """One minibatch: the growth stage of this image count, every phase whose interval divides the batch
        index (interval-1 penalties join their main phase), then the EMA. Its time counts towards ``--minutes``."""
        start = time.perf_counter()
        try:
            return self._step()
        finally:
            self.train_seconds += time.perf_counter() - start

    def budget_spent(self) -> bool:
        """True when the run has trained for ``--minutes`` (training steps only)."""
        return self.opts.minutes is not None and self.train_seconds >= self.opts.minutes * 60

    def _step(self) -> dict[str, torch.Tensor]:
        opts, recipe, n = self.opts, self.recipe, self.batch_gpu
        real, real_c = next(self.loader)
        real = real.to(self.device, torch.float32) / 127.5 - 1
        real_c = real_c.to(self.device) if opts.cond else None
        if self.schedule is not None:
            self.growth = self.schedule.at(self.cur_nimg)
            apply_growth(self.growth, self.G, self.G_ema, self.D)
            real = images_at(real, self.growth)
        z_dim = self.G.z_dim
        stats: dict[str, torch.Tensor] = {}
        self._set_gammas()

        self.G.requires_grad_(True)
        self._set_D_trainable(False)
        self.opt_G.zero_grad(set_to_none=True)
        stats.update(self.loss.g_main(torch.randn(n, z_dim, device=self.device), self._labels(n), real_img=real,
                                      real_c=real_c))
        if self.pl_on and not self.pl_lazy:
            stats.update(self.loss.g_pl(torch.randn(n, z_dim, device=self.device), self._labels(n), gain=1))
        self._finish(self.opt_G, self.G, "G main")
        if self.pl_on and self.pl_lazy and self.batch_idx % recipe.pl_interval == 0:
            self.opt_G.zero_grad(set_to_none=True)
            stats.update(self.loss.g_pl(torch.randn(n, z_dim, device=self.device), self._labels(n),
                                        gain=recipe.pl_interval))
            self._finish(self.opt_G, self.G, "G path length")

        self.G.requires_grad_(False)
        self._set_D_trainable(True)
        self.opt_D.zero_grad(set_to_none=True)
        stats.update(self.loss.d_main(real, real_c, torch.randn(n, z_dim, device=self.device), self._labels(n),
                                      r1=self.reg_on and not self.r1_lazy))
        self._finish(self.opt_D, self.D, "D main")
        if self.ada is not None:
            self.ada.update(stats["Loss/scores/real"])
        if self.reg_on and self.r1_lazy and self.batch_idx % recipe.r1_interval == 0:
            self.opt_D.zero_grad(set_to_none=True)
            stats.update(self.loss.d_r1(real, real_c, gain=recipe.r1_interval, **self._r2_fakes(n)))
            self._finish(self.opt_D, self.D, "D R1")
        self._set_D_trainable(False)

        update_ema(self.G_ema, self.G, ema_beta(opts.batch, self.cur_nimg, self.ema_kimg, self.recipe.ema_rampup))
        self.cur_nimg += opts.batch
        self.batch_idx += 1
        return stats

    # ------------------------------------------------------------------ snapshots
    def training_state(self) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
        tg, mg = optimizer_to_tensors(self.opt_G, "opt_G")
        td, md = optimizer_to_tensors(self.opt_D, "opt_D")
        tensors = {**tg, **td, "state.pl_mean": self.loss.pl_mean.detach().cpu(), **rng_state_tensors()}
        meta = {"opt_G": mg, "opt_D": md, "cur_nimg": self.cur_nimg, "batch_idx": self.batch_idx,
                "cur_tick": self.cur_tick, "nan_grads": self.nan_grads, "train_seconds": self.train_seconds,
                "loader": self.loader.state_dict(),
                "world_size": self.info.world_size, "batch": self.opts.batch,
                "ada": self.ada.state_dict() if self.ada is not None else None,
                "augment_p": float(self.augment_pipe.p) if hasattr(self.augment_pipe, "p") else None}
        return tensors, meta

    def tick_state(self) -> TickState:
        """What a tick's row and log line read of this process (:mod:`stylegan.training.ticks`)."""
        scheduled = self.recipe.gamma_end is not None
        return TickState(
            tick=self.cur_tick, cur_nimg=self.cur_nimg, train_seconds=self.train_seconds, nan_grads=self.nan_grads,
            device=self.device, augment_p=float(self.augment_pipe.p) if hasattr(self.augment_pipe, "p") else None,
            ada_rt=self.ada.rt if self.ada is not None else None, growth=self.growth,
            r1_gamma=self.loss.r1_gamma if scheduled else None,
            r2_gamma=self.loss.r2_gamma if scheduled and self.r2_on else None, r2_on=self.r2_on,
            cond_strength=self.D.epilogue.cond_strength if self.cond_fade is not None else None)

    def metrics_at(self) -> MetricsAt:
        """What the ``--metrics`` of a snapshot read (:mod:`stylegan.training.snapshots`)."""
        return MetricsAt(names=tuple(self.opts.metric_names()), G_ema=self.G_ema, data_path=self.dataset.path,
                         device=self.device, kimg=self.cur_nimg / 1000)

    def growth_summary(self) -> dict[str, Any] | None:
        """The stage the networks are at (None for networks that do not grow)."""
        if self.schedule is None:
            return None
        alpha = self.G_ema.synthesis.current_alpha
        return {"resolution": self.G_ema.current_resolution, "alpha": alpha, "phase": "fade" if alpha < 1 else "stable"}

    def save_snapshot(self, path: Path) -> Path:
        tensors, meta = self.training_state()
        extra = {"kimg": self.cur_nimg / 1000, "options": self.opts.to_dict(), "training": meta,
                 "gamma": self.gamma, "ema_kimg": self.ema_kimg, "recipe": dataclasses.asdict(self.recipe)}
        if self.schedule is not None:
            extra["growth"] = self.growth_summary()
        if self.config.D.uncond_head:  # λ of the next step (along the fade, or held: a transfer from a base mid-fade)
            extra["cond_strength"] = float(condition_strength(self.cond_fade, self.cur_nimg / 1000)
                                           if self.cond_fade is not None else self.D.epilogue.cond_strength)
        return save_checkpoint(path, self.config, {"G": self.G, "G_ema": self.G_ema, "D": self.D},
                               extra_tensors=tensors, extra=extra)


# ---------------------------------------------------------------------------------------------- entry point

class StopSignals:
    """SIGINT and SIGTERM from the moment training is asked for: during start-up they end it cleanly with
    nothing trained; once steps run, the step finishes and a final snapshot is written (``on_stop``)."""

    def __init__(self):
        self.signum: int | None = None
        self.on_stop: Callable[[int], None] | None = None
        self._old: dict = {}

    def __call__(self, signum, frame) -> None:
        self.signum = signum
        if self.on_stop is not None:
            self.on_stop(signum)

    def __enter__(self) -> "StopSignals":
        try:
            self._old = {s: signal.signal(s, self) for s in (signal.SIGINT, signal.SIGTERM)}
        except ValueError:  # not the main thread: signals stay with whoever owns them
            self._old = {}
        return self

    def __exit__(self, *exc) -> None:
        for s, h in self._old.items():
            signal.signal(s, h)


def train(opts: TrainingOptions, checkpoint: Checkpoint | None = None) -> Path | None:
    """Train until ``opts.kimg`` thousand images or SIGINT/SIGTERM (then a final snapshot is written).
    ``checkpoint``: the snapshot or base ``opts.resume`` names, when the caller has read it (read here
    otherwise). Returns the run folder (None for a dry run, or when stopped during start-up)."""
    with StopSignals() as stop:
        info = init_distributed(opts.device)  # the one distributed set-up of this process
        finished = False
        try:
            run = _train(opts, checkpoint, info, stop)
            finished = True
            return run
        finally:
            shutdown(info, finished)


def launch(opts: TrainingOptions, checkpoint: Checkpoint | None = None) -> None:
    """:func:`train` in ``opts.procs`` local processes (one process group), or in this one; under torchrun in
    this one, where only ``--threads`` changes the thread count torchrun set."""
    import os

    from stylegan.training.distributed import launch_local
    from stylegan.cpu.threads import torch_threads, training_threads

    if opts.procs > 1 and "WORLD_SIZE" not in os.environ:
        launch_local(train, (opts, checkpoint), opts.procs, threads=training_threads(opts.threads, opts.procs))
    else:
        with torch_threads(opts.threads if "WORLD_SIZE" in os.environ else training_threads(opts.threads, 1)):
            train(opts, checkpoint)


def _train(opts: TrainingOptions, checkpoint: Checkpoint | None, info: DistInfo,
           stop_signals: StopSignals | None = None) -> Path | None:
    stop_signals = stop_signals or StopSignals()
    torch.manual_seed(opts.seed * info.world_size + info.rank)
    np.random.seed((opts.seed * info.world_size + info.rank) % 2 ** 32)
    trainer = Trainer(prepare_run(opts, info, checkpoint), info)
    opts = trainer.opts  # resolved
    if stop_signals.signum is not None:
        trainer.loader.close()
        if info.is_main:
            print(f"stopped by {signal.Signals(stop_signals.signum).name} during start-up: nothing trained, "
                  "nothing written")
        return None
    if opts.dry_run:
        if info.is_main:
            print(json.dumps({"options": opts.to_dict(), "config": trainer.config.to_dict(), "gamma": trainer.gamma,
                              "recipe": dataclasses.asdict(trainer.recipe),
                              "dataset": repr(trainer.dataset),
                              "params": {"G": num_parameters(trainer.G), "D": num_parameters(trainer.D)}}, indent=2))
            print("dry run: nothing trained, nothing written")
        return None

    run_dir, continuing = open_run_dir(trainer)
    log = RunLog(run_dir, info.is_main)
    trainer.log = log
    log_header(trainer, run_dir, continuing)
    grid = SnapshotGrid(trainer.dataset, trainer.config.G.resolution, trainer.config.G.z_dim, opts.cond, opts.seed,
                        trainer.device)
    if info.is_main and not continuing:
        grid.save_reals(run_dir / "reals.png")
        grid.save_fakes(trainer.G_ema, run_dir / "fakes_init.png")

    # Stop cleanly on SIGINT / SIGTERM: finish the step, write a snapshot, exit.
    def on_signal(signum):
        trainer.stop_requested = True
        log(f"received {signal.Signals(signum).name}: writing a final snapshot after this step")
    stop_signals.on_stop = on_signal
    if stop_signals.signum is not None:  # arrived while the run folder was being set up
        on_signal(stop_signals.signum)
    try:
        if trainer.cur_nimg >= int(opts.kimg * 1000) or trainer.budget_spent():
            log(f"this run has already reached its {'--minutes budget' if trainer.budget_spent() else '--kimg'} "
                f"({trainer.cur_nimg / 1000:g} kimg, {trainer.train_seconds / 60:.1f} training minutes); nothing to "
                "do. Give a larger --kimg or --minutes to train further.")
            return run_dir
        done = training_ticks(trainer, run_dir, grid, log)
    finally:
        stop_signals.on_stop = None
        trainer.loader.close()
        log.close()
    log("stopped by signal; resume with --resume latest" if trainer.stop_requested and not done else "done")
    return run_dir


def open_run_dir(trainer: Trainer) -> tuple[Path, bool]:
    """The run folder, ready to write: the resumed run's own folder when the snapshot is the newest of a run
    folder (stale partial writes removed, logs trimmed to the snapshot), else a new one in ``--outdir`` (a
    transfer, or a branch from an older snapshot, which leaves the run it came from as it is); with
    options.json written. Returns the folder and whether the run continues in it."""
    opts, info = trainer.opts, trainer.info
    resume_dir = Path(opts.resume).parent if opts.resume else None
    continuing = (resume_dir is not None and (resume_dir / "options.json").is_file() and trainer.cur_nimg > 0
                  and is_newest_snapshot(Path(opts.resume)))
    if continuing:
        run_dir = resume_dir
    else:
        run_dir = next_run_dir(Path(opts.outdir), run_description(opts, info.world_size, trainer.gamma))
    if info.is_main:
        run_dir.mkdir(parents=True, exist_ok=True)
        remove_stale_writes(run_dir)
        if continuing:  # the logs continue from the snapshot: rows written after it (then lost) are dropped
            trim_logs(run_dir, trainer.cur_nimg / 1000)
        (run_dir / "options.json").write_text(json.dumps({"options": opts.to_dict(), "config": trainer.config.to_dict(),
                                                          "gamma": trainer.gamma, "world_size": info.world_size},
                                                         indent=2))
    return run_dir, continuing


def log_header(trainer: Trainer, run_dir: Path, continuing: bool) -> None:
    """The run's first lines in the log: folder, data, networks, batch and the recipe in force."""
    log, opts, config, info, r = trainer.log, trainer.opts, trainer.config, trainer.info, trainer.recipe
    transfer = opts.resume and not continuing and trainer.cur_nimg == 0
    branch = opts.resume and not continuing and trainer.cur_nimg > 0
    log(f"{'resuming' if continuing else 'starting'} training in {run_dir}"
        + (f", from the networks of {opts.resume} (transfer)" if transfer else "")
        + (f", continuing {opts.resume} (a new folder: the run it is from is left as it is)" if branch else ""))
    log(f"data: {trainer.dataset!r}")
    log(f"G: {num_parameters(trainer.G):,} parameters, D: {num_parameters(trainer.D):,} parameters; "
        f"{config.G.img_shape[1]}x{config.G.img_shape[0]}, batch {opts.batch} ({trainer.batch_gpu} per process x "
        f"{info.world_size}), gamma {trainer.gamma:g}, device {trainer.device}"
        + (f", {torch.get_num_threads()} thread(s) per process" if trainer.device.type == "cpu" else "")
        + (", bfloat16 in the reduced-precision layers (--fp32 for float32)" if trainer.cpu_bf16 else ""))
    log(f"recipe ({config.cfg}): loss {r.loss}, R1 {'off' if not trainer.r1_on else f'every {r.r1_interval}'}, "
        + (f"R2 {r.r2_gamma:g} every {r.r1_interval}, " if trainer.r2_on else "")
        + (f"gamma cosine to {r.gamma_end:g} over {r.gamma_kimg:g} kimg, " if r.gamma_end is not None else "")
        + f"path length {'off' if not trainer.pl_on else f'weight {r.pl_weight:g} every {r.pl_interval}'}, "
        f"style mixing {r.style_mixing:g}, lr G {r.glr:g} D {r.dlr:g}"
        + (f", growing from {trainer.schedule.at(0).describe().split()[0]}: fade {r.fade_kimg:g} kimg, "
           f"stable {r.stable_kimg:g} kimg" if trainer.schedule is not None else "")
        + (f", class conditioning faded in from {trainer.cond_fade[0]:g} to {trainer.cond_fade[1]:g} kimg"
           if trainer.cond_fade is not None else "")
        + (f", class conditioning held at λ {trainer.D.epilogue.cond_strength:.3g} (where the networks were trained)"
           if trainer.cond_fade is None and trainer.config.D.uncond_head and trainer.D.epilogue.cond_strength < 1
           else ""))
    for change in trainer.run_spec.changes:
        log(f"changed from the snapshot: {change}")
    if r.loss == "wgangp" and trainer.r1_on:
        log("note: R1 runs on top of WGAN-GP's gradient penalty (the configuration's recipe has R1); give "
            "--gamma 0 for WGAN-GP alone, as in ProGAN")


def progress_bar(trainer: Trainer) -> tqdm:
    """The bar follows whichever limit comes first at the current speed: kimg, or the --minutes budget."""
    opts = trainer.opts
    by_time = opts.minutes is not None
    return tqdm(total=opts.minutes if by_time else opts.kimg, unit="min" if by_time else "kimg",
                initial=trainer.train_seconds / 60 if by_time else trainer.cur_nimg / 1000,
                disable=not trainer.info.is_main, dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n:.1f}/{total:.1f} " + ("training min" if by_time else "kimg")
                + " [{elapsed}<{remaining}]{postfix}")


def training_ticks(trainer: Trainer, run_dir: Path, grid: SnapshotGrid, log: RunLog) -> bool:
    """Train tick by tick until kimg, the --minutes budget or a stop signal, logging each tick and writing
    snapshots every ``--snap`` ticks and at the end. Returns whether the run reached its limit."""
    opts, info = trainer.opts, trainer.info
    total_nimg, tick_nimg = int(opts.kimg * 1000), int(opts.tick * 1000)
    bar = progress_bar(trainer)
    tick_start_nimg, tick_start_time = trainer.cur_nimg, time.time()
    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    try:
        while True:
            for k, v in trainer.step().items():
                sums[k] = sums.get(k, 0.0) + float(v.float().sum())
                counts[k] = counts.get(k, 0.0) + v.numel()
            bar.n = (min(trainer.train_seconds / 60, opts.minutes) if opts.minutes is not None
                     else min(trainer.cur_nimg, total_nimg) / 1000)
            bar.update(0)
            done = trainer.cur_nimg >= total_nimg or trainer.budget_spent()
            stop = trainer.stop_requested
            if info.enabled:  # every process must agree to stop (and to end the budget) at the same step
                flag = all_reduce_sum(torch.tensor([float(stop), float(done)], device=trainer.device), info)
                stop, done = bool(flag[0].item() > 0), bool(flag[1].item() > 0)
            if not (done or stop or trainer.cur_nimg >= tick_start_nimg + tick_nimg):
                continue
            trainer.cur_tick += 1
            state = trainer.tick_state()
            row, means = tick_statistics(state, info, sums, counts, tick_start_nimg, tick_start_time)
            end_tick(state, row, means, bar, log)
            if done or stop or trainer.cur_tick % opts.snap == 0:
                write_snapshot(trainer, run_dir, grid, log)
            sums.clear()
            counts.clear()
            tick_start_nimg, tick_start_time = trainer.cur_nimg, time.time()
            if done or stop:
                return done
    finally:
        bar.close()


def end_tick(state: TickState, row: dict[str, Any], means: dict[str, float], bar: tqdm, log: RunLog) -> None:
    """A tick's row in stats.jsonl, its line in the log and on the bar, and a warning for any loss that is not
    finite."""
    log.stats(row)
    log(tick_line(state, row, means))
    bar.set_postfix_str(f"G {mean_text(means, 'Loss/G/loss')} D {mean_text(means, 'Loss/D/loss')}")
    for k, v in means.items():
        if not math.isfinite(v):
            log(f"warning: {k} is {v} at kimg {row['kimg']:.1f}")


def write_snapshot(trainer: Trainer, run_dir: Path, grid: SnapshotGrid, log: RunLog) -> None:
    """The snapshot of this image count (main process): the grid of G_ema's images, the checkpoint with the
    full training state, and the ``--metrics``."""
    if not trainer.info.is_main:
        return
    tag = snapshot_tag(trainer.cur_nimg)
    grid.save_fakes(trainer.G_ema, run_dir / f"fakes{tag}.png")
    path = trainer.save_snapshot(run_dir / f"network-snapshot-{tag}.safetensors")
    log(f"wrote {path.name}")
    snapshot_metrics(trainer.metrics_at(), path, run_dir, log)
