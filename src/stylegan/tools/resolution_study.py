"""Contribution of each resolution (StyleGAN2 Fig. 8): for a skip generator, the output image is the sum
of every resolution's toRGB output, upsampled to full size; the relative standard deviation of those
contributions shows which resolutions the network relies on, for one network or across a training run."""
from __future__ import annotations

import os
from pathlib import Path

import torch

from stylegan.nn.upfirdn import upsample2d


@torch.no_grad()
def resolution_contributions(G, ws: torch.Tensor, noise_mode: str = "const") -> dict[int, torch.Tensor]:
    """{resolution: that resolution's toRGB output upsampled to the output size}; they sum to the image."""
    syn = G.synthesis
    if not hasattr(syn, "blocks"):
        raise ValueError("resolution contributions need a StyleGAN2 skip generator; this one is alias-free "
                         "(StyleGAN3: one toRGB at the end, no output per resolution)")
    if G.cfg.progressive:
        raise ValueError("resolution contributions need a StyleGAN2 skip generator; this one is progressive "
                         "(its toRGB outputs are faded between stages, not summed)")
    if any(block.torgb is None for block in syn.blocks.values()):
        raise ValueError("resolution contributions need the skip architecture (a toRGB at every resolution)")
    x = None
    parts: dict[int, torch.Tensor] = {}
    for (name, block), bws in zip(syn.blocks.items(), syn.block_ws(ws.to(torch.float32))):
        for r in parts:  # earlier contributions follow the image up one resolution
            parts[r] = upsample2d(parts[r], block.resample_filter)
        x, y = block(x, None, bws, noise_mode=noise_mode)
        parts[block.resolution] = y
    return parts


@torch.no_grad()
def relative_std(G, num: int = 64, seed: int = 0, truncation_psi: float = 1.0) -> dict[int, float]:
    """Share of each resolution in the summed standard deviations of the contributions (sums to 1)."""
    device = next(G.parameters()).device
    z = torch.randn(num, G.z_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    c = None
    if G.c_dim:
        c = torch.nn.functional.one_hot(torch.arange(num) % G.c_dim, G.c_dim).float().to(device)
    parts = resolution_contributions(G, G.mapping(z, c, truncation_psi=truncation_psi))
    std = {r: p.std(dim=[1, 2, 3]).mean().item() for r, p in parts.items()}
    total = sum(std.values()) or 1.0
    return {r: s / total for r, s in std.items()}


def plot_over_training(rows: list[tuple[float, dict[int, float]]], path: str | os.PathLike) -> Path:
    """Stacked area plot of the relative contributions against kimg."""
    from stylegan.extras import require

    matplotlib = require("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    kimg = [k for k, _ in rows]
    resolutions = sorted(rows[0][1])
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    ax.stackplot(kimg, [[100 * r[res] for _, r in rows] for res in resolutions], labels=[f"{r}²" for r in resolutions])
    ax.set_xlabel("kimg")
    ax.set_ylabel("contribution to output std (%)")
    ax.set_ylim(0, 100)
    ax.legend(loc="upper left", fontsize=7)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path)
    plt.close(fig)
    return path
