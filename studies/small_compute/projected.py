"""A discriminator on frozen pretrained features, after Projected GAN (Sauer et al. 2021), for small compute.

The image goes through the convolutional trunk of an ImageNet VGG16 (the LPIPS copy the package already uses
for perceptual path length; frozen, never trained, never saved in checkpoints) and three of its feature maps
(relu2_2, relu3_3, relu4_3: 1/2, 1/4 and 1/8 of the image size) are each projected to ``channels`` by a fixed
random 1×1 convolution (saved, never trained). Small trainable heads read each projection: 4×4 stride-2
convolutions with spectral normalization and leaky ReLU down to 4×4, then a 4×4 convolution to a ``channels``
vector; one linear layer turns it into a logit, and for class labels the projection discriminator's term
⟨embed(c), h⟩/√channels is added. The logits of the three scales are summed.

The paper's point, which the small-compute study measured on this package's networks: a discriminator that
starts from good features tells a young generator what is wrong with its images from the first steps, so
that far fewer images are needed. R1 is not needed (the trainable part is small and spectrally normalized).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from stylegan.metrics.features import LPIPS_SCALE, LPIPS_SHIFT

#: VGG16 stages whose last ReLU the heads read (0-based: relu2_2, relu3_3, relu4_3).
TAPS = (1, 2, 3)


def _vgg_trunk(stand_in: bool):
    """The frozen VGG16 trunk: the installed LPIPS weights, or a small random stand-in (tests)."""
    from stylegan.metrics.features import LPIPS, VGGTrunk, load_lpips

    if torch.empty(0).device.type == "meta":  # parameter counting: shapes only, no weights to read
        trunk = VGGTrunk()
    else:
        trunk = (LPIPS.stand_in(widths=(8, 8, 8, 8, 8)) if stand_in else load_lpips()).trunk
    trunk.stages = trunk.stages[:max(TAPS) + 1]  # the deeper stages are not read
    return trunk.requires_grad_(False).eval()


class _Head(nn.Module):
    """Feature map [N, C, s, s] → vector [N, channels]: (4×4 stride-2 conv, leaky ReLU) down to 4×4, 4×4 conv."""

    def __init__(self, in_channels: int, channels: int, size: int):
        super().__init__()
        layers: list[nn.Module] = []
        c = in_channels
        while size > 4:
            layers += [spectral_norm(nn.Conv2d(c, channels, 4, stride=2, padding=1)), nn.LeakyReLU(0.2)]
            c, size = channels, size // 2
        layers += [spectral_norm(nn.Conv2d(c, channels, size)), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).flatten(1)


class ProjectedDiscriminator(nn.Module):
    """images [N, C, res, res] (+ labels [N, c_dim]) → logits [N, 1]. ``res`` ≥ 32 (the deepest tap is at 1/8)."""

    blocks: nn.ModuleDict  # no resolution blocks to freeze (transfer learning's --freezed has nothing to act on)

    def __init__(self, c_dim: int, resolution: int, img_channels: int, channels: int = 64,
                 stand_in: bool = False):
        super().__init__()
        if resolution < 32:
            raise ValueError(f"the projected discriminator needs images of at least 32x32, got {resolution}")
        self.c_dim, self.resolution, self.img_channels, self.channels = c_dim, resolution, img_channels, channels
        self.blocks = nn.ModuleDict()
        self._trunk = [_vgg_trunk(stand_in)]  # a list: not a submodule, so neither trained nor saved
        widths = [self._trunk[0].stages[i][-1].out_channels for i in TAPS]
        sizes = [resolution // 2 ** i for i in TAPS]
        for i, w in enumerate(widths):  # fixed random projections (Projected GAN's "CCM" without mixing)
            proj = torch.empty(channels, w, 1, 1)
            nn.init.kaiming_uniform_(proj, a=math.sqrt(5))
            self.register_buffer(f"proj{i}", proj)
            self.register_buffer(f"gain{i}", torch.zeros([]))
        self.heads = nn.ModuleList(_Head(channels, channels, s) for s in sizes)
        self.outs = nn.ModuleList(nn.Linear(channels, 1) for _ in sizes)
        self.embeds = nn.ModuleList(nn.Linear(c_dim, channels, bias=False) for _ in sizes) if c_dim else None
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).reshape(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).reshape(1, 3, 1, 1))
        self.cpu_half_dtype: torch.dtype | None = None  # the trainer's bf16 switch; this network stays float32

    def _apply(self, fn, *args, **kwargs):  # .to(device) / .float() move the frozen trunk as well
        super()._apply(fn, *args, **kwargs)
        self._trunk[0]._apply(fn)
        return self

    def features(self, img: torch.Tensor) -> list[torch.Tensor]:
        x = img.float()
        if x.shape[1] == 1:
            x = x.expand(-1, 3, -1, -1)
        x = (x - self.shift) / self.scale
        out = []
        for i, stage in enumerate(self._trunk[0].stages):
            if i > 0:
                x = F.max_pool2d(x, 2, 2)
            for conv in stage:
                x = F.relu(conv(x))
            if i in TAPS:  # projected, then scaled by a constant set on the first batch (to unit mean square)
                k = TAPS.index(i)
                p = F.conv2d(x, getattr(self, f"proj{k}"))
                gain = getattr(self, f"gain{k}")
                if float(gain) == 0:
                    with torch.no_grad():
                        gain.copy_(torch.rsqrt(p.square().mean() + 1e-8))
                out.append(p * gain)
        return out

    def forward(self, img: torch.Tensor, c: torch.Tensor | None = None, force_fp32: bool = False) -> torch.Tensor:
        if img.ndim != 4 or img.shape[1:] != (self.img_channels, self.resolution, self.resolution):
            raise ValueError(f"D expects images [N, {self.img_channels}, {self.resolution}, {self.resolution}], "
                             f"got {tuple(img.shape)}")
        n = img.shape[0]
        if self.c_dim and (c is None or tuple(c.shape) != (n, self.c_dim)):
            raise ValueError(f"this discriminator is conditional: c must have shape [{n}, {self.c_dim}], got "
                             f"{None if c is None else tuple(c.shape)}")
        logits = img.new_zeros(n, 1, dtype=torch.float32)
        for i, f in enumerate(self.features(img)):
            h = self.heads[i](f)
            logits = logits + self.outs[i](h)
            if self.embeds is not None:
                logits = logits + (self.embeds[i](c.float()) * h).sum(dim=1, keepdim=True) / math.sqrt(self.channels)
        return logits
