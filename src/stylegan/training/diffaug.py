"""DiffAugment (Zhao et al. 2020, "Differentiable Augmentation for Data-Efficient GAN Training"): the same
random, differentiable augmentations applied to real and generated images before every discriminator call,
at full strength (no probability, no adaptation).

Policies (comma-separated, applied in the order given), for NCHW images in [−1, 1], per image:

- ``color``: brightness x + b, b ~ U(−0.5, 0.5); saturation (x − m_c)·s + m_c, s ~ U(0, 2), m_c the
  per-pixel channel mean (no effect on grayscale); contrast (x − m)·c + m, c ~ U(0.5, 1.5), m the image mean.
- ``translation``: integer shift of up to 1/8 of the image size in x and y (uniform, independent), the
  uncovered area zero-filled.
- ``cutout``: a square of half the image size (rounded), at a uniformly random position (it may hang over the
  border), set to zero.

Everything is differentiable w.r.t. the input; random draws use the global generator of the input's device.
"""
from __future__ import annotations

import torch

__all__ = ["diff_augment", "DiffAugment", "DIFFAUG_POLICIES", "DEFAULT_POLICY"]

DEFAULT_POLICY = "color,translation,cutout"


def _rand(x: torch.Tensor, lo: float, hi: float) -> torch.Tensor:
    return torch.rand(x.shape[0], 1, 1, 1, device=x.device, dtype=x.dtype) * (hi - lo) + lo


def brightness(x: torch.Tensor) -> torch.Tensor:
    return x + _rand(x, -0.5, 0.5)


def saturation(x: torch.Tensor) -> torch.Tensor:
    m = x.mean(dim=1, keepdim=True)
    return (x - m) * _rand(x, 0.0, 2.0) + m


def contrast(x: torch.Tensor) -> torch.Tensor:
    m = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - m) * _rand(x, 0.5, 1.5) + m


def translation(x: torch.Tensor, ratio: float = 0.125) -> torch.Tensor:
    """Shift each image by integers drawn uniformly from [−r, r], r = round(ratio · size), zero fill."""
    n, c, h, w = x.shape
    rx, ry = int(w * ratio + 0.5), int(h * ratio + 0.5)
    dx = torch.randint(-rx, rx + 1, (n, 1, 1), device=x.device)
    dy = torch.randint(-ry, ry + 1, (n, 1, 1), device=x.device)
    # Output pixel (i, j) reads input (i − dy, j − dx) when that lies inside the image.
    sx = torch.arange(w, device=x.device).view(1, 1, w) - dx
    sy = torch.arange(h, device=x.device).view(1, h, 1) - dy
    inside = (sx >= 0) & (sx < w) & (sy >= 0) & (sy < h)
    idx = (sy.clamp(0, h - 1) * w + sx.clamp(0, w - 1)).reshape(n, 1, h * w).expand(n, c, h * w)
    out = x.reshape(n, c, h * w).gather(2, idx).reshape(n, c, h, w)
    return out * inside.unsqueeze(1).to(x.dtype)


def cutout(x: torch.Tensor, ratio: float = 0.5) -> torch.Tensor:
    """Zero a square of side round(ratio · size) whose centre is uniform over the image (clipped at the edges)."""
    n, c, h, w = x.shape
    sw, sh = int(w * ratio + 0.5), int(h * ratio + 0.5)
    # Top-left corner in [−size/2, size − size/2], so the centre covers every pixel with equal probability.
    x0 = torch.randint(0, w + 1 - sw % 2, (n, 1, 1), device=x.device) - sw // 2
    y0 = torch.randint(0, h + 1 - sh % 2, (n, 1, 1), device=x.device) - sh // 2
    gx = torch.arange(w, device=x.device).view(1, 1, w)
    gy = torch.arange(h, device=x.device).view(1, h, 1)
    cut = (gx >= x0) & (gx < x0 + sw) & (gy >= y0) & (gy < y0 + sh)
    return x * (~cut).unsqueeze(1).to(x.dtype)


DIFFAUG_POLICIES = {
    "color": (brightness, saturation, contrast),
    "translation": (translation,),
    "cutout": (cutout,),
}


def parse_policy(policy: str) -> list[str]:
    names = [p.strip() for p in policy.split(",") if p.strip()]
    unknown = [p for p in names if p not in DIFFAUG_POLICIES]
    if unknown:
        raise ValueError(f"unknown DiffAugment policy {unknown}; choose from {', '.join(DIFFAUG_POLICIES)}")
    return names


def diff_augment(x: torch.Tensor, policy: str = DEFAULT_POLICY) -> torch.Tensor:
    """Apply the DiffAugment ``policy`` (e.g. ``"color,translation,cutout"``; ``""`` = identity) to NCHW ``x``."""
    if x.ndim != 4:
        raise ValueError(f"diff_augment expects NCHW images, got shape {tuple(x.shape)}")
    for name in parse_policy(policy):
        for fn in DIFFAUG_POLICIES[name]:
            x = fn(x)
    return x


class DiffAugment(torch.nn.Module):
    """Module form of :func:`diff_augment`, interchangeable with :class:`~stylegan.training.augment.AugmentPipe`
    as the discriminator's input transform."""

    def __init__(self, policy: str = DEFAULT_POLICY):
        super().__init__()
        parse_policy(policy)
        self.policy = policy

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return diff_augment(x, self.policy)

    def extra_repr(self) -> str:
        return f"policy={self.policy!r}"
