"""ProGAN's resampling: nearest-neighbour upsampling and 2×2 average-pool downsampling. They also
carry images between the stages of progressive growing. FIR resampling is in :mod:`stylegan.nn.upfirdn`.
Formulas: docs/design.md §1.5."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def upsample_nearest(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """Each pixel repeated ``factor`` × ``factor`` times (NCHW)."""
    if factor == 1:
        return x
    return x.repeat_interleave(factor, dim=2).repeat_interleave(factor, dim=3)


def downsample_avg(x: torch.Tensor, factor: int = 2) -> torch.Tensor:
    """The mean of each ``factor`` × ``factor`` block of pixels (NCHW)."""
    if factor == 1:
        return x
    return F.avg_pool2d(x, factor)
