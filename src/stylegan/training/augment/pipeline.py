"""The ADA augmentation pipeline (:class:`AugmentPipe`) and its named variants (:data:`PIPELINES`); the
transforms and their parameter distributions are listed in the package docstring
(:mod:`stylegan.training.augment`).
"""
from __future__ import annotations

import math

import torch

from stylegan.config import AUGMENT_PIPELINES as PIPELINES
from stylegan.training.augment.filters import BAND_ENERGY, GEOM_FILTER, band_filters, filter_bands, symmetric_index
from stylegan.training.augment.warp import eye3, rotation_matrix, scale_matrix, translation_matrix, warp_affine

__all__ = ["AugmentPipe", "GROUPS", "TRANSFORMS", "PIPELINES", "DEFAULT_PIPELINE"]

# Transforms of each group, in the order the pipeline applies them.
GROUPS: dict[str, tuple[str, ...]] = {
    "blit": ("xflip", "rotate90", "xint"),
    "geom": ("scale", "rotate", "aniso", "xfrac"),
    "color": ("brightness", "contrast", "lumaflip", "hue", "saturation"),
    "filter": ("imgfilter",),
    "noise": ("noise",),
    "cutout": ("cutout",),
}
TRANSFORMS: tuple[str, ...] = tuple(t for g in GROUPS.values() for t in g)

DEFAULT_PIPELINE = "bgc"


def _bernoulli(prob: float, n: int, device) -> torch.Tensor:
    """[n] bool draws, each True with probability ``prob`` (clamped to [0, 1])."""
    return torch.rand(n, device=device) < min(max(prob, 0.0), 1.0)


class AugmentPipe(torch.nn.Module):
    """ADA augmentation pipeline; see the package docstring for the transforms and their distributions.

    Each ``<transform>`` argument is that transform's probability multiplier (0 disables it); the ``*_std`` /
    ``*_max`` arguments are the parameter distributions' spreads (paper defaults). ``p`` is the strength.
    ``interp`` is ``grid_sample``'s mode for the geometric warp (``"bicubic"`` or ``"bilinear"``).
    """

    def __init__(self, xflip=0.0, rotate90=0.0, xint=0.0, xint_max=0.125,
                 scale=0.0, rotate=0.0, aniso=0.0, xfrac=0.0, scale_std=0.2, rotate_max=1.0, aniso_std=0.2,
                 xfrac_std=0.125,
                 brightness=0.0, contrast=0.0, lumaflip=0.0, hue=0.0, saturation=0.0, brightness_std=0.2,
                 contrast_std=0.5, hue_max=1.0, saturation_std=1.0,
                 imgfilter=0.0, imgfilter_bands=(1.0, 1.0, 1.0, 1.0), imgfilter_std=1.0,
                 noise=0.0, cutout=0.0, noise_std=0.1, cutout_size=0.5,
                 p: float = 0.0, interp: str = "bicubic"):
        super().__init__()
        self.register_buffer("p", torch.tensor(float(p), dtype=torch.float32))
        self.xflip, self.rotate90, self.xint, self.xint_max = float(xflip), float(rotate90), float(xint), xint_max
        self.scale, self.rotate, self.aniso, self.xfrac = float(scale), float(rotate), float(aniso), float(xfrac)
        self.scale_std, self.rotate_max, self.aniso_std, self.xfrac_std = scale_std, rotate_max, aniso_std, xfrac_std
        self.brightness, self.contrast, self.lumaflip = float(brightness), float(contrast), float(lumaflip)
        self.hue, self.saturation = float(hue), float(saturation)
        self.brightness_std, self.contrast_std = brightness_std, contrast_std
        self.hue_max, self.saturation_std = hue_max, saturation_std
        self.imgfilter, self.imgfilter_std = float(imgfilter), imgfilter_std
        self.imgfilter_bands = tuple(float(b) for b in imgfilter_bands)
        self.noise, self.cutout, self.noise_std, self.cutout_size = float(noise), float(cutout), noise_std, cutout_size
        if interp not in ("bicubic", "bilinear"):
            raise ValueError(f"interp must be 'bicubic' or 'bilinear', got {interp!r}")
        self.interp = interp
        self.register_buffer("geom_filter", torch.tensor(GEOM_FILTER), persistent=False)
        self.register_buffer("bands", band_filters(), persistent=False)
        #: When True, ``last_applied`` holds, after each call, a bool [N] mask per transform of the images that
        #: transform was applied to (drawn to be applied, whatever its random parameter turned out to be).
        self.record = False
        self.last_applied: dict[str, torch.Tensor] = {}

    # -------------------------------------------------------------- construction / strength
    @classmethod
    def from_name(cls, name: str = DEFAULT_PIPELINE, p: float = 0.0, **overrides) -> "AugmentPipe":
        """A named pipeline (``bgc``, ``bgcfnc``, ``blit``, ...; see :data:`PIPELINES`) with every transform
        of its groups at weight 1; ``overrides`` change constructor arguments."""
        if name not in PIPELINES:
            raise ValueError(f"unknown augmentation pipeline {name!r}; choose from {', '.join(PIPELINES)}")
        kw = {t: 1.0 for g in PIPELINES[name] for t in GROUPS[g]}
        kw.update(overrides)
        return cls(p=p, **kw)

    def __setattr__(self, name, value):
        if name == "p" and "_buffers" in self.__dict__ and "p" in self._buffers and not isinstance(value, torch.Tensor):
            self.set_p(value)
            return
        super().__setattr__(name, value)

    def set_p(self, value: float) -> None:
        """Set the strength (in place, keeping the buffer's device)."""
        self._buffers["p"].fill_(float(value))

    def enabled(self) -> dict[str, float]:
        """Transforms with a non-zero weight."""
        return {t: getattr(self, t) for t in TRANSFORMS if getattr(self, t) != 0}

    def extra_repr(self) -> str:
        enabled = ", ".join(f"{k}={v:g}" for k, v in self.enabled().items())
        return f"p={float(self.p):.4f}, interp={self.interp}, {enabled}"

    # -------------------------------------------------------------- forward
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4:
            raise ValueError(f"AugmentPipe expects NCHW images, got shape {tuple(x.shape)}")
        p = float(self.p)
        self.last_applied = {}
        if p <= 0 or not self.enabled():
            return x
        dtype = x.dtype
        y = x if dtype in (torch.float32, torch.float64) else x.float()
        y = self._blit(y, p)
        y = self._geom(y, p)
        y = self._color(y, p)
        y = self._filter(y, p)
        y = self._noise(y, p)
        y = self._cutout(y, p)
        return y if y.dtype == dtype else y.to(dtype)

    def _mask(self, name: str, prob: float, n: int, device) -> torch.Tensor:
        m = _bernoulli(prob, n, device)
        if self.record:
            self.last_applied[name] = m.detach().clone()
        return m

    def _blit(self, x: torch.Tensor, p: float) -> torch.Tensor:
        if not (self.xflip or self.rotate90 or self.xint):
            return x
        n, c, h, w = x.shape
        dev = x.device
        sel = torch.zeros(n, dtype=torch.bool, device=dev)
        # Doubled, centred integer coordinates of the output pixels: X2 = 2j + 1 − W (exact integers).
        X2 = (2 * torch.arange(w, device=dev) + 1 - w).view(1, 1, w).expand(n, h, w)
        Y2 = (2 * torch.arange(h, device=dev) + 1 - h).view(1, h, 1).expand(n, h, w)
        flip = torch.zeros(n, dtype=torch.bool, device=dev)
        k = torch.zeros(n, dtype=torch.long, device=dev)
        tx = torch.zeros(n, dtype=torch.long, device=dev)
        ty = torch.zeros(n, dtype=torch.long, device=dev)
        if self.xflip:
            m = self._mask("xflip", self.xflip * p, n, dev)
            flip = m & (torch.rand(n, device=dev) < 0.5)
            sel |= flip
        if self.rotate90:
            m = self._mask("rotate90", self.rotate90 * p, n, dev)
            kk = torch.randint(0, 4, (n,), device=dev)
            if h != w:
                kk = kk // 2 * 2  # quarter turns do not map a non-square pixel grid onto itself
            k = torch.where(m, kk, k)
            sel |= k != 0
        if self.xint:
            m = self._mask("xint", self.xint * p, n, dev)
            t = (torch.rand(n, 2, device=dev) * 2 - 1) * self.xint_max
            tx = torch.where(m, torch.round(t[:, 0] * w).long(), tx)
            ty = torch.where(m, torch.round(t[:, 1] * h).long(), ty)
            sel |= (tx != 0) | (ty != 0)
        # Forward: flip, then rotate by k quarter turns, then translate. Source of an output pixel: undo them
        # in reverse order.
        sx, sy = X2 - 2 * tx.view(n, 1, 1), Y2 - 2 * ty.view(n, 1, 1)
        kv = k.view(n, 1, 1)
        # Undo a quarter turn q times: (x, y) -> (y, −x) per turn (inverse of (x, y) -> (−y, x)).
        rx = torch.where(kv == 0, sx, torch.where(kv == 1, sy, torch.where(kv == 2, -sx, -sy)))
        ry = torch.where(kv == 0, sy, torch.where(kv == 1, -sx, torch.where(kv == 2, -sy, sx)))
        rx = torch.where(flip.view(n, 1, 1), -rx, rx)
        ix = symmetric_index(torch.div(rx + w - 1, 2, rounding_mode="floor"), w)
        iy = symmetric_index(torch.div(ry + h - 1, 2, rounding_mode="floor"), h)
        idx = (iy * w + ix).reshape(n, 1, h * w).expand(n, c, h * w)
        out = x.reshape(n, c, h * w).gather(2, idx).reshape(n, c, h, w)
        return torch.where(sel.view(n, 1, 1, 1), out, x)

    def _geom(self, x: torch.Tensor, p: float) -> torch.Tensor:
        if not (self.scale or self.rotate or self.aniso or self.xfrac):
            return x
        n, c, h, w = x.shape
        dev = x.device
        inv = eye3(n, dev)
        sel = torch.zeros(n, dtype=torch.bool, device=dev)
        one = torch.ones(n, device=dev)
        # Forward transforms T1 (first) ... Tk; the sampling map is T1⁻¹ ··· Tk⁻¹ (output -> input).
        if self.scale:
            m = self._mask("scale", self.scale * p, n, dev)
            s = torch.where(m, torch.exp2(torch.randn(n, device=dev) * self.scale_std), one)
            inv = inv @ scale_matrix(1 / s, 1 / s)
            sel |= m
        p_rot = 1 - math.sqrt(max(1 - min(self.rotate * p, 1.0), 0.0))
        if self.rotate:
            m = self._mask("rotate", p_rot, n, dev)
            theta = torch.where(m, (torch.rand(n, device=dev) * 2 - 1) * math.pi * self.rotate_max, 0 * one)
            inv = inv @ rotation_matrix(-theta)
            sel |= m
        if self.aniso:
            m = self._mask("aniso", self.aniso * p, n, dev)
            s = torch.where(m, torch.exp2(torch.randn(n, device=dev) * self.aniso_std), one)
            inv = inv @ scale_matrix(1 / s, s)
            sel |= m
        if self.rotate:
            m = _bernoulli(p_rot, n, dev)
            if self.record:
                self.last_applied["rotate"] = self.last_applied["rotate"] | m
            theta = torch.where(m, (torch.rand(n, device=dev) * 2 - 1) * math.pi * self.rotate_max, 0 * one)
            inv = inv @ rotation_matrix(-theta)
            sel |= m
        if self.xfrac:
            m = self._mask("xfrac", self.xfrac * p, n, dev)
            t = torch.randn(n, 2, device=dev) * self.xfrac_std
            t = torch.where(m.view(n, 1), t, 0 * t)
            inv = inv @ translation_matrix(-t[:, 0] * w, -t[:, 1] * h)
            sel |= m
        idx = sel.nonzero().flatten()
        if idx.numel() == 0:
            return x
        warped = warp_affine(x.index_select(0, idx), inv.index_select(0, idx), mode=self.interp,
                             taps=self.geom_filter)
        return x.index_copy(0, idx, warped)

    def _color(self, x: torch.Tensor, p: float) -> torch.Tensor:
        if not (self.brightness or self.contrast or self.lumaflip or self.hue or self.saturation):
            return x
        n, c, h, w = x.shape
        dev = x.device
        eye = torch.eye(c, device=dev)
        mat = eye.expand(n, c, c).clone()  # y = mat @ x + off
        off = torch.zeros(n, c, device=dev)
        sel = torch.zeros(n, dtype=torch.bool, device=dev)
        v = torch.full((c,), 1 / math.sqrt(c), device=dev)  # luma axis
        vv = torch.outer(v, v)
        one = torch.ones(n, device=dev)

        def then(a: torch.Tensor, b: torch.Tensor | None = None):
            nonlocal mat, off
            mat = a @ mat
            off = (a @ off.unsqueeze(2)).squeeze(2) + (0 if b is None else b)

        if self.brightness:
            m = self._mask("brightness", self.brightness * p, n, dev)
            b = torch.where(m, torch.randn(n, device=dev) * self.brightness_std, 0 * one)
            off = off + b.view(n, 1)
            sel |= m
        if self.contrast:
            m = self._mask("contrast", self.contrast * p, n, dev)
            s = torch.where(m, torch.exp2(torch.randn(n, device=dev) * self.contrast_std), one)
            then(s.view(n, 1, 1) * eye)
            sel |= m
        if self.lumaflip:
            m = self._mask("lumaflip", self.lumaflip * p, n, dev)
            i = (m & (torch.rand(n, device=dev) < 0.5)).float()
            then(eye - 2 * i.view(n, 1, 1) * vv)
            sel |= i > 0
        if self.hue and c == 3:
            m = self._mask("hue", self.hue * p, n, dev)
            theta = torch.where(m, (torch.rand(n, device=dev) * 2 - 1) * math.pi * self.hue_max, 0 * one)
            q = 1 / math.sqrt(3)  # cross-product matrix [v]× of the luma axis
            cross = torch.tensor([[0.0, -q, q], [q, 0.0, -q], [-q, q, 0.0]], device=dev)
            ct, st = torch.cos(theta).view(n, 1, 1), torch.sin(theta).view(n, 1, 1)
            then(ct * eye + st * cross + (1 - ct) * vv)  # Rodrigues' rotation about v
            sel |= m
        if self.saturation and c > 1:
            m = self._mask("saturation", self.saturation * p, n, dev)
            s = torch.where(m, torch.exp2(torch.randn(n, device=dev) * self.saturation_std), one)
            then(vv + s.view(n, 1, 1) * (eye - vv))
            sel |= m
        y = torch.einsum("nij,njhw->nihw", mat.to(x.dtype), x) + off.to(x.dtype).view(n, c, 1, 1)
        return torch.where(sel.view(n, 1, 1, 1), y, x)

    def _filter(self, x: torch.Tensor, p: float) -> torch.Tensor:
        if not self.imgfilter:
            return x
        n = x.shape[0]
        dev = x.device
        gains = torch.ones(n, 4, device=dev)
        sel = torch.zeros(n, dtype=torch.bool, device=dev)
        for b, weight in enumerate(self.imgfilter_bands):
            m = _bernoulli(self.imgfilter * weight * p, n, dev)
            g = torch.exp2(torch.randn(n, device=dev) * self.imgfilter_std)
            gains[:, b] = torch.where(m, g, gains[:, b])
            sel |= m
        if self.record:
            self.last_applied["imgfilter"] = sel.clone()
        idx = sel.nonzero().flatten()
        if idx.numel() == 0:
            return x
        lam = torch.tensor(BAND_ENERGY, device=dev)
        g = gains.index_select(0, idx)
        g = (g / (lam * g.square()).sum(dim=1, keepdim=True).sqrt()).to(x.dtype)
        xs = filter_bands(x.index_select(0, idx), g, self.bands.to(device=dev, dtype=x.dtype))
        return x.index_copy(0, idx, xs)

    def _noise(self, x: torch.Tensor, p: float) -> torch.Tensor:
        if not self.noise:
            return x
        n = x.shape[0]
        m = self._mask("noise", self.noise * p, n, x.device)
        sigma = torch.where(m, torch.randn(n, device=x.device).abs() * self.noise_std, torch.zeros(n, device=x.device))
        return torch.where(m.view(n, 1, 1, 1), x + torch.randn_like(x) * sigma.view(n, 1, 1, 1), x)

    def _cutout(self, x: torch.Tensor, p: float) -> torch.Tensor:
        if not self.cutout:
            return x
        n, c, h, w = x.shape
        dev = x.device
        m = self._mask("cutout", self.cutout * p, n, dev)
        centre = torch.rand(n, 2, device=dev)
        ux = ((torch.arange(w, device=dev) + 0.5) / w).view(1, 1, w)
        uy = ((torch.arange(h, device=dev) + 0.5) / h).view(1, h, 1)
        inside = ((ux - centre[:, 0].view(n, 1, 1)).abs() < self.cutout_size / 2) & \
                 ((uy - centre[:, 1].view(n, 1, 1)).abs() < self.cutout_size / 2)
        cut = inside & m.view(n, 1, 1)
        return torch.where(cut.unsqueeze(1), torch.zeros((), device=dev, dtype=x.dtype), x)
