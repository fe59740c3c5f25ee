"""Shared benchmark helpers: thread setup, the machine's measured peak FLOP rate, timing, FLOP counting."""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode


def setup_threads(n: int) -> None:
    torch.set_num_threads(n)
    torch.set_num_interop_threads(1) if hasattr(torch, "set_num_interop_threads") else None


def measured_peak_flops(dtype=torch.float32, size: int = 2048, reps: int = 5, device="cpu") -> float:
    """Best observed FLOP/s of a large matrix multiply: the practical peak of this machine."""
    a = torch.randn(size, size, dtype=dtype, device=device)
    b = torch.randn(size, size, dtype=dtype, device=device)
    a @ b
    best = float("inf")
    for _ in range(reps):
        _sync(device)
        t = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * size ** 3 / best


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs (2 per multiply-add) of one call, as counted by torch's FLOP counter (convs and matmuls)."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def median_seconds(fn: Callable[[], object], warmup: int = 1, reps: int = 5, device="cpu") -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        _sync(device)
        t = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t)
    return statistics.median(times)
