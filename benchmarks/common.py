"""Shared benchmark helpers: thread setup, the machine's measured peak FLOP rate, timing, FLOP counting."""
from __future__ import annotations

import statistics
import time
from typing import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode


def setup_threads(n: int) -> None:
    from stylegan.cpu_memory import keep_freed_memory

    keep_freed_memory()  # as the trainer and the command line do
    torch.set_num_threads(n)
    torch.set_num_interop_threads(1) if hasattr(torch, "set_num_interop_threads") else None


def measured_peak_flops(dtype=torch.float32, reps: int = 5, device="cpu") -> float:
    """The best FLOP/s observed on dense float32 work (large matrix multiplies and a 3×3 convolution with
    256 channels): the practical peak of this machine, against which shares are reported."""
    import torch.nn.functional as F

    def gemm(n):
        a = torch.randn(n, n, dtype=dtype, device=device)
        b = torch.randn(n, n, dtype=dtype, device=device)
        return (lambda: a @ b), 2 * n ** 3

    def conv():
        x = torch.randn(8, 256, 32, 32, dtype=dtype, device=device)
        w = torch.randn(256, 256, 3, 3, dtype=dtype, device=device)
        return (lambda: F.conv2d(x, w, padding=1)), 2 * 9 * 256 * 256 * 32 * 32 * 8

    best = 0.0
    for fn, flops in (gemm(2048), gemm(4096), conv()):
        fn()
        for _ in range(reps):
            _sync(device)
            t = time.perf_counter()
            fn()
            _sync(device)
            best = max(best, flops / (time.perf_counter() - t))
    return best


def _sync(device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def count_flops(fn: Callable[[], object]) -> int | None:
    """FLOPs (2 per multiply-add) of one call, as counted by torch's FLOP counter (convs and matmuls);
    None where the counter cannot follow the computation (it does not support ``autograd.grad``)."""
    try:
        with FlopCounterMode(display=False) as counter:
            fn()
    except RuntimeError:
        return None
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
