"""The style-mixing figure (StyleGAN Fig. 3): rows and columns of source images, and in each cell the row's
image with the chosen style layers taken from the column's."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from stylegan.images import to_uint8
from stylegan.tools.generate import class_labels, z_from_seed


@torch.no_grad()
def style_mixing_grid(
    G,
    row_seeds: Sequence[int],
    col_seeds: Sequence[int],
    styles: Sequence[int],
    truncation_psi: float = 1.0,
    noise_mode: str = "const",
    class_idx: int | None = None,
    truncation_class: bool = False,
) -> tuple[np.ndarray, dict[tuple[int, int], np.ndarray]]:
    """The grid as one HWC uint8 image (top-left blank, column sources on top, row sources on the left),
    and every image by (row_seed, col_seed) with (seed, seed) for the sources. ``truncation_class``: truncate
    towards the class's own average w."""
    bad = [s for s in styles if not 0 <= s < G.num_ws]
    if bad:
        raise ValueError(f"style indices must be in [0, {G.num_ws}) for this network, got {bad}")
    device = next(G.parameters()).device
    seeds = list(dict.fromkeys([*row_seeds, *col_seeds]))
    z = torch.cat([z_from_seed(s, G.z_dim) for s in seeds]).to(device)
    ws = G.mapping(z, class_labels(G, class_idx, len(seeds), device), truncation_psi=truncation_psi,
                   truncation_class=truncation_class)
    w_of = dict(zip(seeds, ws))
    keys, batch = [], []
    for s in seeds:
        keys.append((s, s))
        batch.append(w_of[s])
    style_idx = torch.as_tensor(list(styles), device=device, dtype=torch.long)
    for r in row_seeds:
        for c in col_seeds:
            w = w_of[r].clone()
            w[style_idx] = w_of[c][style_idx]
            keys.append((r, c))
            batch.append(w)
    images = {}
    for i in range(0, len(batch), 8):
        imgs = to_uint8(G.synthesis(torch.stack(batch[i:i + 8]), noise_mode=noise_mode))
        images.update(zip(keys[i:i + 8], imgs))
    h, w_, ch = images[keys[0]].shape
    grid = np.zeros(((len(row_seeds) + 1) * h, (len(col_seeds) + 1) * w_, ch), dtype=np.uint8)
    for j, c in enumerate(col_seeds):
        grid[0:h, (j + 1) * w_:(j + 2) * w_] = images[(c, c)]
    for i, r in enumerate(row_seeds):
        grid[(i + 1) * h:(i + 2) * h, 0:w_] = images[(r, r)]
        for j, c in enumerate(col_seeds):
            grid[(i + 1) * h:(i + 2) * h, (j + 1) * w_:(j + 2) * w_] = images[(r, c)]
    return grid, images
