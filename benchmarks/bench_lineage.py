"""Training throughput of the lineage side by side (ProGAN, StyleGAN F, StyleGAN2 F) in the small CPU setting
of benchmarks/bench_training.py: res 32, z = w = 512, 8 mapping layers (where there is a mapping network), cbase 8192,
cmax 256, batch 8, float32, no augmentation. Growing networks are measured at their full resolution
(``start_res`` 32), i.e. their most expensive stage. Each row is whole training iterations of the real loop
(every phase on its own interval: the loss of each configuration's recipe, R1 / gradient penalty, path
length where the recipe has it), timed after warm-up.

    python benchmarks/bench_lineage.py [--cfgs progan,stylegan-f,stylegan2-f] [--threads 2] [--steps 16]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from bench_training import make_data  # noqa: E402
from common import setup_threads  # noqa: E402

from stylegan.networks import num_parameters  # noqa: E402
from stylegan.training.loop import Trainer  # noqa: E402
from stylegan.training.options import TrainingOptions  # noqa: E402


def bench(cfg: str, steps: int) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        opts = TrainingOptions(outdir=tmp, data=str(make_data(Path(tmp), 32)), cfg=cfg, cbase=8192, cmax=256,
                               batch=8, workers=0, device="cpu", fp32=True, aug="noaug", start_res=32)
        t = Trainer(opts)
        for _ in range(2):
            t.step()
        t0 = time.perf_counter()
        for _ in range(steps):
            t.step()
        sec = time.perf_counter() - t0
        return dict(cfg=cfg, steps=steps, batch=8, images_per_s=steps * 8 / sec, s_per_kimg=sec / (steps * 8) * 1000,
                    G_params=num_parameters(t.G), D_params=num_parameters(t.D))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--cfgs", default="progan,stylegan-f,stylegan2-f")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--steps", type=int, default=16, help="iterations timed (a multiple of 16 covers every phase)")
    ap.add_argument("--json", default="bench-lineage.json")
    args = ap.parse_args()
    setup_threads(args.threads)
    print(f"{'cfg':<14}{'G params':>12}{'D params':>12}{'img/s':>8}{'s/kimg':>8}")
    rows = []
    for cfg in args.cfgs.split(","):
        r = bench(cfg, args.steps)
        rows.append(r)
        print(f"{cfg:<14}{r['G_params']:>12,}{r['D_params']:>12,}{r['images_per_s']:>8.2f}{r['s_per_kimg']:>8.0f}",
              flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(dict(threads=args.threads, rows=rows), indent=2))


if __name__ == "__main__":
    main()
