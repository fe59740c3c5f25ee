"""The small-compute study: evaluate training runs made at equal training time (``stylegan train --minutes M``).

For each run folder, the newest snapshot's G_ema is measured: FID and KID (2,000 generated vs all real images,
the standard Inception), class coverage of digits (1,000 samples, the shipped classifier; mnist5k only),
diversity (per-pixel std over 64 fixed latents, in [-1, 1] units) and the training speed (s/kimg, kimg reached)
from the run's stats. One JSON line per run is appended to ``--out``; ``--table`` prints the Markdown table of
such a file. Usage::

    python studies/small_compute/study_small_compute.py eval out/study/NAME/00000-... [--data builtin:mnist5k] --out study.jsonl
    python studies/small_compute/study_small_compute.py table study.jsonl
    python studies/small_compute/study_small_compute.py sheet RUN... --out sheet.png   # the final grids side by side
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch


def newest_snapshot(run: Path) -> Path:
    snaps = sorted(run.glob("network-snapshot-*.safetensors"))
    if not snaps:
        raise SystemExit(f"{run}: no snapshot")
    return snaps[-1]


def run_stats(run: Path) -> dict:
    rows = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines() if line.strip()]
    last = rows[-1]
    kimg = last["kimg"]
    minutes = last.get("train_minutes")
    return {"kimg": round(kimg, 2), "train_minutes": round(minutes, 2) if minutes else None,
            "sec_per_kimg": round(minutes * 60 / kimg, 2) if minutes else None}


@torch.no_grad()
def pixel_diversity(G, n: int = 64, seed: int = 0) -> float:
    """Per-pixel std over ``n`` fixed latents (const noise, ψ = 1), averaged over pixels and channels."""
    z = torch.randn(n, G.z_dim, generator=torch.Generator().manual_seed(seed))
    c = None
    if G.c_dim:
        c = torch.nn.functional.one_hot(torch.arange(n) % G.c_dim, G.c_dim).float()
    img = G(z, c, noise_mode="const")
    return float(img.std(dim=0).mean())


@torch.no_grad()
def digit_fd(G, n: int = 2000, seed: int = 0) -> float:
    """A fast screening figure: the Fréchet distance between the digit classifier's penultimate features of
    ``n`` generated images and of all 5,000 real digits (not FID: no Inception network)."""
    from stylegan.metrics.digits import load_classifier, mnist5k_split
    from stylegan.metrics.fid import frechet_distance, mean_cov

    net = load_classifier()

    def feats(x):
        return net.features(x).double().numpy()

    x, _, xt, _ = mnist5k_split()
    real = feats(torch.cat([x, xt]))
    gen = torch.Generator().manual_seed(seed)
    fake = []
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for i in range(0, n, 200):
            z = torch.randn(200, G.z_dim, generator=gen)
            c = (torch.nn.functional.one_hot(torch.randint(0, G.c_dim, (200,), generator=gen), G.c_dim).float()
                 if G.c_dim else None)
            fake.append(feats(G(z, c)))
    return float(frechet_distance(*mean_cov(real), *mean_cov(np.concatenate(fake))))


def evaluate(run: Path, data: str, coverage: bool, fid: bool = True) -> dict:
    import stylegan
    from stylegan.metrics.registry import compute_metrics

    snap = newest_snapshot(run)
    G = stylegan.load(snap)
    G = G["G_ema"] if isinstance(G, dict) else G
    names = (["fid2k_full", "kid2k_full"] if fid else []) + (["coverage1k"] if coverage else [])
    results: dict = {}
    for rec in compute_metrics(names, G, data, progress=False):
        results.update(rec["results"])
    opts = json.loads((run / "options.json").read_text())
    extra = {"digit_fd": round(digit_fd(G), 2)} if coverage else {}
    return {"run": str(run), "snapshot": snap.name, **run_stats(run), "diversity": round(pixel_diversity(G), 4),
            **extra,
            **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in results.items()},
            "options": {k: v for k, v in opts["options"].items() if v is not None}}


COLUMNS = [("name", "run"), ("kimg", "kimg"), ("s/kimg", "sec_per_kimg"), ("FID", "fid2k_full"), ("digit FD", "digit_fd"),
           ("KID×10³", "kid2k_full"), ("classes", "coverage1k_classes_covered"), ("KL", "coverage1k_class_kl"),
           ("diversity", "diversity")]


def table(path: Path) -> str:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    out = ["| " + " | ".join(c for c, _ in COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        cells = []
        for col, key in COLUMNS:
            v = r.get(key)
            if col == "name":
                v = Path(r["run"]).parent.name
            elif key == "kid2k_full" and v is not None:
                v = f"{v * 1000:.1f}"
            elif isinstance(v, float):
                v = f"{v:.3g}" if key != "fid2k_full" else f"{v:.1f}"
            cells.append("–" if v is None else str(v))
        out.append("| " + " | ".join(cells) + " |")
    return "\n".join(out)


def contact_sheet(runs: list[Path], out: Path, rows: int = 4, cols: int = 8) -> Path:
    """The first ``rows`` rows of each run's final snapshot grid, side by side (two runs per line), labelled
    with the run's name."""
    from PIL import Image, ImageDraw

    tiles = []
    for run in runs:
        grid = Image.open(sorted(run.glob("fakes0*.png"))[-1]).convert("RGB")
        cell = grid.width // 8
        tile = Image.new("RGB", (cols * cell, rows * cell + 14), "white")
        tile.paste(grid.crop((0, 0, cols * cell, rows * cell)), (0, 14))
        ImageDraw.Draw(tile).text((2, 1), run.parent.name, fill="black")
        tiles.append(tile)
    w, h = tiles[0].size
    per_line = 2
    sheet = Image.new("RGB", (per_line * w + (per_line - 1) * 8, ((len(tiles) + 1) // per_line) * (h + 8)), "white")
    for i, t in enumerate(tiles):
        sheet.paste(t, ((i % per_line) * (w + 8), (i // per_line) * (h + 8)))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("eval")
    e.add_argument("runs", nargs="+", type=Path)
    e.add_argument("--data", default="builtin:mnist5k")
    e.add_argument("--no-coverage", action="store_true")
    e.add_argument("--no-fid", action="store_true", help="screening: coverage, digit FD and diversity only")
    e.add_argument("--out", type=Path, required=True)
    t = sub.add_parser("table")
    t.add_argument("file", type=Path)
    g = sub.add_parser("sheet")
    g.add_argument("runs", nargs="+", type=Path)
    g.add_argument("--out", type=Path, required=True)
    a = p.parse_args(argv)
    if a.cmd == "sheet":
        print(contact_sheet(a.runs, a.out))
        return
    if a.cmd == "table":
        print(table(a.file))
        return
    for run in a.runs:
        rec = evaluate(run, a.data, coverage=not a.no_coverage, fid=not a.no_fid)
        with open(a.out, "a") as f:
            f.write(json.dumps(rec) + "\n")
        print(json.dumps({k: v for k, v in rec.items() if k != "options"}), file=sys.stderr)


if __name__ == "__main__":
    main()
