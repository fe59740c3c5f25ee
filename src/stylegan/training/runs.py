"""Run folders, their logs and resuming: where a run writes (``NNNNN-desc``), what it logs (log.txt,
stats.jsonl, TensorBoard), and how a resumed run finds its snapshot, its options and continues its logs."""
from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any, Callable

from tqdm import tqdm

from stylegan.checkpoint import Checkpoint
from stylegan.config import NetworkConfig
from stylegan.presets import PRESETS
from stylegan.loader import read_network_file, resolve
from stylegan.training.snapshots import run_snapshots
from stylegan.training.options import RUN_FIELDS, OptionsError, TrainingOptions, cli_name

def next_run_dir(outdir: Path, desc: str) -> Path:
    """The next numbered run folder ``NNNNN-desc`` in ``outdir`` (not created)."""
    ids = [int(m.group(1)) for p in outdir.glob("*") if (m := re.match(r"^(\d+)-", p.name)) and p.is_dir()]
    return outdir / f"{max(ids, default=-1) + 1:05d}-{desc}"


def is_newest_snapshot(path: Path) -> bool:
    """Whether ``path`` is the newest snapshot (by kimg) of the folder it lies in."""
    snaps = run_snapshots(path.parent)
    return bool(snaps) and snaps[-1][1].resolve() == path.resolve()


def latest_snapshot(outdir: str | os.PathLike) -> Path:
    """The newest snapshot of the newest run folder in ``outdir`` that has one."""
    outdir = Path(outdir)
    runs = sorted((p for p in outdir.glob("*") if p.is_dir() and re.match(r"^\d+-", p.name)),
                  key=lambda p: int(p.name.split("-", 1)[0]), reverse=True)
    for run in runs:
        snaps = run_snapshots(run)
        if snaps:
            return snaps[-1][1]
    raise OptionsError(f"--resume latest: no snapshot found in any run folder of {outdir}")


#: The options that choose the networks' architecture, and where a network's configuration holds each. A resumed
#: snapshot or base keeps its networks; one of these given on the command line must agree with them.
ARCHITECTURE_FLAGS: dict[str, Callable[[NetworkConfig], Any]] = {
    "cfg": lambda c: c.cfg, "cbase": lambda c: c.G.cbase, "cmax": lambda c: c.G.cmax,
    "map_depth": lambda c: c.G.map_depth, "g_arch": lambda c: c.G.arch, "d_arch": lambda c: c.D.arch,
    "mbstd_group": lambda c: c.D.mbstd_group, "mbstd_channels": lambda c: c.D.mbstd_channels,
    "mbstd_gain": lambda c: c.D.mbstd_gain,
}


def check_architecture_flags(given: dict[str, Any], config: NetworkConfig, source: Path) -> None:
    """Refuse architecture flags that contradict the networks being resumed (a resumed run trains the
    snapshot's networks, whatever --cfg or --cbase say), naming the flag, its value and the networks'."""
    for name, of_config in ARCHITECTURE_FLAGS.items():
        value = given.get(name)
        if value is None:
            continue
        have = of_config(config)
        if name == "cfg":
            if have not in PRESETS or PRESETS[value].name == PRESETS[have].name:
                continue  # networks of no named configuration: --cfg names the recipe that trains them
        elif value == have:
            continue
        raise OptionsError(f"{cli_name(name)} {value}: the networks of {source.name} have {cli_name(name)[2:]} "
                           f"{have}; a resumed run keeps its networks (leave {cli_name(name)} out, or start a new "
                           "run without --resume)")


def read_resume(resume: str, outdir: str, overrides: dict[str, Any]) -> tuple[TrainingOptions, Checkpoint]:
    """The snapshot or base to resume from, read once, and the options of the resumed run: those saved in the
    snapshot, with ``overrides`` (the flags given now) on top. Flags that contradict the snapshot's networks
    are refused (:func:`check_architecture_flags`).

    A file without training state — a packaged base (``--resume NAME``), an init checkpoint, imported weights —
    starts a new run (transfer learning): from the options the base was trained with (``trained_with`` in its
    metadata), less those that describe that run rather than its recipe (:data:`RUN_FIELDS`), then the flags.
    The options are validated where the run is resolved (:func:`stylegan.training.run.resolve_run`)."""
    path = latest_snapshot(outdir) if resume == "latest" else resolve(resume)  # the resolver of every command
    ckpt = read_network_file(path)
    check_architecture_flags(overrides, ckpt.config, Path(path))
    saved = ckpt.extra.get("options")
    if saved is None:
        saved = {"cfg": ckpt.config.cfg} if ckpt.config.cfg in PRESETS else {}
        trained_with = ckpt.extra.get("trained_with")
        if isinstance(trained_with, dict):
            saved.update({k: v for k, v in trained_with.items() if k not in RUN_FIELDS})
        saved = {**saved, "outdir": outdir}
    opts = {**saved, **overrides, "resume": str(path), "outdir": overrides.get("outdir", saved.get("outdir", outdir))}
    return TrainingOptions.from_dict(opts), ckpt


def resume_options(resume: str, outdir: str, overrides: dict[str, Any]) -> TrainingOptions:
    """The options of :func:`read_resume` alone (the snapshot is then read again where the run is resolved)."""
    return read_resume(resume, outdir, overrides)[0]


class RunLog:
    """Messages to stdout and log.txt; one JSON line per tick to stats.jsonl; TensorBoard if installed."""

    def __init__(self, run_dir: Path | None, enabled: bool):
        self.enabled, self.run_dir = enabled, run_dir
        self.tb = None
        if enabled and run_dir is not None:
            from stylegan.extras import MissingExtra, require

            try:
                require("tensorboard")
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(run_dir))
            except MissingExtra as e:  # logs go to log.txt and stats.jsonl; say once how to get TensorBoard's
                self(f"note: no TensorBoard logs, {e}")

    def __call__(self, msg: str) -> None:
        if not self.enabled:
            return
        tqdm.write(msg)
        if self.run_dir is not None:
            with open(self.run_dir / "log.txt", "a") as f:
                f.write(msg + "\n")

    def stats(self, row: dict[str, Any]) -> None:
        if not self.enabled or self.run_dir is None:
            return
        with open(self.run_dir / "stats.jsonl", "a") as f:
            f.write(json.dumps(row) + "\n")
        if self.tb is not None:
            step = int(row["kimg"] * 1000)
            for k, v in row.items():
                if isinstance(v, (int, float)) and k not in ("kimg", "tick", "timestamp"):
                    self.tb.add_scalar(k, v, global_step=step)
            self.tb.flush()

    def close(self) -> None:
        if self.tb is not None:
            self.tb.close()


#: Temporary files of interrupted writes: our atomic writes (``.NAME.XXXX.tmp``, :mod:`stylegan.files`: a
#: snapshot, a grid image, ...) and the safetensors library's own (``.tmpXXXXXX``). None is ever a complete file.
_STALE_WRITE = re.compile(r"^(\..+\.[A-Za-z0-9_]+\.tmp|\.tmp[A-Za-z0-9]{6})$")


def remove_stale_writes(run_dir: Path) -> None:
    """Delete what writes cut short by SIGKILL left in a run folder."""
    for p in run_dir.iterdir():
        if _STALE_WRITE.match(p.name) and p.is_file():
            p.unlink()


def trim_logs(run_dir: Path, kimg: float) -> None:
    """Drop the rows of stats.jsonl and metric-*.jsonl written after the snapshot a run resumes from (kimg),
    so that a resumed run's logs read as one run: no repeated ticks, kimg never going backwards. Rows that
    carry no kimg (``stylegan metrics`` on a snapshot file) are kept: they describe snapshots still there."""
    for path in [run_dir / "stats.jsonl", *run_dir.glob("metric-*.jsonl")]:
        if not path.is_file():
            continue
        keep = []
        for line in path.read_text().splitlines():
            try:
                row_kimg = json.loads(line).get("kimg")
            except (ValueError, AttributeError):
                continue  # a line cut short by a kill
            if not isinstance(row_kimg, (int, float)) or row_kimg <= kimg + 1e-9:
                keep.append(line)
        path.write_text("".join(line + "\n" for line in keep))




def run_description(opts: TrainingOptions, world_size: int, gamma: float) -> str:
    """The ``desc`` part of a run folder's name: configuration, data, processes, batch, γ and ``--desc``."""
    data = re.sub(r"[^A-Za-z0-9_.]+", "_", Path(opts.data.replace("builtin:", "")).stem)
    desc = f"{opts.cfg}-{data}-gpus{world_size}-batch{opts.batch}-gamma{gamma:g}"
    return desc + (f"-{opts.desc}" if opts.desc else "")
