"""Exponential moving average of the generator's weights: half-life ``ema_kimg`` thousand images,
ramped up at the start so that early snapshots are not dominated by the random initialization.
Formulas: docs/design.md §3.5."""
from __future__ import annotations

import torch
from torch import nn


def ema_beta(batch_size: int, cur_nimg: int, ema_kimg: float, ema_rampup: float | None) -> float:
    """Decay per step: ``0.5 ** (batch / ema_nimg)``, with ``ema_nimg = min(ema_kimg·1000, cur_nimg·rampup)``."""
    ema_nimg = ema_kimg * 1000
    if ema_rampup:  # None or 0: no ramp-up
        ema_nimg = min(ema_nimg, cur_nimg * ema_rampup)
    return 0.5 ** (batch_size / max(ema_nimg, 1e-8))


@torch.no_grad()
def update_ema(G_ema: nn.Module, G: nn.Module, beta: float) -> None:
    """Parameters: ``ema ← G + beta·(ema − G)``; buffers (w_avg, noise constants) copied."""
    for p_ema, p in zip(G_ema.parameters(), G.parameters()):
        p_ema.copy_(p.detach().lerp(p_ema, beta))
    for b_ema, b in zip(G_ema.buffers(), G.buffers()):
        b_ema.copy_(b)
