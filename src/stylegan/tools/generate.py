"""Images from seeds: the seed-to-latent convention, batching, truncation, class labels."""
from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np
import torch
from tqdm import tqdm

from stylegan.images import to_uint8
from stylegan.nn.noise import check_noise_mode
from stylegan.tools.ranges import MAX_LIST, parse_range  # noqa: F401  (the seed lists' grammar)


def z_from_seed(seed: int, z_dim: int) -> torch.Tensor:
    """The latent of a seed, as the authors' tools draw it (NumPy RandomState(seed).randn), so that a seed
    names the same image across implementations for an imported network. Shape [1, z_dim]."""
    if not 0 <= seed < 2 ** 32:
        raise ValueError(f"seed must be in [0, 2^32), got {seed}")
    return torch.from_numpy(np.random.RandomState(seed).randn(1, z_dim)).to(torch.float32)


def class_labels(G, class_idx: int | None, n: int, device) -> torch.Tensor | None:
    """One-hot labels for a conditional G; None for an unconditional one. Errors say what is wrong."""
    if G.c_dim == 0:
        if class_idx is not None:
            raise ValueError("this network is unconditional: do not give a class (--class, class_idx)")
        return None
    if class_idx is None:  # the one rule everywhere: nothing picks a class silently
        raise ValueError(f"this network is conditional ({G.c_dim} classes): give a class in [0, {G.c_dim}) "
                         "(--class on the command line, class_idx= in Python)")
    if not 0 <= class_idx < G.c_dim:
        raise ValueError(f"class index must be in [0, {G.c_dim}), got {class_idx}")
    c = torch.zeros(n, G.c_dim, device=device)
    c[:, class_idx] = 1
    return c


@torch.no_grad()
def iter_images(
    G,
    seeds: Sequence[int],
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
    noise_mode: str = "const",
    class_idx: int | None = None,
    batch_size: int = 8,
    progress: bool = False,
    truncation_class: bool = False,
) -> Iterator[tuple[int, np.ndarray]]:
    """(seed, HWC uint8 image) for each seed in order, made a batch at a time: only one batch is held, for any
    number of seeds. Deterministic for ``noise_mode`` ``const`` or ``none``. ``truncation_class``: truncate towards
    the class's own average w (conditional networks)."""
    check_noise_mode(noise_mode)
    device = next(G.parameters()).device
    bar = tqdm(total=len(seeds), desc="generate", unit="img", disable=not progress)
    try:
        for i in range(0, len(seeds), batch_size):
            chunk = seeds[i:i + batch_size]
            z = torch.cat([z_from_seed(s, G.z_dim) for s in chunk]).to(device)
            c = class_labels(G, class_idx, len(chunk), device)
            ws = G.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                           truncation_class=truncation_class)
            img = G.synthesis(ws, noise_mode=noise_mode)
            for seed, arr in zip(chunk, to_uint8(img)):
                yield seed, arr
            bar.update(len(chunk))
    finally:
        bar.close()


def generate_images(G, seeds: Sequence[int], **kwargs) -> np.ndarray:
    """One image per seed as NHWC uint8 (all in memory; :func:`write_images` writes them one by one).
    Keyword arguments as :func:`iter_images`."""
    return np.stack([img for _, img in iter_images(G, seeds, **kwargs)])


#: The most seeds ``write_images`` puts in one grid image (the grid holds every image in memory).
MAX_GRID = 1024


def check_grid(num_seeds: int, grid: bool) -> None:
    """Refuse a grid of more than :data:`MAX_GRID` images."""
    if grid and num_seeds > MAX_GRID:
        raise ValueError(f"a grid holds at most {MAX_GRID} images, got {num_seeds:,} seeds: leave out --grid")


def seed_filename(seed: int) -> str:
    """The file name of a seed's image: seed0007.png."""
    return f"seed{seed:04d}.png"


def existing_outputs(outdir: str | os.PathLike, seeds: Sequence[int], grid: bool = False) -> list[Path]:
    """The files of :func:`write_images` that already exist in ``outdir``, found by listing it once (quick for
    any number of seeds)."""
    out = Path(outdir)
    if not out.is_dir():
        return []
    wanted, found = set(seeds), []
    for name in sorted(os.listdir(out)):
        m = re.fullmatch(r"seed(\d+)\.png", name)
        ours = m is not None and int(m.group(1)) in wanted and seed_filename(int(m.group(1))) == name
        if ours or (grid and name == "grid.png"):
            found.append(out / name)
    return found


def write_images(G, seeds: Sequence[int], outdir: str | os.PathLike, grid: bool = False, **kwargs) -> int:
    """Write each seed's image to ``outdir``/seedNNNN.png as soon as it is made (each file atomically), so that
    an interrupted run keeps what it wrote; with ``grid``, also grid.png of all of them (at most
    :data:`MAX_GRID` seeds). Keyword arguments as :func:`iter_images`. Returns the number of images written."""
    from stylegan.images import make_grid, save_png

    check_grid(len(seeds), grid)
    out, kept, n = Path(outdir), [], 0
    for seed, img in iter_images(G, seeds, **kwargs):
        save_png(img, out / seed_filename(seed))
        n += 1
        if grid:
            kept.append(img)
    if grid:
        save_png(make_grid(np.stack(kept)), out / "grid.png")
    return n
