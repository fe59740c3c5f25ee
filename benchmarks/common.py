"""Shared benchmark helpers: thread setup, the machine's measured peak FLOP rate, timing, FLOP counting."""
from __future__ import annotations

import contextlib
import statistics
import time
from typing import Callable, Iterator

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry


def setup_threads(n: int) -> None:
    from stylegan.cpu_memory import keep_freed_memory

    keep_freed_memory()  # as the trainer and the command line do
    torch.set_num_threads(n)
    torch.set_num_interop_threads(1) if hasattr(torch, "set_num_interop_threads") else None


@contextlib.contextmanager
def tf32(enabled: bool) -> Iterator[None]:
    """TensorFloat-32 matrix units for CUDA matrix products and cuDNN convolutions on (``enabled``) or off
    inside the block; off is true float32 (PyTorch's own default leaves TF32 on for convolutions)."""
    old = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = enabled
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = old


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


class _FlopCount(TorchDispatchMode):
    """Counts the FLOPs of every dispatched operation that torch's FLOP formulas know (convolutions, their
    backward, matrix products), at the dispatcher: unlike ``FlopCounterMode`` it needs no module hooks, so it
    also follows ``torch.autograd.grad(..., create_graph=True)`` (R1, path length)."""

    def __init__(self):
        super().__init__()
        self.total = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        formula = flop_registry.get(func._overloadpacket)
        if formula is not None:
            self.total += int(formula(*args, **kwargs, out_val=out))
        return out


def count_flops(fn: Callable[[], object]) -> int:
    """FLOPs (2 per multiply-add) of one call of ``fn``: convolutions (forward and every derivative) and
    matrix products, as torch's FLOP formulas count them."""
    with _FlopCount() as counter:
        fn()
    return counter.total


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



def fmt_ratio(ratio: float | None) -> str:
    """The "x authors" column (a dash where there is no authors' figure for the device)."""
    return f"{ratio:>9.2f}x" if ratio else f"{'-':>10}"


def fmt_share(share: float | None) -> str:
    """The "2x needs" column (a dash where there is no authors' figure for the device)."""
    return f"{100 * share:>8.0f}%" if share else f"{'-':>9}"
