"""The effect of noise inputs (StyleGAN Fig. 5/7): one latent rendered with noise on all layers, on none,
on the fine layers only and on the coarse layers only, and the per-pixel standard deviation over many noise
realizations."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from stylegan.images import save_png, to_uint8
from stylegan.tools.generate import class_labels, z_from_seed


def default_split(resolution: int) -> int:
    """Highest coarse resolution: the lower half of the resolution levels (32 for a 1024² network)."""
    levels = int(math.log2(resolution))
    return 2 ** ((2 + levels + 1) // 2 - 1)


#: The four renderings of a study: noise in every layer, in none, in the fine layers only, in the coarse only.
KINDS = ("all", "none", "fine", "coarse")


def output_files(outdir: str | os.PathLike) -> list[Path]:
    """The files :meth:`NoiseStudy.save` writes in ``outdir``."""
    out = Path(outdir)
    return [out / f"noise-{k}.png" for k in KINDS] + [out / "noise-study.png", out / "noise-std.npy"]


@dataclass
class NoiseStudy:
    images: dict[str, np.ndarray]  # name -> HWC uint8
    std: np.ndarray  # HW float: per-pixel standard deviation over noise realizations (mean over channels)

    def figure(self) -> np.ndarray:
        """One row: all, none, fine, coarse, then the standard deviation as a heat map (brighter = more)."""
        imgs = [self.images[k] for k in KINDS]
        h, w, c = imgs[0].shape
        s = self.std / max(float(self.std.max()), 1e-8)
        heat = (np.clip(s, 0, 1) * 255).astype(np.uint8)
        heat = np.stack([heat, heat, heat], -1) if c == 3 else heat[..., None]
        return np.concatenate([*imgs, heat], axis=1)

    def save(self, outdir: str | os.PathLike) -> Path:
        """Write :func:`output_files` (each atomically): the four images, the figure, the std as .npy. Returns
        the figure's path."""
        from stylegan.files import atomic_write_bytes

        def write_std(tmp):
            with open(tmp, "wb") as f:
                np.save(f, self.std)

        *pngs, figure, std = output_files(outdir)
        for kind, path in zip(KINDS, pngs):
            save_png(self.images[kind], path)
        atomic_write_bytes(std, write_std)
        return save_png(self.figure(), figure)


@torch.no_grad()
def noise_study(G, seed: int, truncation_psi: float = 1.0, realizations: int = 100, split: int | None = None,
                class_idx: int | None = None, noise_seed: int = 0) -> NoiseStudy:
    layers = G.synthesis.noise_layers()
    shapes = G.synthesis.noise_shapes()
    if not layers:
        raise ValueError("this network has no noise inputs")
    if split is None:
        split = default_split(G.resolution)
    elif not min(layers.values()) <= split < max(layers.values()):
        raise ValueError(f"split {split} leaves no {'coarse' if split < min(layers.values()) else 'fine'} noise "
                         f"layers: give a resolution from {min(layers.values())} to {max(layers.values()) // 2}")
    device = next(G.parameters()).device
    ws = G.mapping(z_from_seed(seed, G.z_dim).to(device), class_labels(G, class_idx, 1, device),
                   truncation_psi=truncation_psi)
    gen = torch.Generator().manual_seed(noise_seed)

    def render(which: set[str], n: int = 1) -> torch.Tensor:
        noise = {name: torch.randn(n, 1, *shapes[name], generator=gen).to(device) for name in layers if name in which}
        return G.synthesis(ws.expand(n, -1, -1), noise_mode="none", noise=noise)

    coarse = {k for k, r in layers.items() if r <= split}
    fine = set(layers) - coarse
    images = {
        "all": to_uint8(render(set(layers)))[0],
        "none": to_uint8(render(set()))[0],
        "fine": to_uint8(render(fine))[0],
        "coarse": to_uint8(render(coarse))[0],
    }
    samples = []
    for i in range(0, realizations, 16):
        samples.append(render(set(layers), min(16, realizations - i)))
    x = torch.cat(samples)  # [R, C, H, W] in [-1, 1]
    std = x.std(dim=0, unbiased=False).mean(dim=0).cpu().numpy()
    return NoiseStudy(images=images, std=std)
