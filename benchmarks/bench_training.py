"""Training speed: seconds per image of each phase and the amortized training throughput (img/s, s/kimg),
with the share of the machine's measured peak FLOP rate and the peak resident memory.

Networks only (no augmentation), float32 or mixed precision. Phases: the main step
(G main + D main, logistic loss), the R1 step (one D regularization pass over the full batch), the path-length
step (one G pass over half the batch). With lazy intervals 16 (R1) and 4 (PL), one training step costs
main + R1/16 + PL/4 (regularization passes plus their optimizer steps). Run with
`make bench` or `python benchmarks/bench_training.py --settings small`.

Per phase it prints the FLOPs per image it counted (convolutions, every derivative of them, matrix products,
also through R1's and path length's double backward), the achieved rate and its share of the measured peak,
and the convolution ceiling: the share the phase would reach if everything but its convolutions were free (its
convolutions replayed alone, timed interleaved with it; common.convolution_replay), and our time as a share of
that.

With `--peer PATH` (a checkout of the authors' stylegan2-ada-pytorch) it also times their networks, built with
the same architecture in float32 (in fp16 rows: with their float16 layers at the 4 highest resolutions and
conv clamp 256), through their StyleGAN2Loss phases (main: Gmain + Dmain, R1: Dreg, path length: Greg),
interleaved with ours at the same batch and threads, and prints their s/img and our speed as a multiple of
theirs. Without a peer no ratio is printed: only figures taken in the same run are compared.
"""
from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch
from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))
from common import (Peer, check_peer_path, convolution_replay, count_flops, fmt_vs,  # noqa: E402
                    interleaved_seconds, load_peer, measured_peak_flops, setup_threads, tf32)

from stylegan.training.loop import Trainer  # noqa: E402
from stylegan.training.options import TrainingOptions  # noqa: E402

SETTINGS = {
    "small": dict(resolution=32, cbase=8192, cmax=256, batch=8),
    "config-f-256": dict(resolution=256, cbase=32768, cmax=512, batch=4),
    # The networks of `make demo` before the small-compute recipe, as the small-compute issue timed the authors'
    # loop on them: MNIST-like 32x32 grayscale, 64 channels at every resolution, 2 mapping layers, batch 16.
    "demo": dict(resolution=32, cbase=2048, cmax=64, batch=16, channels=1, map_depth=2),
    # The same at 128 and 256 channels: where bfloat16 starts to pay on a CPU (stylegan/cpu/precision.py).
    "demo-128": dict(resolution=32, cbase=4096, cmax=128, batch=16, channels=1, map_depth=2),
    "demo-256": dict(resolution=32, cbase=8192, cmax=256, batch=16, channels=1, map_depth=2),
    "tiny": dict(resolution=8, cbase=512, cmax=32, batch=4),  # a smoke test of the script, not a benchmark
    # The smallest that the authors' own networks run at (their discriminator's minibatch-std group of 4 and its
    # 4x4 epilogue want 32²): gpu_check.py's CPU smoke test of the side by side.
    "smoke-32": dict(resolution=32, cbase=512, cmax=32, batch=4),
}
#: What `make bench` measures.
DEFAULT_SETTINGS = ("small", "config-f-256")
#: Precisions per device type: bf16 is the CPU's mixed precision, fp16 CUDA's; tf32 is float32 storage with
#: TensorFloat-32 matrix units on CUDA (fp32 there means true float32: TF32 off, also in cuDNN convolutions).
PRECISIONS = {"cpu": ("fp32", "bf16"), "cuda": ("fp32", "tf32", "fp16")}


def make_data(folder: Path, res: int, n: int = 8, channels: int = 3) -> Path:
    rng = np.random.RandomState(0)
    for i in range(n):
        pixels = rng.randint(0, 255, (res, res, 3) if channels == 3 else (res, res), dtype=np.uint8)
        Image.fromarray(pixels).save(folder / f"{i}.png")
    return folder


def rss_gb() -> float:
    """Current resident memory (Linux /proc), GB."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2 ** 30
    except OSError:
        return float("nan")


def bench(name: str, reps: int, device: str, peak: float | None, precision: str = "fp32", batch: int | None = None,
          peer: Peer | None = None, peer_mixed: bool | None = None, ceiling: bool = True,
          phases: tuple[str, ...] = ("main", "r1", "pl")) -> dict:
    """``precision``: fp32, or the authors' mixed precision (the 4 highest resolutions in reduced precision
    with conv clamp 256, the rest float32): bf16 on the CPU, fp16 on CUDA. ``batch`` overrides the
    setting's (e.g. 32 on a GPU). ``peer``: the authors' code, timed phase by phase, interleaved with ours:
    in float32 (tf32: with TF32 on, as ours), or with ``peer_mixed`` (the default with fp16) in their mixed
    precision, float16 at the 4 highest resolutions with conv clamp 256 (their layers are float16 only).
    ``ceiling=False``: only the phases' times (ours and theirs), without the FLOP count, the convolution
    ceiling and the memory rounds (``peak`` is then unused). ``phases``: which of main, r1 and pl to time (the
    training throughput needs all three). Each pair of calls, ours and theirs, taken side by side gives one
    ratio: their median, least and greatest are kept (``*_vs_authors_pairs``)."""
    s = SETTINGS[name]
    allowed = PRECISIONS[torch.device(device).type]
    if precision not in allowed:
        raise SystemExit(f"precision {precision!r} on {device}: expected one of {', '.join(allowed)}")
    n = batch or s["batch"]
    with tempfile.TemporaryDirectory() as tmp, tf32(precision == "tf32"):
        opts = TrainingOptions(outdir=tmp, data=str(make_data(Path(tmp), s["resolution"], n, s.get("channels", 3))),
                               cbase=s["cbase"], cmax=s["cmax"], map_depth=s.get("map_depth"), batch=n, workers=0,
                               device=device,
                               # tf32: float32 networks (no float16 layers), TF32 on in the block above
                               fp32=precision in ("fp32", "tf32"), cpu_bf16=precision == "bf16", aug="noaug")
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

        mixed = precision == "fp16" if peer_mixed is None else peer_mixed
        theirs = peer.attempt(lambda: peer_phases(peer, t, real, n, mixed), f"setting {name}") if peer else None
        out = {"setting": name, "precision": precision, "batch": n, "reps": reps}
        if theirs:
            out["authors_precision"] = "fp16 (num_fp16_res 4, conv_clamp 256)" if mixed else \
                ("tf32" if precision == "tf32" else "fp32")
        for label, fn in (("main", main_step), ("r1", r1_step), ("pl", pl_step)):
            if label not in phases:
                continue
            fns = [fn] + ([convolution_replay(fn)] if ceiling else []) + ([theirs[label]] if theirs else [])
            times = interleaved_seconds(fns, warmup=1, reps=reps, device=device)
            sec, *rest = (statistics.median(ts) for ts in times)
            out[f"{label}_s_per_img"] = sec / n
            if theirs:
                pairs = [b / a for a, b in zip(times[0], times[-1])]  # theirs / ours, each pair side by side
                out[f"{label}_vs_authors_pairs"] = pairs
                out[f"{label}_vs_authors_pair_range"] = [statistics.median(pairs), min(pairs), max(pairs)]
            if ceiling:
                flops = count_flops(fn)
                conv_sec, *their_sec = rest
                out[f"{label}_gflop_per_img"] = flops / n / 1e9
                out[f"{label}_gflops"] = flops / sec / 1e9
                out[f"{label}_peak_share"] = flops / sec / peak
                out[f"{label}_conv_alone_s_per_img"] = conv_sec / n
                out[f"{label}_conv_alone_peak_share"] = flops / conv_sec / peak
                out[f"{label}_of_conv_alone"] = conv_sec / sec
            else:
                their_sec = rest
            if their_sec:  # measured in this run, interleaved with ours
                out[f"{label}_authors_s_per_img"] = their_sec[0] / n
                out[f"{label}_vs_authors"] = their_sec[0] / sec
        theirs = None  # their networks and optimizer state are not part of our memory figures below
        # Memory growth across iterations: resident memory after two rounds of every phase against after two
        # more. Freed memory is kept for reuse (cpu/memory.py), so the first rounds raise it to its steady
        # level (config F: reached in the second round); a leak would keep growing it.
        def training_rounds(k=2):
            for _ in range(k):
                main_step()
                r1_step()
                pl_step()
        out["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
        if set(phases) != {"main", "r1", "pl"}:
            return out  # the training throughput and the memory rounds need every phase
        if ceiling:
            training_rounds()
            rss_start = rss_gb()
            training_rounds()
            out["rss_growth_gb"] = rss_gb() - rss_start
        step = out["main_s_per_img"] + out["r1_s_per_img"] / 16 + out["pl_s_per_img"] / 4
        out["train_images_per_s"] = 1 / step
        out["train_s_per_kimg"] = 1000 * step
        if "main_authors_s_per_img" in out:
            their_step = out["main_authors_s_per_img"] + out["r1_authors_s_per_img"] / 16 \
                + out["pl_authors_s_per_img"] / 4
            out["authors_train_images_per_s"] = 1 / their_step
            out["train_vs_authors"] = their_step / step
        out["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
        if torch.device(device).type == "cuda":
            out["peak_gpu_memory_gb"] = torch.cuda.max_memory_allocated() / 2 ** 30
        return out


def peer_phases(peer: Peer, t: Trainer, real: torch.Tensor, n: int, mixed: bool = False) -> dict:
    """The authors' training phases for the networks of the trainer ``t``: their G and D with the same
    architecture (``mixed``: with their float16 layers, as in their paper configurations), their Adam settings
    (lr and betas adjusted for the lazy intervals), their StyleGAN2Loss with our recipe's R1 weight, path-length
    weight and style-mixing probability, and each phase run as their training loop runs it (only the phase's
    network trainable; gain: the phase's interval). Each function is called once here, so that code that does
    not run on this machine fails before anything is timed."""
    device = t.device
    fp16 = dict(num_fp16_res=4, conv_clamp=256) if mixed else {}
    G, D = peer.generator(t.config, device, **fp16), peer.discriminator(t.config, device, **fp16)
    recipe = t.recipe
    loss = peer.loss.StyleGAN2Loss(device=device, G_mapping=G.mapping, G_synthesis=G.synthesis, D=D,
                                   style_mixing_prob=recipe.style_mixing, r1_gamma=t.gamma,
                                   pl_weight=recipe.pl_weight)

    def adam(module, interval):
        c = interval / (interval + 1)
        return torch.optim.Adam(module.parameters(), lr=recipe.glr * c if module is G else recipe.dlr * c,
                                betas=(recipe.betas[0] ** c, recipe.betas[1] ** c), eps=1e-8)
    opt_G, opt_D = adam(G, recipe.pl_interval), adam(D, recipe.r1_interval)
    c = torch.zeros(n, G.c_dim, device=device)

    def phase(name, module, opt, gain):
        opt.zero_grad(set_to_none=True)
        module.requires_grad_(True)
        loss.accumulate_gradients(phase=name, real_img=real, real_c=c, gen_z=torch.randn(n, G.z_dim, device=device),
                                  gen_c=c, sync=True, gain=gain)
        module.requires_grad_(False)
        opt.step()

    def main_step():
        phase("Gmain", G, opt_G, 1)
        phase("Dmain", D, opt_D, 1)

    fns = dict(main=main_step, r1=lambda: phase("Dreg", D, opt_D, recipe.r1_interval),
               pl=lambda: phase("Greg", G, opt_G, recipe.pl_interval))
    for fn in fns.values():
        fn()
    return fns


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--settings", default=",".join(DEFAULT_SETTINGS),
                    help=f"comma-separated, of {', '.join(SETTINGS)} (tiny: a smoke test)")
    ap.add_argument("--precision", default="fp32",
                    help="comma-separated: fp32, bf16 (CPU mixed precision); on CUDA fp32, tf32, fp16 (mixed)")
    ap.add_argument("--batch", type=int, default=None, help="override the settings' batch (e.g. 32 on a GPU)")
    ap.add_argument("--json", default="bench-training.json", help="also write the results here ('' to skip)")
    ap.add_argument("--peer", default=None, metavar="PATH",
                    help="a checkout of the authors' stylegan2-ada-pytorch: time it in the same run and print ratios")
    ap.add_argument("--phases", default="main,r1,pl",
                    help="comma-separated phases to time (e.g. main alone, for many pairs at config F)")
    ap.add_argument("--no-ceiling", action="store_true",
                    help="time the phases only: no FLOP count, convolution ceiling or memory rounds")
    args = ap.parse_args()
    phases = tuple(args.phases.split(","))
    if not phases or set(phases) - {"main", "r1", "pl"}:
        ap.error(f"--phases: expected some of main, r1, pl; got {args.phases!r}")
    names = args.settings.split(",")
    unknown = [x for x in names if x not in SETTINGS]
    if unknown:
        ap.error(f"--settings: unknown {', '.join(unknown)}; known: {', '.join(SETTINGS)}")
    peer = load_peer(check_peer_path(args.peer))  # a wrong path ends here, before anything is measured
    setup_threads(args.threads)
    peak = measured_peak_flops(device=args.device)
    print(f"measured peak (float32 GEMM/conv): {peak / 1e9:.1f} GFLOP/s; {args.threads} threads; device {args.device}")
    rows = []
    columns = None  # the authors' columns: decided once the first setting has run (their code may fail in it)
    for name in names:
        for precision in args.precision.split(","):
            r = bench(name, args.reps, args.device, peak, precision, args.batch, peer, ceiling=not args.no_ceiling,
                      phases=phases)
            rows.append(r)
            if columns is None:
                columns = bool(peer and not peer.error)
                if columns:
                    print(f"peer: the authors' code from {peer.root}, float32 (fp16 rows: their float16 layers), "
                          "timed interleaved with ours")
                print(f"{'setting':<14}{'prec':<6}{'phase':<6}{'s/img':>9}"
                      + (f"{'authors':>9}{'x authors':>10}" if columns else "")
                      + f"{'GFLOP/img':>10}{'GFLOP/s':>9}{'%peak':>7}{'ceiling':>8}{'of ceil':>8}")
            vs = "main_vs_authors" in r
            for ph in phases:
                ours, authors = r[ph + "_s_per_img"], r.get(ph + "_authors_s_per_img")
                theirs = ""
                if vs:
                    theirs = f"{authors:>9.4f}{fmt_vs(ours, authors, False, 10)}"
                elif columns:
                    theirs = f"{'-':>9}{'-':>10}"
                ceil = (f"{r[ph + '_gflop_per_img']:>10.2f}{r[ph + '_gflops']:>9.1f}{100 * r[ph + '_peak_share']:>6.1f}%"
                        f"{100 * r[ph + '_conv_alone_peak_share']:>7.1f}%{100 * r[ph + '_of_conv_alone']:>7.1f}%"
                        if ph + "_gflops" in r else "")
                spread = r.get(ph + "_vs_authors_pair_range")
                pairs = (f"  pairs: {spread[0]:.2f}x median, {spread[1]:.2f}-{spread[2]:.2f}x over {r['reps']}"
                         if spread else "")
                print(f"{name:<14}{precision:<6}{ph:<6}{ours:>9.4f}{theirs}{ceil}{pairs}")
            if "train_images_per_s" not in r:
                continue
            print(f"{'':<14}{precision:<6}training {r['train_images_per_s']:.2f} img/s, "
                  f"{r['train_s_per_kimg']:.0f} s/kimg (batch {r['batch']})"
                  + (f", authors {r['authors_precision']} {r['authors_train_images_per_s']:.2f} img/s "
                     f"({r['train_vs_authors']:.2f}x)" if vs else "")
                  + f"; peak RSS {r['peak_rss_gb']:.2f} GB{' (both)' if vs else ''}"
                  + (f", growth over two rounds of phases {r['rss_growth_gb']:+.2f} GB" if "rss_growth_gb" in r else "")
                  + (f"; peak GPU memory {r['peak_gpu_memory_gb']:.2f} GB" if "peak_gpu_memory_gb" in r else ""),
                  flush=True)
    if args.json:
        result = dict(peak_flops=peak, threads=args.threads, rows=rows)
        if peer:
            result.update(peer=str(peer.root), peer_error=peer.error)
        Path(args.json).write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
