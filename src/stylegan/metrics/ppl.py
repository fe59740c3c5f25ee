"""Perceptual path length (StyleGAN §4.1; StyleGAN2 §3.2).

For random latent pairs (z₀, z₁) and t, the images at t and t + ε along the path (ε = 1e-4) are compared with
LPIPS(VGG16); the length is d / ε². Z space interpolates z by slerp and maps both points; W space maps z₀, z₁
and interpolates w linearly. ``full`` draws t ~ U(0, 1); ``end`` takes the path end point t = 0 (with random
z₀, z₁ the two end points t ∈ {0, 1} are the same in distribution, and t + ε stays on the path). Images are
generated with constant noise, optionally cropped to the face region (StyleGAN's ``ppl_*``: rows 3/8-7/8,
columns 2/8-6/8; StyleGAN2's ``ppl2_wend`` uses the whole image), box-downsampled to at most 256×256, and the
mean is taken over the samples between the 1st and 99th percentiles.

Formulas: docs/design.md §4.4.
"""
from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from stylegan.metrics.stats import _generator_device, label_sampler


def normalize(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True)


def slerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between the directions of a and b (rows), t of shape [N] or [N, 1]."""
    a, b = normalize(a), normalize(b)
    t = t.reshape(-1, 1)
    d = (a * b).sum(dim=-1, keepdim=True).clamp(-1, 1)
    p = t * torch.acos(d)
    c = normalize(b - d * a)
    return normalize(a * torch.cos(p) + c * torch.sin(p))


def lerp(a: torch.Tensor, b: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    return a + (b - a) * t.reshape(-1, *([1] * (a.ndim - 1)))


def face_crop(img: torch.Tensor) -> torch.Tensor:
    """StyleGAN's central face region: rows [3/8, 7/8), columns [2/8, 6/8) of the image."""
    c = img.shape[2] // 8
    return img[:, :, c * 3:c * 7, c * 2:c * 6]


def downsample_to_256(img: torch.Tensor) -> torch.Tensor:
    factor = img.shape[2] // 256
    if factor > 1:
        n, ch, h, w = img.shape
        img = img.reshape(n, ch, h // factor, factor, w // factor, factor).mean(dim=(3, 5))
    return img


def filtered_mean(dist: np.ndarray) -> float:
    """Mean of the values between the 1st and 99th percentiles (inclusive), as the authors reported PPL."""
    lo = np.percentile(dist, 1, method="lower")
    hi = np.percentile(dist, 99, method="higher")
    return float(np.extract(np.logical_and(dist >= lo, dist <= hi), dist).mean())


@torch.no_grad()
def path_lengths(G, lpips, num_samples: int, epsilon: float = 1e-4, space: str = "w", sampling: str = "end",
                 crop: bool = False, batch_size: int = 8, seed: int = 0, labels=None,
                 progress: bool = True) -> np.ndarray:
    """The per-sample lengths d / ε² (float64 array of ``num_samples``)."""
    if space not in ("z", "w"):
        raise ValueError(f"space must be 'z' or 'w', got {space!r}")
    if sampling not in ("full", "end"):
        raise ValueError(f"sampling must be 'full' or 'end', got {sampling!r}")
    device = _generator_device(G)
    labels = labels or label_sampler(G, None, seed)
    g = torch.Generator().manual_seed(seed)
    out = []
    bar = tqdm(total=num_samples, desc=f"ppl {space}{sampling}", unit="path", disable=not progress, leave=False)
    done = 0
    while done < num_samples:
        n = min(batch_size, num_samples - done)
        z0 = torch.randn(n, G.z_dim, generator=g).to(device)
        z1 = torch.randn(n, G.z_dim, generator=g).to(device)
        t = (torch.rand(n, generator=g) * (1.0 if sampling == "full" else 0.0)).to(device)
        c = labels(n)
        cc = torch.cat([c, c]).to(device) if c is not None else None
        if space == "w":
            w0, w1 = G.mapping(torch.cat([z0, z1]), cc).chunk(2)
            ws = torch.cat([lerp(w0, w1, t), lerp(w0, w1, t + epsilon)])
        else:
            zs = torch.cat([slerp(z0, z1, t), slerp(z0, z1, t + epsilon)])
            ws = G.mapping(zs, cc)
        img = G.synthesis(ws, noise_mode="const").to(torch.float32)
        if crop:
            img = face_crop(img)
        img = downsample_to_256(img)
        d = lpips(*img.chunk(2)) / epsilon ** 2
        out.append(d.cpu().double().numpy())  # float64 on the CPU (MPS has none)
        done += n
        bar.update(n)
    bar.close()
    return np.concatenate(out)


def perceptual_path_length(G, lpips, num_samples: int = 100_000, epsilon: float = 1e-4, space: str = "w",
                           sampling: str = "end", crop: bool = False, batch_size: int = 8, seed: int = 0,
                           labels=None, progress: bool = True) -> float:
    """PPL: the filtered mean of :func:`path_lengths`."""
    return filtered_mean(path_lengths(G, lpips, num_samples, epsilon, space, sampling, crop, batch_size, seed,
                                      labels, progress))
