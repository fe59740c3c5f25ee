"""A tick of training: its statistics (progress, speed, memory, augmentation, growth, loss means summed over
every process) and its line in the log."""
from __future__ import annotations

import resource
import time
from dataclasses import dataclass
from typing import Any

import torch

from stylegan.device import wide_float
from stylegan.training.distributed import DistInfo, all_reduce_sum
from stylegan.training.growing import Growth


@dataclass(frozen=True)
class TickState:
    """What a tick's row and log line read of the training process, taken at the end of the tick."""

    tick: int                          # ticks done, this one included
    cur_nimg: int                      # images seen
    train_seconds: float               # time in training steps, across resumes
    nan_grads: int                     # steps whose gradients had non-finite values
    device: torch.device
    augment_p: float | None = None     # the augmentation strength (None: no pipeline with a strength)
    ada_rt: float | None = None        # ADA's overfitting heuristic r_t (None: no ADA, or not measured yet)
    growth: Growth | None = None       # the growth stage (None: networks that do not grow)
    r1_gamma: float | None = None      # this step's R1 weight, when it follows a schedule (--gamma-end)
    r2_gamma: float | None = None      # R2's, likewise (None also when R2 is off)
    r2_on: bool = False                # R2 runs: its penalty has a column in the log line
    cond_strength: float | None = None  # λ of the last step along --cond-fade (None: no fade)


def tick_statistics(state: TickState, info: DistInfo, sums: dict[str, float], counts: dict[str, float],
                    tick_start_nimg: int, tick_start_time: float) -> tuple[dict[str, Any], dict[str, float]]:
    """One tick's row of stats.jsonl (progress, speed, memory, augmentation, growth) and the means of the
    losses over the tick, summed over every process."""
    now = time.time()
    tick_sec = now - tick_start_time
    keys = sorted(sums)
    vec = torch.tensor([[sums[k], counts[k]] for k in keys], dtype=wide_float(state.device), device=state.device)
    vec = all_reduce_sum(vec, info).cpu() if keys else vec
    means = {k: vec[i, 0].item() / max(vec[i, 1].item(), 1) for i, k in enumerate(keys)}
    kimg_done = (state.cur_nimg - tick_start_nimg) / 1000
    row = {"tick": state.tick, "kimg": state.cur_nimg / 1000,
           "train_minutes": state.train_seconds / 60, "sec_per_tick": tick_sec,
           "sec_per_kimg": tick_sec / max(kimg_done, 1e-8), "images_per_s": kimg_done * 1000 / max(tick_sec, 1e-8),
           "cpu_mem_gb": peak_rss_gb(), "nan_grads": state.nan_grads, "timestamp": now, **means}
    if state.augment_p is not None:
        row["Progress/augment"] = state.augment_p
    if state.ada_rt is not None:
        row["Progress/rt"] = state.ada_rt
    if state.device.type == "cuda":
        row["gpu_mem_gb"] = torch.cuda.max_memory_allocated(state.device) / 2 ** 30
    if state.growth is not None:
        row["Progress/resolution"], row["Progress/alpha"] = state.growth.resolution, state.growth.alpha
    if state.r1_gamma is not None:  # the weights of the last step on the cosine schedule
        row["Progress/gamma"] = state.r1_gamma
        if state.r2_gamma is not None:
            row["Progress/r2_gamma"] = state.r2_gamma
    if state.cond_strength is not None:
        row["Progress/cond_strength"] = state.cond_strength
    return row, means


def mean_text(means: dict[str, float], key: str) -> str:
    """A tick's mean for the log; a penalty whose lazy phase did not run during the tick shows as "-"."""
    return f"{means[key]:.4g}" if key in means else "-"


def tick_line(state: TickState, row: dict[str, Any], means: dict[str, float]) -> str:
    """The tick's line in log.txt."""
    return (f"tick {state.tick:<5d} kimg {row['kimg']:<8.1f} sec/tick {row['sec_per_tick']:<7.1f} "
            f"sec/kimg {row['sec_per_kimg']:<7.2f} img/s {row['images_per_s']:<7.1f} "
            f"G {mean_text(means, 'Loss/G/loss')} D {mean_text(means, 'Loss/D/loss')} "
            f"r1 {mean_text(means, 'Loss/r1_penalty')} pl {mean_text(means, 'Loss/pl_penalty')} "
            + (f"r2 {mean_text(means, 'Loss/r2_penalty')} " if state.r2_on else "")
            + (f"gamma {row['Progress/gamma']:.4g} " if "Progress/gamma" in row else "")
            + (f"augment {row['Progress/augment']:.3f} " if "Progress/augment" in row else "")
            + (f"cond {row['Progress/cond_strength']:.3g} " if "Progress/cond_strength" in row else "")
            + (f"res {state.growth.describe()} " if state.growth is not None else "")
            + f"mem {row['cpu_mem_gb']:.2f}GB")


def peak_rss_gb() -> float:
    """Peak resident memory of this process in GB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
