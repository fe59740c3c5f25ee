"""How many CPU threads a training process uses.

At the sizes a laptop trains, a run with more threads than there are idle cores is several times slower, not a
little: the threads of each operation wait for one another, and one of them is always waiting for a core
(docs/speed.md, "Speed choices in the code"). So unless ``--threads`` (or ``OMP_NUM_THREADS``) says
otherwise, a run takes the cores that are idle when it starts, shared among its ``--procs``, and at least one.
"""
from __future__ import annotations

import contextlib
import math
import os
import time
from pathlib import Path
from typing import Iterator

import torch


def available_cores() -> int:
    """The cores this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def _cpu_times() -> tuple[int, int] | None:
    """(idle, total) jiffies of all cores from /proc/stat (None where there is none)."""
    try:
        fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()
    except OSError:
        return None
    if not fields or fields[0] != "cpu":
        return None
    values = [int(v) for v in fields[1:9]]  # user nice system idle iowait irq softirq steal
    return values[3] + values[4], sum(values)


def idle_share(before: tuple[int, int], after: tuple[int, int]) -> float:
    """The share of CPU time that was idle between two (idle, total) readings (1.0 when no time passed)."""
    d_idle, d_total = after[0] - before[0], after[1] - before[1]
    return 1.0 if d_total <= 0 else min(max(d_idle / d_total, 0.0), 1.0)


def idle_cores(interval: float = 0.3) -> float | None:
    """How many of the machine's cores are idle, measured over ``interval`` seconds (None: unknown)."""
    before = _cpu_times()
    if before is None:
        return None
    time.sleep(interval)
    after = _cpu_times()
    return None if after is None else idle_share(before, after) * (os.cpu_count() or 1)


def threads_for(procs: int, idle: float | None, cores: int) -> int:
    """Threads per process: the idle cores (rounded down, with a quarter-core of slack) shared among ``procs``,
    at most the available cores' share and at least 1. Unknown idleness: the available cores' share."""
    share = max(1, cores // procs)
    if idle is None:
        return share
    return max(1, min(share, math.floor((idle + 0.25) / procs)))


def training_threads(threads: int | None, procs: int) -> int | None:
    """The thread count for each training process: ``threads`` when given; None (leave it as it is) when
    OMP_NUM_THREADS is set; otherwise from the idle cores (:func:`threads_for`)."""
    if threads is not None:
        return threads
    if os.environ.get("OMP_NUM_THREADS"):
        return None
    return threads_for(procs, idle_cores(), available_cores())


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """PyTorch's intra-op thread count set to ``n`` for the block (None: unchanged), then restored."""
    before = torch.get_num_threads()
    if n is not None:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if n is not None:
            torch.set_num_threads(before)
