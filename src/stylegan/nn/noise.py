"""Noise inputs: a single-channel N(0, 1) image scaled by a learned strength, added after the
convolution. Modes: ``random`` (fresh noise each call), ``const`` (a fixed buffer stored with the model),
``none``. Formulas: docs/design.md §1.6."""
from __future__ import annotations

import torch
from torch import nn

from stylegan.config import NOISE_MODES


def check_noise_mode(mode: str) -> str:
    if mode not in NOISE_MODES:
        raise ValueError(f"unknown noise mode {mode!r}; expected one of {', '.join(NOISE_MODES)}")
    return mode


class NoiseInjection(nn.Module):
    """Adds ``strength · noise`` to a feature map of a fixed resolution.

    ``channels=None`` gives one scalar strength (StyleGAN2); ``channels=C`` one strength per feature map
    (StyleGAN). Strengths start at 0.
    """

    def __init__(self, resolution: int | tuple[int, int], channels: int | None = None):
        super().__init__()
        shape = (resolution, resolution) if isinstance(resolution, int) else tuple(resolution)
        self.resolution = max(shape)
        self.strength = nn.Parameter(torch.zeros([] if channels is None else [channels]))
        self.register_buffer("const", torch.randn(*shape))

    def forward(self, x: torch.Tensor, mode: str = "random", noise: torch.Tensor | None = None) -> torch.Tensor:
        """``noise`` (broadcastable to [N, 1, H, W]) overrides ``mode`` when given."""
        add = self.scaled_noise(x, mode, noise)
        return x if add is None else x + add

    def scaled_noise(self, x: torch.Tensor, mode: str = "random", noise: torch.Tensor | None = None) -> torch.Tensor | None:
        """The term this layer adds to ``x`` ([N or 1, 1 or C, H, W]), None for ``mode='none'``."""
        if noise is None:
            if check_noise_mode(mode) == "none":
                return None
            if mode == "random":
                noise = torch.randn(x.shape[0], 1, x.shape[2], x.shape[3], device=x.device, dtype=x.dtype)
            else:
                noise = self.const
        strength = self.strength.to(x.dtype)
        if strength.ndim == 1:
            strength = strength.reshape(1, -1, 1, 1)
        return noise.to(x.dtype) * strength
