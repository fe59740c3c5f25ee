"""Training speed: seconds per image of each phase and the amortized training throughput (img/s, s/kimg),
with the share of the machine's measured peak FLOP rate and the peak resident memory.

Networks only (no augmentation), float32 or mixed precision. Phases as in the speed issue: the main step
(G main + D main, logistic loss), the R1 step (one D regularization pass over the full batch), the path-length
step (one G pass over half the batch). With lazy intervals 16 (R1) and 4 (PL), one training step costs
main + R1/16 + PL/4 (regularization passes plus their optimizer steps). Run with
`make bench` or `python benchmarks/bench_training.py --settings small`.

Per phase it prints the FLOPs per image it counted (convolutions, every derivative of them, matrix products,
also through R1's and path length's double backward), the achieved rate, its share of the measured peak, and
"2x needs": the share of the peak that twice the authors' speed would take with that many FLOPs (above 100 %,
no implementation of these FLOPs can reach it on this machine).
"""
from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from common import (count_flops, fmt_ratio, fmt_share, measured_peak_flops, median_seconds,  # noqa: E402
                    setup_threads, tf32)

from stylegan.training.loop import Trainer  # noqa: E402
from stylegan.training.options import TrainingOptions  # noqa: E402

SETTINGS = {
    "small": dict(resolution=32, cbase=8192, cmax=256, batch=8),
    "config-f-256": dict(resolution=256, cbase=32768, cmax=512, batch=4),
}
#: The authors' stylegan2-ada-pytorch on this machine kind (2-core AMD EPYC, 2 threads, float32), from the
#: speed issue: seconds per image of the main, R1 and path-length steps.
AUTHORS = {"small": dict(main=0.11, r1=0.07, pl=0.06), "config-f-256": dict(main=8.7, r1=5.4, pl=2.5)}
#: Precisions per device type: bf16 is the CPU's mixed precision, fp16 CUDA's; tf32 is float32 storage with
#: TensorFloat-32 matrix units on CUDA (fp32 there means true float32: TF32 off, also in cuDNN convolutions).
PRECISIONS = {"cpu": ("fp32", "bf16"), "cuda": ("fp32", "tf32", "fp16")}


def make_data(folder: Path, res: int, n: int = 8) -> Path:
    rng = np.random.RandomState(0)
    for i in range(n):
        Image.fromarray(rng.randint(0, 255, (res, res, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def rss_gb() -> float:
    """Current resident memory (Linux /proc), GB."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2 ** 30
    except OSError:
        return float("nan")


def bench(name: str, reps: int, device: str, peak: float, precision: str = "fp32", batch: int | None = None) -> dict:
    """``precision``: fp32, or the authors' mixed precision (the 4 highest resolutions in reduced precision
    with conv clamp 256, the rest float32): bf16 on the CPU, fp16 on CUDA. ``batch`` overrides the
    setting's (the GPU figures of the speed issue are at batch 32)."""
    s = SETTINGS[name]
    allowed = PRECISIONS[torch.device(device).type]
    if precision not in allowed:
        raise SystemExit(f"precision {precision!r} on {device}: expected one of {', '.join(allowed)}")
    n = batch or s["batch"]
    with tempfile.TemporaryDirectory() as tmp, tf32(precision == "tf32"):
        opts = TrainingOptions(outdir=tmp, data=str(make_data(Path(tmp), s["resolution"], n)), cbase=s["cbase"],
                               cmax=s["cmax"], batch=n, workers=0, device=device,
                               fp32=precision == "fp32", cpu_bf16=precision == "bf16", aug="noaug")
        t = Trainer(opts)
        for _ in range(2):
            t.step()  # warm-up (all phases run at batch index 0)
        real, _ = next(t.loader)
        real = real.to(t.device, torch.float32) / 127.5 - 1
        zd = t.G.z_dim

        def z():
            return torch.randn(n, zd, device=t.device)

        def main_step():
            t.G.requires_grad_(True); t.D.requires_grad_(False)
            t.opt_G.zero_grad(set_to_none=True); t.loss.g_main(z(), None); t.opt_G.step()
            t.G.requires_grad_(False); t.D.requires_grad_(True)
            t.opt_D.zero_grad(set_to_none=True); t.loss.d_main(real, None, z(), None); t.opt_D.step()

        def r1_step():
            t.G.requires_grad_(False); t.D.requires_grad_(True)
            t.opt_D.zero_grad(set_to_none=True); t.loss.d_r1(real, None, gain=16); t.opt_D.step()

        def pl_step():
            t.G.requires_grad_(True); t.D.requires_grad_(False)
            t.opt_G.zero_grad(set_to_none=True); t.loss.g_pl(z(), None, gain=4); t.opt_G.step()

        out = {"setting": name, "precision": precision, "batch": n}
        for label, fn in (("main", main_step), ("r1", r1_step), ("pl", pl_step)):
            flops = count_flops(fn)
            sec = median_seconds(fn, warmup=1, reps=reps, device=device)
            out[f"{label}_s_per_img"] = sec / n
            out[f"{label}_gflop_per_img"] = flops / n / 1e9
            out[f"{label}_gflops"] = flops / sec / 1e9
            out[f"{label}_peak_share"] = flops / sec / peak
            # The authors' figures are for this CPU machine kind; none are compared on another device.
            authors = AUTHORS[name][label] if torch.device(device).type == "cpu" else None
            out[f"{label}_vs_authors"] = authors / (sec / n) if authors else None
            # The share of the measured peak that twice the authors' speed would take with these FLOPs.
            out[f"{label}_2x_authors_peak_share"] = flops / n / (authors / 2) / peak if authors else None
        # Memory growth across iterations: resident memory after two rounds of every phase against after two
        # more. Freed memory is kept for reuse (cpu_memory.py), so the first rounds raise it to its steady
        # level (config F: reached in the second round); a leak would keep growing it.
        def training_rounds(k=2):
            for _ in range(k):
                main_step()
                r1_step()
                pl_step()
        training_rounds()
        rss_start = rss_gb()
        training_rounds()
        out["rss_growth_gb"] = rss_gb() - rss_start
        step = out["main_s_per_img"] + out["r1_s_per_img"] / 16 + out["pl_s_per_img"] / 4
        out["train_images_per_s"] = 1 / step
        out["train_s_per_kimg"] = 1000 * step
        out["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
        if torch.device(device).type == "cuda":
            out["peak_gpu_memory_gb"] = torch.cuda.max_memory_allocated() / 2 ** 30
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--settings", default=",".join(SETTINGS))
    ap.add_argument("--precision", default="fp32",
                    help="comma-separated: fp32, bf16 (CPU mixed precision); on CUDA fp32, tf32, fp16 (mixed)")
    ap.add_argument("--batch", type=int, default=None, help="override the settings' batch (e.g. 32 on a GPU)")
    ap.add_argument("--json", default="bench-training.json", help="also write the results here ('' to skip)")
    args = ap.parse_args()
    setup_threads(args.threads)
    peak = measured_peak_flops(device=args.device)
    print(f"measured peak (float32 GEMM/conv): {peak / 1e9:.1f} GFLOP/s; {args.threads} threads; device {args.device}")
    print(f"{'setting':<14}{'prec':<6}{'phase':<6}{'s/img':>9}{'x authors':>10}{'GFLOP/img':>10}{'GFLOP/s':>9}"
          f"{'%peak':>7}{'2x needs':>9}")
    rows = []
    for name in args.settings.split(","):
        for precision in args.precision.split(","):
            r = bench(name, args.reps, args.device, peak, precision, args.batch)
            rows.append(r)
            for ph in ("main", "r1", "pl"):
                print(f"{name:<14}{precision:<6}{ph:<6}{r[ph + '_s_per_img']:>9.4f}{fmt_ratio(r[ph + '_vs_authors'])}"
                      f"{r[ph + '_gflop_per_img']:>10.2f}{r[ph + '_gflops']:>9.1f}{100 * r[ph + '_peak_share']:>6.1f}%"
                      f"{fmt_share(r[ph + '_2x_authors_peak_share'])}")
            print(f"{'':<14}{precision:<6}training {r['train_images_per_s']:.2f} img/s, {r['train_s_per_kimg']:.0f} s/kimg "
                  f"(batch {r['batch']}); peak RSS {r['peak_rss_gb']:.2f} GB, growth over two rounds of phases "
                  f"{r['rss_growth_gb']:+.2f} GB"
                  + (f"; peak GPU memory {r['peak_gpu_memory_gb']:.2f} GB" if "peak_gpu_memory_gb" in r else ""),
                  flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(dict(peak_flops=peak, threads=args.threads, rows=rows), indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
