"""The GPU path in one command (`make gpu-check`), writing one JSON.

Run: `make gpu-check PEER=/path/to/stylegan2-ada-pytorch PEER3=/path/to/stylegan3` (both optional), that is
`python benchmarks/gpu_check.py --json gpu-check.json --peer ... --peer3 ...`. A path that is not such a
checkout ends it with one error line and exit status 2 before anything runs.

On a CUDA device, in this order (each part's failure is recorded and the next part still runs):

1. tests: the GPU-marked tests (float16 with conv clamp, the grouped modulated convolution, channels-last, a
   few mixed-precision training steps); the whole suite's CPU parts are left to `make test`;
2. train: 150 float16 (mixed-precision) training steps of the benchmarks' small setting, with ADA on: every
   loss finite, s/kimg;
3. compile: ``torch.compile`` of G against eager G: the largest difference and both speeds (an eager fallback
   is what the package uses wherever compilation fails; a failure here is reported, not fatal);
4. nccl: a one-process NCCL process group: the package's gradient all-reduce through it;
5. bench: the benchmarks at StyleGAN2 config F 256²: training s/kimg at batch 32 in fp32, tf32 and fp16, G
   images/s at batch 64, peak GPU memory;
6. peer (with ``--peer`` and/or ``--peer3``): the authors' code side by side with ours, each checkout in a
   process of its own (their modules are imported from the checkout at run time; none of their code lives
   here). Their custom CUDA operations (bias_act, upfirdn2d; stylegan3 also filtered_lrelu) are compiled by
   their own ``_init()`` through torch.utils.cpp_extension, in background processes started before part 1, so
   that the compilation overlaps the other parts; seconds and success are recorded per operation, and where
   a build fails its error is recorded and their code is timed on their reference implementation (the JSON
   says so). Their ``get_plugin()`` imports the built module by name, which an extension module built with
   pybind11 3 (torch 2.13) no longer allows by itself: in these processes torch's ``load()`` also puts the
   module into ``sys.modules`` (:func:`register_loaded_extensions`), without which a successful build would
   still leave them on their reference path. Then, interleaved (ours, theirs, ours, ...):
   - stylegan2-ada: their StyleGAN2Loss phases (main = Gmain + Dmain, R1 = Dreg, path length = Greg) against
     ours at config F 256², batch 32, 5 reps, in TF32 (both float32 with TF32 on) and in fp16 (their
     ``num_fp16_res=4, conv_clamp=256``; ours in our mixed precision): s/kimg of each side
     (main + R1/16 + PL/4) and the ratio (above 1: ours is faster);
   - stylegan3: StyleGAN3-T at 256², the authors' stylegan3-t configuration (cbase 32768, cmax 512, 2 mapping
     layers, conv clamp 256), their weights carried into ours: G forward img/s (batch 32) and the main phase
     of a training step (batch 16; bench_stylegan3.train_step) per side, in TF32, theirs with their CUDA
     filtered_lrelu; also their default float16 layers (``num_fp16_res=4``), which ours does not have.
   Each records the device, precision, batch, reps, both sides' figures and the ratio.

Time budget: the whole run is meant to end within 8 minutes on an H100/H200 (``--budget``: 450 s by default,
leaving room for starting and ending; estimated from earlier parts' figures, not yet measured as a whole: parts
1-5 about 3-4 minutes, the peer part about 1.5 once the builds are done). Each part, and each step of the peer
part, checks the time left before it starts and is recorded as ``"skipped": "time"`` where it would not fit
(``NEEDS``, ``PEER_NEEDS``); the peer processes are stopped at the deadline. The JSON is rewritten after every
part (the peer processes write theirs after every step), so a run that is cut off still leaves its results. Where
a StyleGAN3 measurement runs out of GPU memory, its batch is halved and the JSON says so.

On a machine without CUDA it says so, runs the GPU-marked tests (which then skip) and exits 0. ``--device
cpu`` is a smoke test of the parts' code: the training steps, NCCL (gloo), compile and the peer part at a tiny
size (32², a few channels, batch 4, one rep, their reference operations).
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import importlib
import importlib.util
import json
import os
import platform
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import traceback
import types
import warnings
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from common import (check_peer_path, interleaved_median_seconds, measured_peak_flops, median_seconds,  # noqa: E402
                    tf32)

#: The whole run's time budget, seconds: `make gpu-check` ends within 8 minutes on an H100/H200.
BUDGET_S = 450
#: The least time (s) each part needs on a GPU to be started; with less left it is recorded as skipped.
NEEDS = {"tests": 45, "train": 25, "compile": 35, "nccl": 5, "bench": 90, "peer": 40}
#: The same inside the peer part: one checkout's process, one row of the StyleGAN2 side by side, one StyleGAN3
#: measurement (on a GPU; the CPU smoke test needs none).
PEER_NEEDS = {"stylegan2-ada": 60, "stylegan2-ada row": 30, "stylegan3": 45, "stylegan3 step": 20}
#: The authors' custom CUDA operations per checkout (torch_utils/ops/<name>.py, each with an ``_init()``).
PEER_OPS = {"stylegan2-ada": ("bias_act", "upfirdn2d"), "stylegan3": ("bias_act", "upfirdn2d", "filtered_lrelu")}
#: Packages their networks import that ours does not need (``requests`` and ``pkg_resources`` get stand-ins:
#: common.stand_in_for_absent_modules): checked before anything runs, since a GPU machine may have no internet.
PEER_REQUIRES = {"stylegan2-ada": ("numpy",), "stylegan3": ("numpy", "scipy")}
#: StyleGAN3-T at the CPU smoke test's size: 32², 32 channels.
SMOKE3 = dict(channel_base=1024, channel_max=32)
#: Per device type: the StyleGAN2 side by side's (setting, batch, reps); StyleGAN3's (forward batch, training
#: batch, reps).
SG2_SIZES = {"cuda": ("config-f-256", 32, 5), "cpu": ("smoke-32", 4, 1)}
SG3_SIZES = {"cuda": (32, 16, 5), "cpu": (4, 4, 1)}


class Deadline:
    """The seconds left of a budget that started at construction."""

    def __init__(self, seconds: float):
        self.end = time.perf_counter() + seconds

    def left(self) -> float:
        return self.end - time.perf_counter()


DEADLINE = Deadline(BUDGET_S)


def sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def part(results: dict, name: str, fn, *args, need: float = 0) -> None:
    """Run one part, store its result (or its error) under ``name`` and print a line; with less than ``need``
    seconds left of the budget it is recorded as skipped instead."""
    start = time.perf_counter()
    print(f"== {name}", flush=True)
    left = DEADLINE.left()
    if left < need:
        results[name] = dict(ok=True, skipped="time", seconds_left=left, seconds_needed=need)
        print(f"   skipped: time ({left:.0f} s left, {need:.0f} s needed)", flush=True)
        return
    try:
        results[name] = {"ok": True, **fn(*args)}
    except Exception as e:  # noqa: BLE001 - every part's failure is a result
        results[name] = dict(ok=False, error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc()[-2000:])
    results[name]["seconds"] = time.perf_counter() - start
    shown = {k: v for k, v in results[name].items() if k != "traceback"}
    print(f"   {json.dumps(shown, default=str)[:1500]}", flush=True)


def gpu_tests() -> dict:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(HERE.parent / "src"), os.environ.get("PYTHONPATH", "")]))
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider",
                        str(HERE.parent / "tests" / "test_gpu.py")],
                       capture_output=True, text=True, env=env, timeout=max(1.0, min(600.0, DEADLINE.left())))
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


# --- The authors' code side by side (part "peer") --------------------------------------------------------------
#
# Each checkout runs in a process of its own (`--child`): both name their packages training, torch_utils and
# dnnlib and their compiled operations alike, and a process can be stopped at the deadline. A child writes its
# JSON after every step, so what it measured before it was stopped is kept.

def device_name(device: str) -> str:
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name(0)
    return platform.processor() or platform.machine()


def load_side(side: str, root: Path):
    """The authors' checkout ``root`` imported (common.Peer for stylegan2-ada, bench_stylegan3.Peer3 for
    stylegan3), with its custom-operation modules in ``ops``; ``error`` set where it does not import here."""
    from bench_stylegan3 import Peer3
    from common import Peer

    register_loaded_extensions()
    with contextlib.redirect_stderr(sys.stdout):  # their import-time warnings are not our error line
        peer = (Peer if side == "stylegan2-ada" else Peer3)(root)
    peer.ops = {} if peer.error else {name: importlib.import_module(f"torch_utils.ops.{name}")
                                      for name in PEER_OPS[side]}
    return peer


def register_loaded_extensions() -> None:
    """The authors' ``custom_ops.get_plugin()`` builds with ``torch.utils.cpp_extension.load()`` and then imports
    the module by name. That worked while a loaded extension module put itself into ``sys.modules`` (single-phase
    initialization); pybind11 3, which torch 2.13 builds extensions with, makes multi-phase modules, which do not,
    so their import fails after a successful build and their code falls back to its reference path. Here
    ``load()`` also puts the module it returns into ``sys.modules`` under the name asked for, as before."""
    import torch.utils.cpp_extension as ext

    if getattr(ext.load, "registers_module", False):
        return
    original = ext.load

    def load(name, *args, **kwargs):
        module = original(name, *args, **kwargs)
        if isinstance(module, types.ModuleType):
            sys.modules[name] = module
        return module
    load.registers_module = True
    ext.load = load


LOAD_NOTE = ("torch.utils.cpp_extension.load() also registers the loaded module in sys.modules, where the authors' "
             "get_plugin() imports it (gpu_check.register_loaded_extensions)")


def reference_only(module) -> None:
    """Their operation module made to take its reference implementation from now on: their ops call the CUDA
    kernel only where ``_init()`` returns True."""
    module._init = lambda: False


def build_ops(ops: dict, failed_before: dict | None = None) -> dict:
    """Each of their operations' ``_init()`` called (compiled, or loaded from torch's extension cache): the
    seconds, whether it built, and its error. stylegan2-ada's ``_init()`` warns and returns False where the
    build fails, stylegan3's raises; either way the operation is then left on their reference implementation.
    ``failed_before``: a background build's record, whose failures are not tried again."""
    out = {}
    for name, module in ops.items():
        before = (failed_before or {}).get(name) or {}
        if before.get("built") is False:
            reference_only(module)
            out[name] = dict(built=False, seconds=0.0, error=before.get("error"),
                             path="reference (the build failed in the background)")
            continue
        start = time.perf_counter()
        error = None
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            try:
                built = bool(module._init())
            except Exception as e:  # noqa: BLE001 - their build, on a toolchain it was not written for
                built, error = False, f"{type(e).__name__}: {e}"
        if not built:
            error = error or next((str(w.message) for w in caught if "build" in str(w.message).lower()),
                                  "_init() returned False")
            reference_only(module)
        out[name] = dict(built=built, seconds=time.perf_counter() - start, error=error and error[-3000:],
                         path="CUDA" if built else "reference (the build failed)")
    return out


def _write(path: Path, data: dict) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str))
    tmp.replace(path)


def child_build(side: str, root: Path, out: Path) -> None:
    """A background process: their operations compiled into torch's extension cache, where the timing
    process of the same checkout later loads them (the same module names in the same order)."""
    result: dict = dict(checkout=str(root), extension_load=LOAD_NOTE)
    peer = load_side(side, root)
    if peer.error:
        result["error"] = peer.error
    else:
        result["ops"] = build_ops(peer.ops)
    _write(out, result)


def child_time(side: str, root: Path, device: str, out: Path, build_record: Path | None) -> None:
    """One checkout's side by side, written to ``out`` after every step."""
    cuda = torch.device(device).type == "cuda"
    result: dict = dict(checkout=str(root), device=device_name(device), torch=torch.__version__,
                        cudnn_benchmark=torch.backends.cudnn.benchmark, extension_load=LOAD_NOTE)
    save = lambda: _write(out, result)  # noqa: E731
    peer = load_side(side, root)
    if peer.error:
        result["error"] = peer.error
        save()
        return
    if cuda or build_record is not None:
        before = None
        if build_record is not None and build_record.is_file():
            background = json.loads(build_record.read_text())
            result["ops_background_build"] = background
            before = background.get("ops")
        result["ops"] = build_ops(peer.ops, before)
    else:
        result["ops"] = {name: dict(built=None, path="reference (no CUDA: their code takes it by itself)")
                         for name in peer.ops}
    save()
    try:
        (time_stylegan2 if side == "stylegan2-ada" else time_stylegan3)(peer, device, result, save)
    except Exception as e:  # their code or ours failing here: recorded with what was measured before
        result.update(error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc()[-2000:])
        save()
        raise
    save()


def _need(key: str, device: str) -> float:
    return PEER_NEEDS[key] if torch.device(device).type == "cuda" else 0


def time_stylegan2(peer, device: str, result: dict, save) -> None:
    """Their StyleGAN2Loss phases against ours, through bench_training.bench's side by side."""
    from bench_training import bench

    cuda = torch.device(device).type == "cuda"
    setting, batch, reps = SG2_SIZES["cuda" if cuda else "cpu"]
    # (ours, their float16 layers): TF32 both; fp16 ours and theirs mixed. The CPU has neither: float32 ours,
    # theirs built both ways (their float16 layers are what the fp16 row builds).
    rows = [("tf32", False), ("fp16", True)] if cuda else [("fp32", False), ("fp32", True)]
    result["rows"] = []
    for precision, mixed in rows:
        left = DEADLINE.left()
        if left < _need("stylegan2-ada row", device):
            result["rows"].append(dict(precision=precision, skipped="time", seconds_left=left))
            save()
            continue
        b, r = batch, None
        while True:  # out of GPU memory (ours, or theirs: peer.error says so): the batch halved, down to 4
            if cuda:
                torch.cuda.reset_peak_memory_stats()
            try:
                r = bench(setting, reps, device, None, precision, b, peer, peer_mixed=mixed, ceiling=False)
                oom = bool(peer.error and "OutOfMemoryError" in peer.error)
            except torch.cuda.OutOfMemoryError:
                r, oom = None, True
            if not oom or b // 2 < 4:
                break
            result.setdefault("out_of_memory", []).append(f"{precision} at batch {b}: {peer.error or 'ours'}")
            peer.error = None  # their code ran out of memory here; it is not broken
            gc.collect()
            torch.cuda.empty_cache()
            b //= 2
        if r is None:
            result["rows"].append(dict(precision=precision, batch=b, error="out of GPU memory"))
            save()
            continue
        row = dict(setting=setting, precision=precision, batch=b, reps=reps,
                   ours_s_per_kimg=r["train_s_per_kimg"], **{k: v for k, v in r.items() if k.endswith("_s_per_img")})
        if "train_vs_authors" in r:
            row.update(authors_precision=r["authors_precision"],
                       authors_s_per_kimg=1000 / r["authors_train_images_per_s"], ratio=r["train_vs_authors"],
                       **{f"{ph}_ratio": r[f"{ph}_vs_authors"] for ph in ("main", "r1", "pl")})
        else:
            row["error"] = peer.error or "the authors' phases were not timed"
            if peer.error and "OutOfMemoryError" in peer.error:
                peer.error = None  # the next row tries theirs again
        if "peak_gpu_memory_gb" in r:
            row["peak_gpu_memory_gb_both"] = r["peak_gpu_memory_gb"]
        result["rows"].append(row)
        print(f"   stylegan2-ada {setting} batch {b} {precision}: ours {row['ours_s_per_kimg']:.2f} s/kimg"
              + (f", theirs ({row['authors_precision']}) {row['authors_s_per_kimg']:.2f} s/kimg, ours "
                 f"{row['ratio']:.2f}x theirs" if "ratio" in row else f"; theirs: {row['error']}"), flush=True)
        save()
    if peer.error:
        result["error"] = peer.error


def time_stylegan3(peer, device: str, result: dict, save) -> None:
    """StyleGAN3-T, the authors' stylegan3-t configuration: their G and D (and copies with their float16
    layers), ours with their weights through our importer; G forward and the main phase of a training step."""
    from bench_stylegan3 import DEFAULT, build_pair, d_kwargs, g_kwargs, train_step

    cuda = torch.device(device).type == "cuda"
    res, widths, fwd_batch, train_batch, reps = (256, DEFAULT, *SG3_SIZES["cuda"]) if cuda else \
        (32, SMOKE3, *SG3_SIZES["cpu"])
    gk, dk = g_kwargs("t", res, widths), d_kwargs(res, widths)
    result.update(config=dict(arch="stylegan3-t", resolution=res, **widths, mapping_layers=2, conv_clamp=256),
                  precision="tf32" if cuda else "fp32",
                  authors_fp16="their default float16 layers (num_fp16_res 4); ours has none, so ours stays "
                               + ("tf32" if cuda else "fp32"))
    (oG, oD), (tG, tD) = build_pair(peer, "t", res, widths, with_d=True)
    tG16 = peer.sg3.Generator(**{**gk, "num_fp16_res": 4})
    tG16.load_state_dict(tG.state_dict())
    tD16 = peer.sg2.Discriminator(**{**dk, "num_fp16_res": 4})
    tD16.load_state_dict(tD.state_dict())
    oG, oD, tG, tD, tG16, tD16 = (m.to(device) for m in (oG, oD, tG, tD, tG16, tD16))
    gen = torch.Generator().manual_seed(1)
    z = torch.randn(fwd_batch, gk["z_dim"], generator=gen).to(device)
    c = torch.zeros(fwd_batch, 0, device=device)
    with torch.no_grad(), tf32(False):
        ours, theirs, theirs16 = oG.eval()(z, None), tG.eval()(z, c), tG16.eval()(z, c)
    scale = float(theirs.abs().max())
    result["max_rel_diff_vs_authors"] = float((ours - theirs).abs().max()) / scale
    result["max_rel_diff_vs_authors_fp16"] = float((ours - theirs16.float()).abs().max()) / scale
    del ours, theirs, theirs16

    def forward_times(b: int) -> list[float]:
        zb, cb = z[:b], c[:b]

        def forward(G, cc):
            def fn():
                with torch.no_grad():
                    return G(zb, cc)
            return fn
        with tf32(cuda):
            return interleaved_median_seconds([forward(oG, None), forward(tG, cb), forward(tG16, cb)], warmup=1,
                                              reps=reps, device=device)
    if DEADLINE.left() < _need("stylegan3 step", device):
        result["forward"] = dict(skipped="time")
    else:
        b, t = halving_on_oom(forward_times, fwd_batch, result, "forward")
        result["forward"] = dict(batch=b, reps=reps, ours_img_s=b / t[0], authors_img_s=b / t[1], ratio=t[1] / t[0],
                                 authors_fp16_img_s=b / t[2], ratio_vs_authors_fp16=t[2] / t[0])
        print(f"   stylegan3-t {res}² G forward batch {b}: ours {b / t[0]:.1f} img/s, theirs {b / t[1]:.1f} "
              f"(their fp16 {b / t[2]:.1f}); ours {t[1] / t[0]:.2f}x theirs", flush=True)
    save()
    if DEADLINE.left() < _need("stylegan3 step", device):
        result["train"] = dict(skipped="time")
        return
    gen = torch.Generator().manual_seed(2)
    zt = torch.randn(train_batch, gk["z_dim"], generator=gen).to(device)
    real = torch.randn(train_batch, 3, res, res, generator=gen).clamp(-1, 1).to(device)
    ct = torch.zeros(train_batch, 0, device=device)

    def train_times(b: int) -> list[float]:
        zb, rb, cb = zt[:b], real[:b], ct[:b]
        with tf32(cuda):
            return interleaved_median_seconds([lambda: train_step(oG, oD, zb, rb, None),
                                               lambda: train_step(tG, tD, zb, rb, cb),
                                               lambda: train_step(tG16, tD16, zb, rb, cb)],
                                              warmup=1, reps=reps, device=device)
    b, t = halving_on_oom(train_times, train_batch, result, "train")
    result["train"] = dict(batch=b, reps=reps, what="main phase (G pass + D pass), no optimizer",
                           ours_s_per_img=t[0] / b, authors_s_per_img=t[1] / b, ratio=t[1] / t[0],
                           authors_fp16_s_per_img=t[2] / b, ratio_vs_authors_fp16=t[2] / t[0])
    if cuda:
        result["peak_gpu_memory_gb_all"] = torch.cuda.max_memory_allocated() / 2 ** 30
    print(f"   stylegan3-t {res}² training main phase batch {b}: ours {t[0] / b:.4f} s/img, theirs {t[1] / b:.4f} "
          f"(their fp16 {t[2] / b:.4f}); ours {t[1] / t[0]:.2f}x theirs", flush=True)


def halving_on_oom(measure, batch: int, result: dict, what: str) -> tuple[int, list[float]]:
    """``(batch, measure(batch))``, the batch halved (down to 4, the discriminator's minibatch-std group) each
    time the GPU runs out of memory; each such time is recorded under ``out_of_memory``."""
    while True:
        try:
            return batch, measure(batch)
        except torch.cuda.OutOfMemoryError:
            if batch // 2 < 4:
                raise
            result.setdefault("out_of_memory", []).append(f"{what} at batch {batch}")
        gc.collect()  # outside the except clause: its traceback no longer holds the tensors
        torch.cuda.empty_cache()
        batch //= 2


def stop_process(proc: subprocess.Popen) -> None:
    """SIGTERM first, which a child turns into SystemExit (:func:`exit_on_sigterm`): torch's extension build then
    removes its lock file on the way out (a lock left behind would make the next build wait for ever); SIGKILL
    after 10 s."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def build_tools() -> dict:
    """Where torch.utils.cpp_extension will find ninja (on PATH; a venv's own, next to this Python, is put on
    PATH here, as activating the venv would), nvcc, and the CUDA libraries' headers that torch's ATen/cuda
    headers include (cusparse.h, cublas_v2.h, ...): where the toolkit has only the compiler, the headers that
    torch's CUDA wheels bring along (site-packages/nvidia/*/include) are put on CPLUS_INCLUDE_PATH, which g++
    and nvcc search after the toolkit's own include folder (as -isystem), so the toolkit's headers still win."""
    here = Path(sys.executable).parent
    if shutil.which("ninja") is None and (here / "ninja").is_file():
        os.environ["PATH"] = str(here) + os.pathsep + os.environ.get("PATH", "")
    from torch.utils.cpp_extension import CUDA_HOME

    nvcc = Path(CUDA_HOME) / "bin" / "nvcc" if CUDA_HOME else None
    tools = dict(ninja=shutil.which("ninja"), nvcc=str(nvcc) if nvcc and nvcc.is_file() else shutil.which("nvcc"))
    toolkit = Path(CUDA_HOME) / "include" if CUDA_HOME else None
    if toolkit is not None and (toolkit / "cusparse.h").is_file():
        tools["cusparse.h"] = str(toolkit / "cusparse.h")
    else:
        site = Path(torch.__file__).resolve().parent.parent
        extra = [p for p in sorted(site.glob("nvidia/*/include")) if p.is_dir()]
        found = [p / "cusparse.h" for p in extra if (p / "cusparse.h").is_file()]
        tools["cusparse.h"] = str(found[0]) if found else None
        if extra:
            os.environ["CPLUS_INCLUDE_PATH"] = os.pathsep.join(
                [*filter(None, [os.environ.get("CPLUS_INCLUDE_PATH")]), *map(str, extra)])
            tools["CPLUS_INCLUDE_PATH"] = os.environ["CPLUS_INCLUDE_PATH"]
    return tools


def exit_on_sigterm() -> None:
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))


class BackgroundBuilds:
    """Their operations compiled in background processes (one per checkout) while the other parts run."""

    def __init__(self, roots: dict, folder: Path):
        self.folder, self.procs, self.started = folder, {}, time.perf_counter()
        for side, root in roots.items():
            with open(self.log(side), "w") as log:
                self.procs[side] = subprocess.Popen(
                    [sys.executable, __file__, "--child", f"build:{side}", "--child-root", str(root),
                     "--child-out", str(self.record(side))], stdout=log, stderr=subprocess.STDOUT)

    def record(self, side: str) -> Path:
        return self.folder / f"build-{side}.json"

    def log(self, side: str) -> Path:
        return self.folder / f"build-{side}.log"

    def wait(self, side: str) -> dict:
        """Wait for ``side``'s build, as long as the time left still holds ``side``'s timing after it: when it
        ended, or why it has no record. A build stopped here leaves a record that sends the timing process to
        their reference implementations instead of building again."""
        proc = self.procs.get(side)
        if proc is None:
            return {}
        try:
            proc.wait(timeout=max(1.0, DEADLINE.left() - PEER_NEEDS[side]))
        except subprocess.TimeoutExpired:
            stop_process(proc)
            if not self.record(side).is_file():
                why = "the build was stopped: it would have left no time to time their code"
                _write(self.record(side), dict(error=why, ops={name: dict(built=False, error=why)
                                                                for name in PEER_OPS[side]}))
            return dict(stopped="time", ended_after_s=time.perf_counter() - self.started)
        info = dict(returncode=proc.returncode, ended_after_s=time.perf_counter() - self.started)
        if proc.returncode:
            info["log_tail"] = self.log(side).read_text(errors="replace")[-2000:]
        return info

    def stop(self) -> None:
        for proc in self.procs.values():
            stop_process(proc)


def peer(roots: dict, device: str, builds: BackgroundBuilds | None, folder: Path) -> dict:
    """Part "peer": each checkout's process (:func:`child_time`; its lines printed as it goes), stopped at the
    deadline. This process first gives back the GPU memory its allocator keeps (part bench's config F in fp32
    leaves tens of GB cached), so that the children have the whole GPU."""
    out: dict = {}
    if torch.device(device).type == "cuda":
        gc.collect()
        torch.cuda.empty_cache()
        out["gpu_memory_reserved_here_gb"] = torch.cuda.memory_reserved() / 2 ** 30
    for side, root in roots.items():
        left = DEADLINE.left()
        if left < _need(side, device):
            out[side] = dict(skipped="time", seconds_left=left)
            continue
        build = builds.wait(side) if builds else {}
        record, child_out = (builds.record(side) if builds else None), folder / f"time-{side}.json"
        cmd = [sys.executable, __file__, "--child", f"time:{side}", "--child-root", str(root), "--child-out",
               str(child_out), "--device", device, "--budget", str(DEADLINE.left())]
        if record is not None:
            cmd += ["--child-build", str(record)]
        compiling = [s for s, p in (builds.procs.items() if builds else ()) if p.poll() is None]
        proc = subprocess.Popen(cmd)
        try:
            rc, stopped = proc.wait(timeout=max(1.0, DEADLINE.left())), None
        except subprocess.TimeoutExpired:
            stop_process(proc)
            rc, stopped = None, "time"
        result = json.loads(child_out.read_text()) if child_out.is_file() else {}
        if build:
            result["background_build_process"] = build
        if compiling:  # their other checkout's operations, compiling on the CPU while this one was timed
            result["builds_still_running_meanwhile"] = compiling
        if stopped:
            result["stopped"] = stopped
        if rc:
            result["error"] = result.get("error") or f"exit status {rc} (its output is above)"
        out[side] = result
    failed = [side for side in roots if out[side].get("error") or out[side].get("stopped")]
    return dict(ok=not failed, failed=failed, **out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--json", default="gpu-check.json", help="where to write the results")
    ap.add_argument("--steps", type=int, default=150, help="mixed-precision training steps")
    ap.add_argument("--reps", type=int, default=3, help="timed repetitions per benchmark of part bench")
    ap.add_argument("--device", default="cuda", help="cuda, or cpu for a smoke test of the parts' code")
    ap.add_argument("--skip", default="",
                    help="comma-separated parts to leave out: tests,train,compile,nccl,bench,peer")
    ap.add_argument("--peer", default=None, metavar="PATH", help="a checkout of the authors' stylegan2-ada-pytorch")
    ap.add_argument("--peer3", default=None, metavar="PATH", help="a checkout of the authors' stylegan3")
    ap.add_argument("--budget", type=float, default=BUDGET_S, help="seconds the whole run may take")
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--child-root", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--child-out", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--child-build", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    global DEADLINE
    DEADLINE = Deadline(args.budget)
    if args.child:  # one of the peer part's processes
        exit_on_sigterm()
        what, side = args.child.split(":")
        root, out = Path(args.child_root), Path(args.child_out)
        if what == "build":
            child_build(side, root, out)
        else:
            child_time(side, root, args.device, out, Path(args.child_build) if args.child_build else None)
        return
    # A wrong checkout ends the run here, with one error line and exit status 2, before anything runs.
    from bench_stylegan3 import check_peer

    roots = {}
    if args.peer is not None:
        roots["stylegan2-ada"] = check_peer_path(args.peer)
    if args.peer3 is not None:
        roots["stylegan3"] = check_peer(args.peer3, "--peer3")
    skip = set(filter(None, args.skip.split(",")))
    if "peer" in skip:
        roots = {}
    results: dict = dict(torch=torch.__version__, python=platform.python_version(), cuda=torch.cuda.is_available(),
                         budget_s=args.budget, peers={k: str(v) for k, v in roots.items()})
    missing = {side: [m for m in PEER_REQUIRES[side] if importlib.util.find_spec(m) is None] for side in roots}
    missing = {side: m for side, m in missing.items() if m}
    for side, m in missing.items():
        print(f"warning: {'--peer' if side == 'stylegan2-ada' else '--peer3'} {roots[side]}: their code imports "
              f"{', '.join(m)}, which {sys.executable} lacks (pip install {' '.join(m)}); part peer will record "
              "the error", file=sys.stderr, flush=True)
    if missing:
        results["peer_missing_packages"] = missing
    start = time.perf_counter()
    builds = None
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as tmp:
        folder = Path(tmp)
        if args.device == "cpu":  # a smoke test of the parts' code
            parts = [("train", fp16_training, (args.steps, "cpu")), ("nccl", nccl, ("cpu",)),
                     ("compile", compile_generator, ("cpu",))]
            if roots:
                parts.append(("peer", peer, (roots, "cpu", None, folder)))
            needs = {}
        elif not torch.cuda.is_available():
            print("gpu-check: no CUDA device on this machine; running the GPU-marked tests (they skip) only")
            parts, needs = [("tests", gpu_tests, ())], {}
        else:
            p = torch.cuda.get_device_properties(0)
            results.update(device=torch.cuda.get_device_name(0), capability=f"{p.major}.{p.minor}",
                           memory_gb=p.total_memory / 2 ** 30, cuda_version=torch.version.cuda)
            print(f"gpu-check on {results['device']} (compute capability {results['capability']}, "
                  f"{results['memory_gb']:.0f} GB), torch {torch.__version__}, CUDA {torch.version.cuda}; "
                  f"budget {args.budget:.0f} s", flush=True)
            if roots:  # their CUDA operations compile while the other parts run
                results["build_tools"] = tools = build_tools()
                if not all(tools.values()):
                    print(f"warning: {', '.join(k for k, v in tools.items() if not v)} not found: the authors' CUDA "
                          "operations will not build, and their reference implementations will be timed",
                          file=sys.stderr, flush=True)
                builds = BackgroundBuilds(roots, folder)
            parts = [("tests", gpu_tests, ()), ("train", fp16_training, (args.steps,)),
                     ("compile", compile_generator, ()), ("nccl", nccl, ()), ("bench", benchmarks, (32, 64, args.reps))]
            if roots:
                parts.append(("peer", peer, (roots, "cuda", builds, folder)))
            needs = NEEDS
        try:
            for name, fn, fargs in parts:
                if name not in skip:
                    part(results, name, fn, *fargs, need=needs.get(name, 0))
                    Path(args.json).write_text(json.dumps(results, indent=2, default=str))  # kept if stopped later
        finally:
            if builds is not None:
                builds.stop()
    results["total_seconds"] = time.perf_counter() - start
    failed = [k for k, v in results.items() if isinstance(v, dict) and not v.get("ok", True)]
    skipped = [k for k, v in results.items() if isinstance(v, dict) and v.get("skipped")]
    skipped += [f"peer: {side}" for side in roots if isinstance(results.get("peer", {}).get(side), dict)
                and results["peer"][side].get("skipped")]
    results.update(failed=failed, skipped=skipped)
    Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    print(f"gpu-check: {'all parts passed' if not failed else 'FAILED: ' + ', '.join(failed)}"
          f"{'; skipped for time: ' + ', '.join(skipped) if skipped else ''}; "
          f"{results['total_seconds']:.0f} s; wrote {args.json}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
