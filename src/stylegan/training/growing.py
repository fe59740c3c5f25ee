"""Progressive growing (ProGAN): training starts at a low resolution; each next resolution is faded
in linearly (α from 0 to 1 over ``fade_kimg`` thousand images) and then trained stable for ``stable_kimg``,
until the full resolution, which is kept to the end.

The stage and α are a pure function of the number of images shown, so a resumed run continues exactly where
it stopped. The networks hold the current stage themselves (:mod:`stylegan.networks.progressive`); the real
images D sees are brought to the same stage by :func:`images_at`.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from stylegan.nn.resample import downsample_avg, upsample_nearest


@dataclass(frozen=True)
class Growth:
    """Where training stands: the stage's ``resolution``, its fade-in ``alpha`` (1 once stable), the
    ``phase`` (``"fade"`` or ``"stable"``) and the phase's number (0 = the first stable stage)."""

    resolution: int
    alpha: float
    phase: str
    index: int

    def describe(self) -> str:
        return f"{self.resolution}x{self.resolution} " + (f"fade-in alpha {self.alpha:.3f}" if self.phase == "fade"
                                                          else "stable")


@dataclass(frozen=True)
class GrowthSchedule:
    """Stages from ``start_resolution`` (capped at the final one) up to ``final_resolution``: stable, then
    for every further resolution a fade-in and a stable phase. Lengths in thousands of images."""

    final_resolution: int
    start_resolution: int = 4
    fade_kimg: float = 600
    stable_kimg: float = 600

    def __post_init__(self):
        if self.fade_kimg < 0 or self.stable_kimg < 0:
            raise ValueError("growth phase lengths must be >= 0")

    def at(self, nimg: int) -> Growth:
        """The growth state after ``nimg`` real images."""
        fade, stable = round(self.fade_kimg * 1000), round(self.stable_kimg * 1000)
        res = min(self.start_resolution, self.final_resolution)
        index, t = 0, int(nimg)
        if t < stable or res == self.final_resolution:
            return Growth(res, 1.0, "stable", index)
        t -= stable
        while True:
            res *= 2
            index += 1
            if t < fade:
                return Growth(res, t / fade, "fade", index)
            t -= fade
            index += 1
            if t < stable or res == self.final_resolution:
                return Growth(res, 1.0, "stable", index)
            t -= stable


def images_at(img: torch.Tensor, growth: Growth) -> torch.Tensor:
    """Full-resolution images as D sees them at a growth stage: averaged down to the stage's resolution and,
    while it fades in, blended with the previous stage's (averaged down once more and repeated back up), the
    same blend the generator's output makes."""
    x = downsample_avg(img, img.shape[-1] // growth.resolution)
    if growth.alpha < 1:
        x = torch.lerp(upsample_nearest(downsample_avg(x)), x, growth.alpha)
    return x


def apply_growth(growth: Growth, *networks: torch.nn.Module) -> None:
    """Move every network (G, G_ema, D) to the stage and α of ``growth``."""
    for net in networks:
        net.set_growth(growth.resolution, growth.alpha)
