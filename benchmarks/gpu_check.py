"""The GPU path in one command (`make gpu-check`), writing one JSON.

On a CUDA device, in this order (each part's failure is recorded and the next part still runs):

1. the GPU-marked tests (float16 with conv clamp, the grouped modulated convolution, channels-last, a few
   mixed-precision training steps), then the whole suite's CPU parts are left to `make test`;
2. a few hundred float16 (mixed-precision) training steps of the benchmarks' small setting, with ADA on:
   every loss finite, s/kimg;
3. ``torch.compile`` of G against eager G: the largest difference and both speeds (an eager fallback is what
   the package uses wherever compilation fails; a failure here is reported, not fatal);
4. a one-process NCCL process group: the package's gradient all-reduce through it;
5. the benchmarks at StyleGAN2 config F 256²: training s/kimg at batch 32 in fp32, tf32 and fp16, G images/s
   at batch 64, peak GPU memory.

On a machine without CUDA it says so, runs the GPU-marked tests (which then skip) and exits 0.
Run: `make gpu-check` or `python benchmarks/gpu_check.py --json gpu-check.json`.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import measured_peak_flops, median_seconds, tf32  # noqa: E402


def sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def part(results: dict, name: str, fn, *args) -> None:
    """Run one part, store its result (or its error) under ``name`` and print a line."""
    start = time.perf_counter()
    print(f"== {name}", flush=True)
    try:
        results[name] = dict(ok=True, **fn(*args))
    except Exception as e:  # noqa: BLE001 - every part's failure is a result
        results[name] = dict(ok=False, error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc()[-2000:])
    results[name]["seconds"] = time.perf_counter() - start
    shown = {k: v for k, v in results[name].items() if k != "traceback"}
    print(f"   {json.dumps(shown, default=str)[:1500]}", flush=True)


def gpu_tests() -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE.parent / "src"), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider",
                        str(HERE.parent / "tests" / "test_gpu.py")],
                       capture_output=True, text=True, env=env, timeout=600)
    tail = (r.stdout + r.stderr).strip().splitlines()[-1:] or [""]
    if r.returncode not in (0, 5):  # 5: nothing selected
        raise RuntimeError(f"pytest exit {r.returncode}: {(r.stdout + r.stderr)[-1500:]}")
    return dict(summary=tail[0])


def fp16_training(steps: int, device: str = "cuda") -> dict:
    from bench_training import make_data

    from stylegan.training.loop import Trainer
    from stylegan.training.options import TrainingOptions

    batch = 32
    with tempfile.TemporaryDirectory() as tmp:
        opts = TrainingOptions(outdir=str(Path(tmp) / "runs"), data=str(make_data(Path(tmp), 32, batch)),
                               cbase=8192, cmax=256, batch=batch, workers=0, device=device, fp32=False,
                               aug="ada", kimg=1000)
        t = Trainer(opts)
        worst = {}
        t.step()
        sync(device)
        start = time.perf_counter()
        for _ in range(steps):
            for k, v in t.step().items():
                v = torch.as_tensor(v).detach().float()
                if not torch.isfinite(v).all():
                    raise RuntimeError(f"{k} is not finite at step {t.batch_idx}: {v}")
                worst[k] = max(worst.get(k, 0.0), float(v.abs().max()))
        sync(device)
        sec = time.perf_counter() - start
    return dict(steps=steps, batch=batch, s_per_kimg=sec / (steps * batch) * 1000, max_abs_stats=worst,
                ada_p=float(t.augment_pipe.p) if t.augment_pipe is not None else None)


def compile_generator(device: str = "cuda") -> dict:
    from stylegan.presets import make_config
    from stylegan.networks import build_networks

    G = build_networks(make_config("stylegan2", resolution=32, cbase=8192, cmax=256), seed=0)["G_ema"].to(device).eval()
    z = torch.randn(64, G.z_dim, generator=torch.Generator().manual_seed(0)).to(device)

    def eager():
        with torch.no_grad():
            return G(z, noise_mode="const")
    start = time.perf_counter()
    compiled = torch.compile(G)
    with torch.no_grad():
        out = compiled(z, noise_mode="const")
    sync(device)
    compile_s = time.perf_counter() - start

    def fast():
        with torch.no_grad():
            return compiled(z, noise_mode="const")
    with tf32(False):
        ref = eager()
        diff = float((fast() - ref).abs().max())
        t_eager = median_seconds(eager, warmup=2, reps=10, device=device)
        t_comp = median_seconds(fast, warmup=2, reps=10, device=device)
    return dict(compile_seconds=compile_s, max_abs_diff=diff, image_range=float(ref.abs().max()),
                eager_img_s=64 / t_eager, compiled_img_s=64 / t_comp, out_shape=list(out.shape))


def nccl(device: str = "cuda") -> dict:
    import torch.distributed as dist

    from stylegan.training.distributed import DistInfo, all_reduce_grads, free_port

    cuda = torch.device(device).type == "cuda"
    dist.init_process_group("nccl" if cuda else "gloo", init_method=f"tcp://127.0.0.1:{free_port()}", rank=0,
                            world_size=1)
    try:
        info = DistInfo(rank=0, world_size=1, local_rank=0, device=torch.device(device))
        p = torch.nn.Parameter(torch.zeros(1000, device=device))
        p.grad = torch.arange(1000, dtype=torch.float32, device=device)
        expected = p.grad.clone()
        all_reduce_grads([p], info)
        t = torch.ones(3, device=device)
        dist.all_reduce(t)
        ok = bool(torch.equal(p.grad, expected)) and float(t.sum()) == 3
        if not ok:
            raise RuntimeError("a one-process all-reduce changed the gradients")
        return dict(backend=dist.get_backend(), world_size=dist.get_world_size())
    finally:
        dist.destroy_process_group()


def benchmarks(train_batch: int, g_batch: int, reps: int) -> dict:
    from bench_generator import bench_generator
    from bench_training import bench

    peaks = {}
    with tf32(False):
        peaks["fp32"] = measured_peak_flops(device="cuda")
    with tf32(True):
        peaks["tf32"] = measured_peak_flops(device="cuda")
    peaks["fp16"] = measured_peak_flops(torch.float16, device="cuda")
    rows = []
    for precision in ("fp32", "tf32", "fp16"):
        torch.cuda.reset_peak_memory_stats()
        r = bench("config-f-256", reps, "cuda", peaks[precision], precision, train_batch)
        rows.append(dict(r, peak_flops=peaks[precision]))
        print(f"   config F 256², batch {train_batch}, {precision}: {r['train_s_per_kimg']:.2f} s/kimg, "
              f"main {100 * r['main_peak_share']:.0f} % of {precision} peak, peak GPU memory "
              f"{r['peak_gpu_memory_gb']:.1f} GB", flush=True)
    torch.cuda.reset_peak_memory_stats()
    g = bench_generator("config-f-256", reps, "cuda", peaks["fp32"], g_batch)
    for r in g:
        print(f"   G forward config F 256², batch {g_batch}: {r['what']}: {r['images_per_s']:.0f} img/s", flush=True)
    return dict(peak_flops=peaks, training=rows, generator=g,
                generator_peak_gpu_memory_gb=torch.cuda.max_memory_allocated() / 2 ** 30)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", default="gpu-check.json", help="where to write the results")
    ap.add_argument("--steps", type=int, default=300, help="mixed-precision training steps")
    ap.add_argument("--reps", type=int, default=3, help="timed repetitions per benchmark")
    ap.add_argument("--device", default="cuda", help="cuda, or cpu for a smoke test of the parts' code")
    ap.add_argument("--skip", default="", help="comma-separated parts to leave out: tests,train,compile,nccl,bench")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    results: dict = dict(torch=torch.__version__, python=platform.python_version(), cuda=torch.cuda.is_available())
    start = time.perf_counter()
    if args.device == "cpu":  # a smoke test of the parts' code
        parts = [("train", fp16_training, (args.steps, "cpu")), ("nccl", nccl, ("cpu",)),
                 ("compile", compile_generator, ("cpu",))]
    elif not torch.cuda.is_available():
        print("gpu-check: no CUDA device on this machine; running the GPU-marked tests (they skip) only")
        parts = [("tests", gpu_tests, ())]
    else:
        p = torch.cuda.get_device_properties(0)
        results.update(device=torch.cuda.get_device_name(0), capability=f"{p.major}.{p.minor}",
                       memory_gb=p.total_memory / 2 ** 30, cuda_version=torch.version.cuda)
        print(f"gpu-check on {results['device']} (compute capability {results['capability']}, "
              f"{results['memory_gb']:.0f} GB), torch {torch.__version__}, CUDA {torch.version.cuda}", flush=True)
        parts = [("tests", gpu_tests, ()), ("train", fp16_training, (args.steps,)), ("compile", compile_generator, ()),
                 ("nccl", nccl, ()), ("bench", benchmarks, (32, 64, args.reps))]
    for name, fn, fargs in parts:
        if name not in skip:
            part(results, name, fn, *fargs)
            Path(args.json).write_text(json.dumps(results, indent=2, default=str))  # kept if stopped later
    results["total_seconds"] = time.perf_counter() - start
    failed = [k for k, v in results.items() if isinstance(v, dict) and not v.get("ok", True)]
    results["failed"] = failed
    Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    print(f"gpu-check: {'all parts passed' if not failed else 'FAILED: ' + ', '.join(failed)}; "
          f"{results['total_seconds']:.0f} s; wrote {args.json}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
