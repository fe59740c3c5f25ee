"""Pixel norm: normalize feature vectors by their second moment. Formulas: docs/design.md §1.3."""
from __future__ import annotations

import torch


def normalize_2nd_moment(x: torch.Tensor, dim: int = 1, eps: float = 1e-8) -> torch.Tensor:
    """``x / sqrt(mean(x², dim) + eps)``: ProGAN's pixel norm, and the mapping network's input norm."""
    return x * (x.square().mean(dim=dim, keepdim=True) + eps).rsqrt()
