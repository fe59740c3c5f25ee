"""Attribution by reprojection (StyleGAN2 §5): images the network generated project back almost exactly,
real images do not; the two distributions of final LPIPS distances, as numbers and as a plot."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from stylegan.tools.generate import z_from_seed
from stylegan.tools.projector import Distance, ProjectionConfig, project


def reprojection_distances(G, real_images: torch.Tensor, distance: Distance, num: int,
                           cfg: ProjectionConfig, seed: int = 1000, progress: bool = False) -> dict[str, list[float]]:
    """Final distances for ``num`` generated images (seeds seed…; a conditional network's in classes 0, 1, …
    in turn) and the first ``num`` real images ([N, C, R, R] in [−1, 1])."""
    device = next(G.parameters()).device
    out: dict[str, list[float]] = {"generated": [], "real": []}
    for i in range(num):
        c = torch.eye(G.c_dim, device=device)[[i % G.c_dim]] if G.c_dim else None
        with torch.no_grad():
            img = G(z_from_seed(seed + i, G.z_dim).to(device), c, noise_mode="const")
        out["generated"].append(project(G, img, distance, cfg, progress=progress).final_distance)
    for img in real_images[:num]:
        out["real"].append(project(G, img[None].to(device), distance, cfg, progress=progress).final_distance)
    return out


def plot_distances(dist: dict[str, list[float]], path: str | os.PathLike) -> Path:
    from stylegan.extras import require

    matplotlib = require("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5), dpi=120)
    hi = max(max(v) for v in dist.values() if v)
    bins = [hi * i / 30 for i in range(31)]
    for name, values in dist.items():
        ax.hist(values, bins=bins, alpha=0.6, label=f"{name} (n={len(values)})")
    ax.set_xlabel("LPIPS distance after projection")
    ax.set_ylabel("images")
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
