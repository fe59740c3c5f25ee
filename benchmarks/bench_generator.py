"""Generator inference speed: images/s, the share of the machine's measured peak FLOP rate, and the share
G's convolutions alone reach (the ceiling: common.convolution_replay, timed interleaved with G).

Settings: a small config (res 32, z = w = 512, 8 mapping layers, cbase 8192,
cmax 256, batch 8) and StyleGAN2 config F at 256² (batch 4). Both modulated-convolution executions are timed.
With `--peer PATH` (a checkout of the authors' stylegan2-ada-pytorch) their Generator, built with the same
architecture in float32, is timed too, interleaved with each of our rows at the same batch and threads, and our
speed is printed as a multiple of theirs. Without a peer no ratio is printed: only figures taken in the same run
are compared. Run with `make bench` (or `python benchmarks/bench_generator.py --threads 2 --reps 5 --json out.json`).
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from common import (Peer, check_peer_path, convolution_replay, count_flops, fmt_vs,  # noqa: E402
                    interleaved_median_seconds, load_peer, measured_peak_flops, setup_threads, tf32)

from stylegan.presets import make_config  # noqa: E402
from stylegan.networks import build_networks  # noqa: E402

SETTINGS = {
    "small": dict(resolution=32, cbase=8192, cmax=256, batch=8),
    "config-f-256": dict(resolution=256, cbase=32768, cmax=512, batch=4),
    "tiny": dict(resolution=8, cbase=512, cmax=32, batch=4),  # a smoke test of the script, not a benchmark
}
#: What `make bench` measures.
DEFAULT_SETTINGS = ("small", "config-f-256")


def bench_generator(name: str, reps: int, device: str, peak: float, batch: int | None = None,
                    peer: Peer | None = None) -> list[dict]:
    """G forward without gradients in three variants: float32 with each modulated-convolution execution, and
    the authors' mixed precision (the 4 highest resolutions in reduced precision with conv clamp 256): bfloat16
    with the shared-weight execution on the CPU, float16 with the grouped one on CUDA. ``batch`` overrides the
    setting's (e.g. 64 on a GPU). ``peer``: the authors' Generator in float32
    (their own default execution), timed interleaved with each variant."""
    s = dict(SETTINGS[name])
    s["batch"] = batch or s["batch"]
    cpu = torch.device(device).type == "cpu"
    variants = [("fp32", True), ("fp32", False)] + ([("bf16", False)] if cpu else [("fp16", True)])
    rows = []
    reference = None  # float32 images of the same network and latents, for the effect of reduced precision
    with tf32(False):  # float32 is true float32 on CUDA too
        theirs = peer.attempt(lambda: _peer_step(peer, s, device), f"setting {name}") if peer else None
        for precision, fused in variants:
            row = _bench_variant(s, name, precision, fused, reps, device, peak, reference, theirs)
            images = row.pop("_images")
            reference = images if reference is None else reference
            rows.append(row)
    return rows


def _config(s: dict, precision: str):
    return make_config("stylegan2", resolution=s["resolution"], cbase=s["cbase"], cmax=s["cmax"],
                       num_fp16_res=0 if precision == "fp32" else 4, conv_clamp=None if precision == "fp32" else "keep")


def _latents(s: dict, z_dim: int, device: str) -> torch.Tensor:
    return torch.randn(s["batch"], z_dim, generator=torch.Generator().manual_seed(0)).to(device)  # same in all


def _peer_step(peer: Peer, s: dict, device: str):
    """The authors' G forward without gradients for the setting ``s``: their Generator with our float32
    architecture, in evaluation mode, on our latents; called once here, so that code that does not run on this
    machine fails before anything is timed."""
    G = peer.generator(_config(s, "fp32"), device).eval()
    z = _latents(s, G.z_dim, device)
    c = torch.zeros(s["batch"], G.c_dim, device=device)

    def step():
        with torch.no_grad():
            return G(z, c, noise_mode="const")
    step()
    return step


def _bench_variant(s: dict, name: str, precision: str, fused: bool, reps: int, device: str, peak: float,
                   reference: torch.Tensor | None, theirs=None) -> dict:
    """One variant of :func:`bench_generator` (its images are returned under ``_images``); ``theirs``: the
    authors' G forward, timed interleaved with ours."""
    config = _config(s, precision)
    G = build_networks(config, seed=0)["G_ema"].to(device).eval()  # the same weights in every variant
    if precision == "bf16":
        G.synthesis.cpu_half_dtype = torch.bfloat16
    z = _latents(s, G.z_dim, device)

    def step():
        with torch.no_grad():
            return G(z, noise_mode="const", fused=fused)
    flops = count_flops(step)
    sec, conv_sec, *their_sec = interleaved_median_seconds([step, convolution_replay(step)]
                                                           + ([theirs] if theirs else []),
                                                           warmup=1, reps=reps, device=device)
    ips = s["batch"] / sec
    effect = {}
    images = step().float()
    if precision != "fp32":  # the effect on outputs: the same network and latents in float32
        d = (images - reference).abs()
        effect = dict(max_abs_diff_vs_fp32=float(d.max()), mean_abs_diff_vs_fp32=float(d.mean()),
                      image_range=float(reference.abs().max()))
    if their_sec:  # measured in this run, interleaved with ours
        effect.update(authors_precision="fp32", authors_seconds=their_sec[0],
                      authors_images_per_s=s["batch"] / their_sec[0], vs_authors=their_sec[0] / sec)
    return dict(setting=name, precision=precision, _images=images,
                what=f"G forward {precision} ({'grouped' if fused else 'shared-weight'} modconv)",
                batch=s["batch"], seconds=sec, images_per_s=ips,
                gflop_per_image=flops / s["batch"] / 1e9, gflops=flops / sec / 1e9,
                peak_share=flops / sec / peak, conv_alone_seconds=conv_sec,
                conv_alone_peak_share=flops / conv_sec / peak, of_conv_alone=conv_sec / sec, **effect)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--settings", default=",".join(DEFAULT_SETTINGS),
                    help=f"comma-separated, of {', '.join(SETTINGS)} (tiny: a smoke test)")
    ap.add_argument("--batch", type=int, default=None, help="override the settings' batch (e.g. 64 on a GPU)")
    ap.add_argument("--json", default="bench-generator.json", help="also write the results here ('' to skip)")
    ap.add_argument("--peer", default=None, metavar="PATH",
                    help="a checkout of the authors' stylegan2-ada-pytorch: time it in the same run and print ratios")
    args = ap.parse_args()
    names = args.settings.split(",")
    unknown = [x for x in names if x not in SETTINGS]
    if unknown:
        ap.error(f"--settings: unknown {', '.join(unknown)}; known: {', '.join(SETTINGS)}")
    peer = load_peer(check_peer_path(args.peer))  # a wrong path ends here, before anything is measured
    setup_threads(args.threads)
    peak = measured_peak_flops(device=args.device)
    print(f"machine: {platform.processor() or platform.machine()}, torch {torch.__version__}, "
          f"{args.threads} threads, device {args.device}")
    print(f"measured peak (float32 GEMM/conv): {peak / 1e9:.1f} GFLOP/s")
    rows = []
    columns = None  # the authors' columns: decided once the first setting has run (their code may fail in it)
    for name in names:
        for r in bench_generator(name, args.reps, args.device, peak, args.batch, peer):
            rows.append(r)
            if columns is None:
                columns = bool(peer and not peer.error)
                if columns:
                    print(f"peer: the authors' Generator from {peer.root}, float32, timed interleaved with each "
                          "of our rows")
                print(f"{'setting':<14}{'what':<46}{'batch':>6}{'img/s':>9}"
                      + (f"{'authors':>9}{'x authors':>10}" if columns else "")
                      + f"{'GFLOP/img':>11}{'GFLOP/s':>9}{'% peak':>8}{'ceiling':>8}{'of ceil':>8}")
            theirs = ""
            if "vs_authors" in r:
                authors = r["authors_images_per_s"]
                theirs = f"{authors:>9.2f}{fmt_vs(r['images_per_s'], authors, True, 10)}"
            elif columns:
                theirs = f"{'-':>9}{'-':>10}"
            print(f"{r['setting']:<14}{r['what']:<46}{r['batch']:>6}{r['images_per_s']:>9.2f}{theirs}"
                  f"{r['gflop_per_image']:>11.2f}{r['gflops']:>9.1f}{100 * r['peak_share']:>7.1f}%"
                  f"{100 * r['conv_alone_peak_share']:>7.1f}%{100 * r['of_conv_alone']:>7.1f}%", flush=True)
            if "mean_abs_diff_vs_fp32" in r:
                print(f"{'':<14}  {r['precision']} vs fp32 images: mean |diff| {r['mean_abs_diff_vs_fp32']:.4f}, "
                      f"max |diff| {r['max_abs_diff_vs_fp32']:.4f} (image values within +-{r['image_range']:.2f})")
    if args.json:
        result = dict(peak_flops=peak, threads=args.threads, rows=rows)
        if peer:
            result.update(peer=str(peer.root), peer_error=peer.error)
        Path(args.json).write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
