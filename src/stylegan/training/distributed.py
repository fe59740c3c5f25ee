"""Multi-process training with PyTorch's own distributed engine under ``torchrun``.

``torchrun --nproc-per-node N -m stylegan.cli.main train ...`` sets RANK / WORLD_SIZE / LOCAL_RANK; every
process runs the same loop on its share of the global batch, and gradients are averaged with
``torch.distributed.all_reduce`` before each optimizer step (the R1 and path-length penalties need double
backward through D and G, which the DistributedDataParallel wrapper's hooks do not support, so the
averaging is done explicitly, bucketed into one flat tensor per network).
"""
from __future__ import annotations

import os
import sys
from dataclasses import dataclass

import torch
import torch.distributed as dist

from stylegan.device import choose_device


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the process group when launched by torchrun (gloo on CPU and MPS, NCCL on CUDA); the device is
    :func:`stylegan.device.choose_device`'s (the one chooser)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local = int(os.environ.get("LOCAL_RANK", "0"))
    dev = choose_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local if dev.index is None else dev.index)
        torch.cuda.set_device(dev)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return DistInfo(rank=rank, world_size=world, local_rank=local, device=dev)


def all_reduce_grads(params: list[torch.nn.Parameter], info: DistInfo) -> None:
    """Average the gradients of ``params`` over all processes (missing grads count as zero)."""
    if not info.enabled:
        return
    params = [p for p in params if p.requires_grad]
    for p in params:
        if p.grad is None:
            p.grad = torch.zeros_like(p)
    flat = torch.cat([p.grad.flatten() for p in params])
    dist.all_reduce(flat)
    flat /= info.world_size
    _unflatten(flat, params)


def _unflatten(flat: torch.Tensor, params) -> None:
    i = 0
    for p in params:
        n = p.numel()
        p.grad.copy_(flat[i:i + n].view_as(p.grad))
        i += n


def all_reduce_sum(t: torch.Tensor, info: DistInfo) -> torch.Tensor:
    if info.enabled:
        dist.all_reduce(t)
    return t


def barrier(info: DistInfo) -> None:
    if info.enabled:
        dist.barrier()


def shutdown(info: DistInfo, finished: bool = False) -> None:
    """Leave the process group. ``finished``: every process ended its loop normally, so they first wait for each
    other (a gloo group torn down while a peer still writes its snapshot can abort that peer's exit), as long as
    any collective would (the group's timeout), so that a peer that failed cannot hang the others."""
    if not (info.enabled and dist.is_initialized()):
        return
    if finished:
        if dist.get_backend() == "gloo":
            dist.monitored_barrier()  # names a missing rank when it times out
        else:
            dist.barrier()
    dist.destroy_process_group()


def free_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _local_worker(rank: int, procs: int, port: int, threads: int, fn, args) -> None:
    os.environ.update({"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank),
                       "LOCAL_RANK": str(rank), "WORLD_SIZE": str(procs), "LOCAL_WORLD_SIZE": str(procs)})
    torch.set_num_threads(threads)
    try:
        fn(*args)
    except (ValueError, OSError) as e:  # options, data and checkpoint errors are already phrased for users
        if rank == 0:
            print(f"Error: {e}", file=sys.stderr)
        sys.exit(1)


def launch_local(fn, args: tuple, procs: int, threads: int | None = None) -> None:
    """Run ``fn(*args)`` in ``procs`` local processes that form one process group (gloo on the CPU), as torchrun
    would, each with ``threads`` threads (default: OMP_NUM_THREADS, else an equal share of the cores). At small
    sizes a training step is dominated by the overhead of many small operations, which a second thread barely
    shortens; a second process does half of the batch in the same time."""
    import signal

    import torch.multiprocessing as mp

    env = os.environ.get("OMP_NUM_THREADS", "")
    threads = threads or (int(env) if env.isdigit() and int(env) > 0 else max(1, (os.cpu_count() or procs) // procs))
    ctx = mp.start_processes(_local_worker, args=(procs, free_port(), threads, fn, args), nprocs=procs,
                             join=False, start_method="spawn")

    def forward(signum, frame):  # every worker stops cleanly after its step (the same step: they agree)
        for p in ctx.processes:
            if p.is_alive():
                os.kill(p.pid, signum)
    old = {sig: signal.signal(sig, forward) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        while not ctx.join():
            pass
    except mp.ProcessExitedException as e:
        raise SystemExit(e.exit_code or 1) from None
    finally:
        for sig, handler in old.items():
            signal.signal(sig, handler)
