"""The demo (``stylegan demo``, ``make demo``): the packaged networks' pictures first, then minutes of transfer
learning from a packaged base onto a built-in dataset it was not trained on, shown as a before/after grid and
scored by FID against the target's real images.

Every picture is written upscaled (``SCALE``): the networks draw 32×32 images, too small to look at as they are.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
from PIL import Image

# PyTorch and the modules that use it are imported by the functions that draw, so that the command line's options
# (which read the defaults above) parse without loading it.

#: Upscaling of every picture the demo writes (32×32 networks: 4× gives 128 px cells).
SCALE = 4

#: What the demo trains by default: the base, the dataset it was not trained on, and the minutes.
DEMO_BASE = "twemoji-nofaces32"
DEMO_DATA = "builtin:twemoji-faces"
DEMO_MINUTES = 5.0


def upscale(img: np.ndarray, factor: int = SCALE) -> np.ndarray:
    """HWC uint8 enlarged ``factor`` times with Lanczos resampling (grayscale stays one channel)."""
    pil = Image.fromarray(img[..., 0] if img.shape[2] == 1 else img)
    out = np.asarray(pil.resize((pil.width * factor, pil.height * factor), Image.LANCZOS))
    return out[..., None] if out.ndim == 2 else out


def class_grid(G, seeds: Sequence[int], truncation_psi: float = 1.0, pad: int = 2) -> np.ndarray:
    """Rows: the classes of a conditional G in order; columns: ``seeds``."""
    from stylegan.images import make_grid
    from stylegan.tools.generate import generate_images

    rows = [generate_images(G, seeds, truncation_psi=truncation_psi, class_idx=c) for c in range(G.c_dim)]
    return make_grid(np.concatenate(rows), cols=len(seeds), pad=pad)


def seed_grid(G, seeds: Sequence[int], truncation_psi: float = 1.0, cols: int | None = None, pad: int = 2,
              fill: int = 255) -> np.ndarray:
    from stylegan.images import make_grid
    from stylegan.tools.generate import generate_images

    return make_grid(generate_images(G, seeds, truncation_psi=truncation_psi), cols=cols, pad=pad, fill=fill)


def edit_strips(G, seeds: Sequence[int], index: int = 0, strengths: Sequence[float] = (-3, -1.5, 0, 1.5, 3),
                truncation_psi: float = 1.0, pad: int = 2) -> np.ndarray:
    """One row per seed: the image moved along the network's first SeFa direction (strength × its spread)."""
    from stylegan.images import make_grid, to_uint8
    from stylegan.tools.directions import edit, sefa

    directions = sefa(G, num=max(index + 1, 5))
    rows = [to_uint8(edit(G, s, directions, index, strengths, truncation_psi=truncation_psi)) for s in seeds]
    return make_grid(np.concatenate(rows), cols=len(strengths), pad=pad, fill=255)


def before_after(before, after, seeds: Sequence[int], truncation_psi: float = 1.0, cols: int = 8,
                 gap: int = 8) -> np.ndarray:
    """The same seeds through two generators (e.g. a base and its fine-tuned copy), side by side."""
    a, b = (seed_grid(G, seeds, truncation_psi, cols=cols) for G in (before, after))
    spacer = np.full((a.shape[0], gap, a.shape[2]), 255, np.uint8)
    return np.concatenate([a, spacer, b], axis=1)


@dataclass
class Picture:
    """One picture of the demo: its path and what it shows."""

    path: Path
    what: str


@dataclass
class DemoResult:
    pictures: list[Picture] = field(default_factory=list)
    run_dir: Path | None = None
    snapshot: Path | None = None
    fid_before: float | None = None
    fid_after: float | None = None


def _save(result: DemoResult, img: np.ndarray, path: Path, what: str) -> None:
    from stylegan.images import save_png

    save_png(upscale(img), path)
    result.pictures.append(Picture(path, what))


def showcase(outdir: Path, result: DemoResult, device: str = "cpu",
             log: Callable[[str], None] = print) -> None:
    """(a) The packaged networks' pictures: mnist32's classes × seeds, an emoji grid, a style-mixing figure, edit
    strips along a latent direction and an interpolation video."""
    import stylegan
    from stylegan.tools.style_mixing import style_mixing_grid
    from stylegan.tools.video import interpolation_frames, write_video

    digits = stylegan.load("mnist32", device)
    _save(result, class_grid(digits, range(10)), outdir / "mnist32-classes.png",
          "mnist32: rows are the requested digits 0-9, columns seeds 0-9")
    emoji = stylegan.load(_emoji_network(), device)
    _save(result, seed_grid(emoji, range(64), truncation_psi=0.8), outdir / "emoji-grid.png",
          f"{_emoji_network()}: 64 seeds at psi 0.8")
    grid, _ = style_mixing_grid(emoji, [1, 2, 3, 4], [5, 6, 7, 8], styles=range(0, 4), truncation_psi=0.8)
    _save(result, grid, outdir / "emoji-style-mixing.png",
          "style mixing: each cell is its row's emoji with the coarse styles (0-3) of its column's")
    _save(result, edit_strips(emoji, [11, 12, 13, 14], truncation_psi=0.8), outdir / "emoji-edit.png",
          "edits: each row is one emoji moved along the network's first SeFa direction, -3 to +3 sigma")
    video = outdir / "emoji-interpolation.gif"
    frames = interpolation_frames(emoji, list(range(20, 68)), grid=(4, 4), w_frames=24, truncation_psi=0.8)
    write_video((upscale(f, 2) for f in frames), video, fps=24)
    result.pictures.append(Picture(video, "a looping interpolation, 4 x 4 cells through 3 seeds each (GIF)"))
    log(f"demo: wrote the packaged networks' pictures to {outdir}")


def _emoji_network() -> str:
    """The packaged emoji network to show: ``twemoji32`` (all Twemoji) once it is packaged, else the base
    without the faces."""
    from stylegan import pretrained

    return "twemoji32" if pretrained.is_available("twemoji32") else DEMO_BASE


def transfer(outdir: Path, base: str = DEMO_BASE, data: str = DEMO_DATA, minutes: float = DEMO_MINUTES,
             procs: int = 1, **flags) -> Path:
    """(b) Train from the packaged ``base`` on ``data`` for ``minutes`` of training; the newest snapshot."""
    from stylegan.training.loop import launch
    from stylegan.training.runs import latest_snapshot, read_resume

    opts, base_networks = read_resume(base, str(outdir), {"data": data, "minutes": minutes, "procs": procs,
                                                          "workers": 0, "tick": 2, "snap": 1000, **flags})
    launch(opts, base_networks)
    return latest_snapshot(outdir)


def fid(G, data: str, metric: str = "fid500_full", device: str = "cpu") -> float:
    """FID of ``G`` against the real images of ``data``."""
    from stylegan.metrics.registry import compute_metric

    return float(compute_metric(metric, G, data, device, progress=False)["results"][metric])


def check_base_and_data(base: str, data: str) -> None:
    """Refuse an unknown ``base`` (CheckpointError) or ``data`` (ValueError) before anything is written: the
    training that reads them comes after the pictures."""
    from stylegan.data.builtin import BUILTIN_PREFIX, builtin_path
    from stylegan.loader import resolve

    resolve(base)
    if data.startswith(BUILTIN_PREFIX):
        builtin_path(data[len(BUILTIN_PREFIX):])  # an unknown name: the list of the built-in ones
    elif not Path(data).exists():
        raise ValueError(f"dataset not found: {data}")


def run_demo(outdir: str | Path, base: str = DEMO_BASE, data: str = DEMO_DATA, minutes: float = DEMO_MINUTES,
             procs: int = 1, device: str = "cpu", fid_metric: str | None = "fid500_full",
             log: Callable[[str], None] = print) -> DemoResult:
    """The whole demo into ``outdir``: pictures/ (the packaged networks), transfer/ (the training run) and
    before-after.png; the FID of the result against ``data``'s real images."""
    import torch

    import stylegan

    outdir = Path(outdir)
    check_base_and_data(base, data)
    result = DemoResult()
    showcase(outdir / "pictures", result, device, log)
    log(f"demo: {minutes:g} minutes of training from {base} on {data}, which it was not trained on")
    snapshot = transfer(outdir / "transfer", base, data, minutes, procs)
    result.run_dir, result.snapshot = snapshot.parent, snapshot
    before, after = stylegan.load(base, device), stylegan.load(snapshot, device)
    _save(result, before_after(before, after, range(100, 132), truncation_psi=0.8, cols=8),
          outdir / "before-after.png", f"the same 32 seeds: left {base} as packaged, right after the training")
    if fid_metric:  # the result only: Inception on a CPU takes about a minute per 500 images
        torch.manual_seed(0)
        result.fid_after = fid(after, data, fid_metric, device)
    return result


def closing_lines(result: DemoResult, base: str = DEMO_BASE, data: str = DEMO_DATA,
                  fid_metric: str = "fid500_full") -> list[str]:
    """(c) Where each picture is, the FID, and how to open the page."""
    lines = ["", "The demo's pictures:"]
    lines += [f"  {p.path}  {p.what}" for p in result.pictures]
    if result.fid_after is not None:
        lines.append(f"FID ({fid_metric}) of the trained network against the real images of {data}: "
                     f"{result.fid_after:.1f} (lower is better"
                     + (f"; {base} as packaged: {result.fid_before:.1f})" if result.fid_before is not None else ")"))
    if result.run_dir is not None:
        lines.append(f"The training run (log, snapshot, grids): {result.run_dir}")
    lines += [f"Open the page: stylegan serve --network {_emoji_network()}   (or --network mnist32, or "
              f"--network {result.snapshot or 'a snapshot of yours'})",
              "then browse http://127.0.0.1:8000/"]
    return lines
