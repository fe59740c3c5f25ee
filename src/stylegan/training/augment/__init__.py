"""Adaptive discriminator augmentation (ADA; Karras et al. 2020, "Training Generative Adversarial Networks with
Limited Data"): a differentiable augmentation pipeline applied to every image the discriminator sees, real or
generated, and the controller that adapts its strength ``p`` from the discriminator's overfitting.

Modules: :mod:`~stylegan.training.augment.pipeline` (:class:`AugmentPipe`, the named pipelines),
:mod:`~stylegan.training.augment.warp` (the band-limited affine warp of the geometric transforms),
:mod:`~stylegan.training.augment.filters` (the FIR filters: the warp's resampling filter, the image-space
filter bank) and :mod:`~stylegan.training.augment.ada` (:class:`AdaController`).

Pipeline (:class:`AugmentPipe`). Images are NCHW float in [−1, 1] with 1 or 3 channels (other channel counts
get every transform except hue rotation). Each transform is applied to each image independently with
probability ``weight · p`` (the weight is the constructor argument of that name, 1 in the named pipelines), its
parameters drawn from the paper's distributions:

=========  ============  =================================================================================
group      transform     parameters (when applied)
=========  ============  =================================================================================
blit       xflip         flip with i ~ U{0, 1} (so an image is mirrored with probability p/2)
           rotate90      k·90°, k ~ U{0, 1, 2, 3} (square images; otherwise k ∈ {0, 2})
           xint          integer translation, t ~ U(−0.125, 0.125) of the image size, rounded to pixels
geom       scale         isotropic scale 2^N(0, 0.2²), i.e. lognormal(0, (0.2 ln 2)²)
           rotate        rotation θ ~ U(−π, π), drawn twice (before and after the anisotropic scale), each
                         with probability 1 − sqrt(1 − p) so that an image is rotated with probability p
           aniso         anisotropic scale (s, 1/s), s = 2^N(0, 0.2²)
           xfrac         fractional translation t ~ N(0, 0.125²) of the image size
color      brightness    x + b, b ~ N(0, 0.2²)
           contrast      x · c, c = 2^N(0, 0.5²)
           lumaflip      reflection across the plane ⟂ luma axis v = [1, 1, 1]/√3, with i ~ U{0, 1}
           hue           rotation about v by θ ~ U(−π, π)                       (3 channels only)
           saturation    v vᵀ x + s (I − v vᵀ) x, s = 2^N(0, 1)                 (identity in grayscale)
filter     imgfilter     4 bands (0–π/8, π/8–π/4, π/4–π/2, π/2–π), each amplified with probability p by
                         2^N(0, 1), gains renormalized to keep the expected energy (see ``filters``)
noise      noise         additive N(0, σ²) per pixel and channel, σ ~ |N(0, 0.1²)|
cutout     cutout        a square of half the image size, centre ~ U(image), set to 0 (mid grey)
=========  ============  =================================================================================

Pixel blitting is exact: one integer index map per image (flip, quarter turns, translation composed; mirror
padding about the border) and a gather. The general geometric transforms are composed into one affine map per
image and done as a low-pass-filtered warp (:func:`warp_affine`; its measured aliasing bound is in the
``warp`` module's docstring). The image-space filter is a bank of four complementary zero-phase bands
(:func:`band_filters`).

Samples that no transform of a stage selects are passed through untouched (exactly), and with ``p = 0`` the
pipeline returns its input. Everything is differentiable w.r.t. the input and runs on the input's device.

Strength: ``pipe.p`` is a 0-d float buffer (saved in the module's state dict); set it with ``pipe.p = 0.3`` or
``pipe.set_p(0.3)``. Named pipelines (:data:`PIPELINES`): ``blit``, ``geom``, ``color``, ``filter``, ``noise``,
``cutout``, ``bg``, ``bgc`` (default), ``bgcf``, ``bgcfn``, ``bgcfnc`` — ``AugmentPipe.from_name("bgc")``.

Controller (:class:`AdaController`): the r_t overfitting heuristic; every few minibatches it moves p by
sign(r_t − target) · N / (ada_kimg · 1000), r_t = E[sign(D(real))] (details in the ``ada`` module).
"""
from __future__ import annotations

from stylegan.training.augment.ada import AdaController
# The filter constants are re-exported as attributes of the package (in __all__).
from stylegan.training.augment.filters import (BAND_BETA, BAND_ENERGY, BAND_TAPS, GEOM_BETA, GEOM_FILTER, GEOM_TAPS,
                                               band_filters, fir_down2, fir_up2, kaiser_lowpass)
from stylegan.training.augment.pipeline import DEFAULT_PIPELINE, GROUPS, PIPELINES, TRANSFORMS, AugmentPipe
from stylegan.training.augment.warp import warp_affine

__all__ = [
    "AugmentPipe", "AdaController", "GROUPS", "PIPELINES", "TRANSFORMS", "DEFAULT_PIPELINE", "GEOM_FILTER",
    "kaiser_lowpass", "band_filters", "warp_affine", "fir_up2", "fir_down2",
    "BAND_BETA", "BAND_ENERGY", "BAND_TAPS", "GEOM_BETA", "GEOM_TAPS",
]
