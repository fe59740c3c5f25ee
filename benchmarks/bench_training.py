"""Training speed: seconds per image of each phase and the amortized training throughput (img/s, s/kimg),
with the share of the machine's measured peak FLOP rate and the peak resident memory.

Networks only (no augmentation), float32. Phases as in the speed issue: the main step (G main + D main, logistic loss), the R1 step (one D
regularization pass over the full batch), the path-length step (one G pass over half the batch). With lazy
intervals 16 (R1) and 4 (PL), one training step costs main + R1/16 + PL/4 (regularization passes plus their
optimizer steps). Run with `make bench` or `python benchmarks/bench_training.py --settings small`.
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
from common import count_flops, measured_peak_flops, median_seconds, setup_threads  # noqa: E402

from stylegan.training.loop import Trainer  # noqa: E402
from stylegan.training.options import TrainingOptions  # noqa: E402

SETTINGS = {
    "small": dict(resolution=32, cbase=8192, cmax=256, batch=8),
    "config-f-256": dict(resolution=256, cbase=32768, cmax=512, batch=4),
}


def make_data(folder: Path, res: int, n: int = 8) -> Path:
    rng = np.random.RandomState(0)
    for i in range(n):
        Image.fromarray(rng.randint(0, 255, (res, res, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def bench(name: str, reps: int, device: str, peak: float) -> dict:
    s = SETTINGS[name]
    with tempfile.TemporaryDirectory() as tmp:
        opts = TrainingOptions(outdir=tmp, data=str(make_data(Path(tmp), s["resolution"])), cbase=s["cbase"],
                               cmax=s["cmax"], batch=s["batch"], workers=0, device=device, fp32=True, aug="noaug")
        t = Trainer(opts)
        for _ in range(2):
            t.step()  # warm-up (all phases run at batch index 0)
        real, _ = next(t.loader)
        real = real.to(t.device, torch.float32) / 127.5 - 1
        n, zd = s["batch"], t.G.z_dim

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

        out = {"setting": name, "batch": n}
        for label, fn in (("main", main_step), ("r1", r1_step), ("pl", pl_step)):
            flops = count_flops(fn)  # None for R1 and PL: the counter cannot follow double backward
            sec = median_seconds(fn, warmup=1, reps=reps, device=device)
            out[f"{label}_s_per_img"] = sec / n
            out[f"{label}_peak_share"] = None if flops is None else flops / sec / peak
        step = out["main_s_per_img"] + out["r1_s_per_img"] / 16 + out["pl_s_per_img"] / 4
        out["train_images_per_s"] = 1 / step
        out["train_s_per_kimg"] = 1000 * step
        out["peak_rss_gb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--settings", default=",".join(SETTINGS))
    ap.add_argument("--json", default=None)
    args = ap.parse_args()
    setup_threads(args.threads)
    peak = measured_peak_flops(device=args.device)
    print(f"measured peak (float32 GEMM/conv): {peak / 1e9:.1f} GFLOP/s; {args.threads} threads; device {args.device}")
    print(f"{'setting':<14}{'batch':>6}{'main s/img':>12}{'R1 s/img':>10}{'PL s/img':>10}{'train img/s':>13}"
          f"{'s/kimg':>9}{'main % peak':>13}{'RSS GB':>8}")
    rows = []
    for name in args.settings.split(","):
        r = bench(name, args.reps, args.device, peak)
        rows.append(r)
        print(f"{r['setting']:<14}{r['batch']:>6}{r['main_s_per_img']:>12.4f}{r['r1_s_per_img']:>10.4f}"
              f"{r['pl_s_per_img']:>10.4f}{r['train_images_per_s']:>13.2f}{r['train_s_per_kimg']:>9.0f}"
              f"{100 * r['main_peak_share']:>12.1f}%{r['peak_rss_gb']:>8.2f}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(dict(peak_flops=peak, rows=rows), indent=2))


if __name__ == "__main__":
    main()
