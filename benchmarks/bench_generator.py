"""Generator inference speed: images/s and the share of the machine's measured peak FLOP rate.

Settings are those of the speed issue: a small config (res 32, z = w = 512, 8 mapping layers, cbase 8192,
cmax 256, batch 8) and StyleGAN2 config F at 256² (batch 4). Both modulated-convolution executions are timed.
"2x needs" is the share of the measured peak that twice the authors' images/s would take with the FLOPs counted.
Run with `make bench` (or `python benchmarks/bench_generator.py --threads 2 --reps 5 --json out.json`).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import (count_flops, fmt_ratio, fmt_share, measured_peak_flops, median_seconds,  # noqa: E402
                    setup_threads, tf32)

from stylegan.presets import make_config  # noqa: E402
from stylegan.networks import build_networks  # noqa: E402

SETTINGS = {
    "small": dict(resolution=32, cbase=8192, cmax=256, batch=8),
    "config-f-256": dict(resolution=256, cbase=32768, cmax=512, batch=4),
}
#: The authors' stylegan2-ada-pytorch G forward on this machine kind (2 threads, float32), from the speed issue.
AUTHORS_IMG_S = {"small": 33.0, "config-f-256": 1.5}


def bench_generator(name: str, reps: int, device: str, peak: float, batch: int | None = None) -> list[dict]:
    """G forward without gradients in three variants: float32 with each modulated-convolution execution, and
    the authors' mixed precision (the 4 highest resolutions in reduced precision with conv clamp 256): bfloat16
    with the shared-weight execution on the CPU, float16 with the grouped one on CUDA. ``batch`` overrides the
    setting's (the GPU figure of the speed issue is at batch 64)."""
    s = dict(SETTINGS[name])
    s["batch"] = batch or s["batch"]
    cpu = torch.device(device).type == "cpu"
    variants = [("fp32", True), ("fp32", False)] + ([("bf16", False)] if cpu else [("fp16", True)])
    rows = []
    reference = None  # float32 images of the same network and latents, for the effect of reduced precision
    with tf32(False):  # float32 is true float32 on CUDA too
        for precision, fused in variants:
            row = _bench_variant(s, name, precision, fused, reps, device, peak, cpu, reference)
            images = row.pop("_images")
            reference = images if reference is None else reference
            rows.append(row)
    return rows


def _bench_variant(s: dict, name: str, precision: str, fused: bool, reps: int, device: str, peak: float,
                   cpu: bool, reference: torch.Tensor | None) -> dict:
    """One variant of :func:`bench_generator` (its images are returned under ``_images``)."""
    config = make_config("stylegan2", resolution=s["resolution"], cbase=s["cbase"], cmax=s["cmax"],
                         num_fp16_res=0 if precision == "fp32" else 4,
                         conv_clamp=None if precision == "fp32" else "keep")
    G = build_networks(config, seed=0)["G_ema"].to(device).eval()  # the same weights in every variant
    if precision == "bf16":
        G.synthesis.cpu_half_dtype = torch.bfloat16
    z = torch.randn(s["batch"], G.z_dim, generator=torch.Generator().manual_seed(0)).to(device)  # same in all

    def step():
        with torch.no_grad():
            return G(z, noise_mode="const", fused=fused)
    flops = count_flops(step)
    sec = median_seconds(step, warmup=1, reps=reps, device=device)
    ips = s["batch"] / sec
    effect = {}
    images = step().float()
    if precision != "fp32":  # the effect on outputs: the same network and latents in float32
        d = (images - reference).abs()
        effect = dict(max_abs_diff_vs_fp32=float(d.max()), mean_abs_diff_vs_fp32=float(d.mean()),
                      image_range=float(reference.abs().max()))
    authors = AUTHORS_IMG_S[name] if cpu else None  # the authors' figures are for this CPU machine kind
    return dict(setting=name, precision=precision, _images=images,
                what=f"G forward {precision} ({'grouped' if fused else 'shared-weight'} modconv)",
                batch=s["batch"], seconds=sec, images_per_s=ips, vs_authors=ips / authors if authors else None,
                gflop_per_image=flops / s["batch"] / 1e9, gflops=flops / sec / 1e9,
                peak_share=flops / sec / peak,
                # the share of the measured peak that twice the authors' images/s would take
                two_x_authors_peak_share=flops / s["batch"] * 2 * authors / peak if authors else None,
                **effect)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--settings", default=",".join(SETTINGS))
    ap.add_argument("--batch", type=int, default=None, help="override the settings' batch (e.g. 64 on a GPU)")
    ap.add_argument("--json", default="bench-generator.json", help="also write the results here ('' to skip)")
    args = ap.parse_args()
    setup_threads(args.threads)
    peak = measured_peak_flops(device=args.device)
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.threads} threads, device {args.device}")
    print(f"measured peak (float32 GEMM/conv): {peak / 1e9:.1f} GFLOP/s")
    rows = []
    print(f"{'setting':<14}{'what':<46}{'batch':>6}{'img/s':>9}{'x authors':>10}{'GFLOP/img':>11}{'GFLOP/s':>9}"
          f"{'% peak':>8}{'2x needs':>9}")
    for name in args.settings.split(","):
        for r in bench_generator(name, args.reps, args.device, peak, args.batch):
            rows.append(r)
            print(f"{r['setting']:<14}{r['what']:<46}{r['batch']:>6}{r['images_per_s']:>9.2f}"
                  f"{fmt_ratio(r['vs_authors'])}{r['gflop_per_image']:>11.2f}{r['gflops']:>9.1f}"
                  f"{100 * r['peak_share']:>7.1f}%{fmt_share(r['two_x_authors_peak_share'])}", flush=True)
            if "mean_abs_diff_vs_fp32" in r:
                print(f"{'':<14}  {r['precision']} vs fp32 images: mean |diff| {r['mean_abs_diff_vs_fp32']:.4f}, max |diff| "
                      f"{r['max_abs_diff_vs_fp32']:.4f} (image values within +-{r['image_range']:.2f})")
    if args.json:
        Path(args.json).write_text(json.dumps(dict(peak_flops=peak, threads=args.threads, rows=rows), indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
