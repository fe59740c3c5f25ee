"""The mode-seeking penalty the small-compute study tried against early collapse (it did not help: see
README.md here). Kept beside the study, outside the package; the training loop no longer applies it."""
from __future__ import annotations

import torch


def mode_seeking_penalty(img: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
    """Mode-seeking regularization (Mao et al. 2019, MSGAN): the batch is split into halves paired sample by
    sample; the penalty is 1 / (mean |G(z1) − G(z2)| / mean |z1 − z2| + 1e-5) per pair, large when different
    latents give the same image. Returns one value per pair."""
    h = img.shape[0] // 2
    d_img = (img[:h] - img[h:2 * h]).abs().flatten(1).mean(dim=1)
    d_z = (z[:h] - z[h:2 * h]).abs().flatten(1).mean(dim=1)
    return 1 / (d_img / d_z + 1e-5)
