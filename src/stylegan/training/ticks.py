"""A tick of training: its statistics (progress, speed, memory, augmentation, growth, loss means summed over
every process) and its line in the log."""
from __future__ import annotations

import resource
import time
from typing import TYPE_CHECKING, Any

import torch

from stylegan.device import wide_float
from stylegan.training.distributed import DistInfo, all_reduce_sum

if TYPE_CHECKING:
    from stylegan.training.loop import Trainer


def tick_statistics(trainer: "Trainer", info: DistInfo, sums: dict[str, float], counts: dict[str, float],
                    tick_start_nimg: int, tick_start_time: float) -> tuple[dict[str, Any], dict[str, float]]:
    """One tick's row of stats.jsonl (progress, speed, memory, augmentation, growth) and the means of the
    losses over the tick, summed over every process."""
    now = time.time()
    tick_sec = now - tick_start_time
    keys = sorted(sums)
    vec = torch.tensor([[sums[k], counts[k]] for k in keys], dtype=wide_float(trainer.device), device=trainer.device)
    vec = all_reduce_sum(vec, info).cpu() if keys else vec
    means = {k: vec[i, 0].item() / max(vec[i, 1].item(), 1) for i, k in enumerate(keys)}
    kimg_done = (trainer.cur_nimg - tick_start_nimg) / 1000
    row = {"tick": trainer.cur_tick, "kimg": trainer.cur_nimg / 1000,
           "train_minutes": trainer.train_seconds / 60, "sec_per_tick": tick_sec,
           "sec_per_kimg": tick_sec / max(kimg_done, 1e-8), "images_per_s": kimg_done * 1000 / max(tick_sec, 1e-8),
           "cpu_mem_gb": peak_rss_gb(), "nan_grads": trainer.nan_grads, "timestamp": now, **means}
    if hasattr(trainer.augment_pipe, "p"):
        row["Progress/augment"] = float(trainer.augment_pipe.p)
    if trainer.ada is not None and trainer.ada.rt is not None:
        row["Progress/rt"] = trainer.ada.rt
    if trainer.device.type == "cuda":
        row["gpu_mem_gb"] = torch.cuda.max_memory_allocated(trainer.device) / 2 ** 30
    if trainer.growth is not None:
        row["Progress/resolution"], row["Progress/alpha"] = trainer.growth.resolution, trainer.growth.alpha
    if trainer.recipe.gamma_end is not None:  # the weights of the last step on the cosine schedule
        row["Progress/gamma"] = trainer.loss.r1_gamma
        if trainer.r2_on:
            row["Progress/r2_gamma"] = trainer.loss.r2_gamma
    return row, means


def mean_text(means: dict[str, float], key: str) -> str:
    """A tick's mean for the log; a penalty whose lazy phase did not run during the tick shows as "-"."""
    return f"{means[key]:.4g}" if key in means else "-"


def tick_line(trainer: "Trainer", row: dict[str, Any], means: dict[str, float]) -> str:
    """The tick's line in log.txt."""
    return (f"tick {trainer.cur_tick:<5d} kimg {row['kimg']:<8.1f} sec/tick {row['sec_per_tick']:<7.1f} "
            f"sec/kimg {row['sec_per_kimg']:<7.2f} img/s {row['images_per_s']:<7.1f} "
            f"G {mean_text(means, 'Loss/G/loss')} D {mean_text(means, 'Loss/D/loss')} "
            f"r1 {mean_text(means, 'Loss/r1_penalty')} pl {mean_text(means, 'Loss/pl_penalty')} "
            + (f"r2 {mean_text(means, 'Loss/r2_penalty')} " if trainer.r2_on else "")
            + (f"gamma {row['Progress/gamma']:.4g} " if "Progress/gamma" in row else "")
            + (f"augment {row['Progress/augment']:.3f} " if "Progress/augment" in row else "")
            + (f"res {trainer.growth.describe()} " if trainer.growth is not None else "")
            + f"mem {row['cpu_mem_gb']:.2f}GB")


def peak_rss_gb() -> float:
    """Peak resident memory of this process in GB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
