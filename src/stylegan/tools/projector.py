"""Projection of an image into the latent space (StyleGAN2 §5): optimize w (or W+, one w per layer) and the
noise maps so that the generator reproduces a target, measured by LPIPS on images downsampled to at most
256². w starts at w_avg (from 10k samples) with ramped Gaussian noise of std 0.05·σ_w·max(0, 1 − t/0.75)²;
Adam at lr 0.1 with a 5 % ramp-up and a 25 % cosine ramp-down; the noise maps are regularized at several
scales (weight 1e5) and renormalized to zero mean and unit variance after every step. A network without noise
inputs (StyleGAN3) has w alone optimized, and no noise term in its loss.
Formulas: docs/design.md §5.1."""
from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

Distance = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]  # images in [-1, 1] -> [N] distances


@dataclass
class ProjectionConfig:
    num_steps: int = 1000
    w_avg_samples: int = 10000
    initial_lr: float = 0.1
    initial_noise_factor: float = 0.05
    noise_ramp_length: float = 0.75
    lr_rampup_length: float = 0.05
    lr_rampdown_length: float = 0.25
    regularize_noise_weight: float = 1e5
    w_plus: bool = False
    seed: int = 303
    #: For a conditional network: start from this class's average w (and use its spread); None, the average
    #: over all classes.
    class_idx: int | None = None


@dataclass
class Projection:
    w: torch.Tensor  # [1, num_ws, w_dim], the ws to give G.synthesis
    noise: dict[str, torch.Tensor]  # optimized noise maps, by layer name
    image: torch.Tensor  # [1, C, H, W] in [-1, 1]
    distances: list[float] = field(default_factory=list)  # per step
    losses: list[float] = field(default_factory=list)
    w_steps: list[torch.Tensor] = field(default_factory=list)  # w after each step (for videos)

    @property
    def final_distance(self) -> float:
        return self.distances[-1]


def load_target(path: str | os.PathLike, resolution: int | tuple[int, int], channels: int) -> torch.Tensor:
    """A target image, center-cropped to the network's aspect and resized to its size (``resolution``, or
    (height, width)): [1, C, H, W] in [-1, 1]."""
    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("RGBA", "LA", "P"):
                im = im.convert("RGBA")
                bg = Image.new("RGBA", im.size, (255, 255, 255, 255))
                im = Image.alpha_composite(bg, im)
            im = im.convert("RGB" if channels == 3 else "L")
    except (OSError, UnidentifiedImageError) as e:
        raise ValueError(f"{path}: cannot read the target image ({e})") from None
    th, tw = (resolution, resolution) if isinstance(resolution, int) else resolution
    w, h = im.size
    cw, ch = (h * tw // th, h) if w * th >= h * tw else (w, w * th // tw)   # the largest centered box
    im = im.crop(((w - cw) // 2, (h - ch) // 2, (w - cw) // 2 + cw, (h - ch) // 2 + ch))
    im = im.resize((tw, th), Image.LANCZOS)
    a = np.asarray(im, dtype=np.float32)
    a = a[..., None] if a.ndim == 2 else a
    return torch.from_numpy(a).permute(2, 0, 1).unsqueeze(0) / 127.5 - 1


def to_lpips_size(img: torch.Tensor) -> torch.Tensor:
    """Images larger than 256² are area-downsampled to 256² before LPIPS, as in the paper."""
    if img.shape[2] > 256:
        img = F.interpolate(img, size=(256, 256), mode="area")
    return img


def noise_regularization(noise: dict[str, torch.Tensor]) -> torch.Tensor:
    """Σ over maps and scales of the squared autocorrelation at one-pixel shifts (down to 8×8)."""
    reg = 0.0
    for v in noise.values():
        v = v.reshape(1, 1, *v.shape[-2:])
        while True:
            reg = reg + (v * torch.roll(v, 1, dims=3)).mean() ** 2 + (v * torch.roll(v, 1, dims=2)).mean() ** 2
            if v.shape[2] <= 8:
                break
            v = F.avg_pool2d(v, 2)
    return reg


def w_statistics(G, samples: int, seed: int, class_idx: int | None = None) -> tuple[torch.Tensor, float]:
    """The mean w [1, w_dim] and the spread of w over ``samples`` latents: of class ``class_idx`` for a
    conditional network, or of random classes without one."""
    device = next(G.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(samples, G.z_dim, generator=gen).to(device)
    c = None
    if class_idx is not None and not 0 <= class_idx < G.c_dim:
        raise ValueError(f"class {class_idx} is not a class of this network" + (
            f": give 0-{G.c_dim - 1}" if G.c_dim else " (it is unconditional)"))
    if G.c_dim:
        labels = torch.randint(G.c_dim, (samples,), generator=gen) if class_idx is None else \
            torch.full((samples,), class_idx)
        c = F.one_hot(labels, G.c_dim).float().to(device)
    with torch.no_grad():
        w = torch.cat([G.mapping(z[i:i + 1000], None if c is None else c[i:i + 1000])[:, 0]
                       for i in range(0, samples, 1000)])
    w_avg = w.mean(0, keepdim=True)
    w_std = float(((w - w_avg).square().sum() / samples).sqrt())
    return w_avg, w_std


def project(G, target: torch.Tensor, distance: Distance, cfg: ProjectionConfig = ProjectionConfig(),
            progress: bool = True, keep_steps: bool = False) -> Projection:
    """Optimize w (and noise) so that ``G.synthesis`` reproduces ``target`` ([1, C, R, R] in [−1, 1])."""
    device = next(G.parameters()).device
    h, w = G.img_shape
    if target.shape[1:] != (G.img_channels, h, w):
        raise ValueError(f"target must be [1, {G.img_channels}, {h}, {w}], got {tuple(target.shape)}")
    if cfg.num_steps < 1:
        raise ValueError("num_steps must be >= 1")
    torch.manual_seed(cfg.seed)
    w_avg, w_std = w_statistics(G, cfg.w_avg_samples, cfg.seed, cfg.class_idx)
    noise = {name: torch.randn(1, 1, *shape, device=device, requires_grad=True)
             for name, shape in G.synthesis.noise_shapes().items()}
    w_opt = (w_avg.unsqueeze(1).repeat(1, G.num_ws, 1) if cfg.w_plus else w_avg.unsqueeze(1)).clone()
    w_opt.requires_grad_(True)
    opt = torch.optim.Adam([w_opt, *noise.values()], betas=(0.9, 0.999), lr=cfg.initial_lr)
    target = target.to(device)
    target_small = to_lpips_size(target)
    G.requires_grad_(False)

    result = Projection(w=w_opt.detach(), noise={}, image=target)
    steps = tqdm(range(cfg.num_steps), desc="project", disable=not progress)
    for step in steps:
        t = step / cfg.num_steps
        w_noise_scale = w_std * cfg.initial_noise_factor * max(0.0, 1.0 - t / cfg.noise_ramp_length) ** 2
        lr_ramp = min(1.0, (1.0 - t) / cfg.lr_rampdown_length)
        lr_ramp = 0.5 - 0.5 * math.cos(lr_ramp * math.pi)
        lr_ramp = lr_ramp * min(1.0, t / cfg.lr_rampup_length)
        for g in opt.param_groups:
            g["lr"] = cfg.initial_lr * lr_ramp

        ws = w_opt + torch.randn_like(w_opt) * w_noise_scale
        ws = ws.expand(1, G.num_ws, -1) if not cfg.w_plus else ws
        img = G.synthesis(ws, noise_mode="none", noise=noise)
        dist = distance(to_lpips_size(img), target_small).sum()
        loss = dist + noise_regularization(noise) * cfg.regularize_noise_weight if noise else dist
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            for v in noise.values():
                v -= v.mean()
                v *= v.square().mean().rsqrt()
        result.distances.append(float(dist.detach()))
        result.losses.append(float(loss.detach()))
        if keep_steps:
            result.w_steps.append(w_opt.detach().clone())
        steps.set_postfix_str(f"dist {result.distances[-1]:.4f} loss {result.losses[-1]:.4f}")

    with torch.no_grad():
        w_final = w_opt.detach().expand(1, G.num_ws, -1).clone() if not cfg.w_plus else w_opt.detach().clone()
        noise_final = {k: v.detach().clone() for k, v in noise.items()}
        image = G.synthesis(w_final, noise_mode="none", noise=noise_final)
        final = float(distance(to_lpips_size(image), target_small).sum())
    result.distances.append(final)
    result.w, result.noise, result.image = w_final, noise_final, image
    return result


def generator_fingerprint(G) -> str:
    """SHA-256 (16 hex digits) of a generator's weights and buffers: which network a projection was made with."""
    import hashlib

    h = hashlib.sha256()
    for name, t in sorted(G.state_dict().items()):
        h.update(f"{name}:{t.dtype}:{tuple(t.shape)};".encode())
        h.update(t.detach().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


def save_projected_w(path: str | os.PathLike, proj: Projection, G=None) -> Path:
    """``projected_w.npz`` with ``w`` [1, num_ws, w_dim] (what ``stylegan generate --projected-w`` reads, as the
    authors' files), and with ``G`` given the :func:`generator_fingerprint` of the network it was projected with."""
    from stylegan.files import atomic_write_npz

    extra = {} if G is None else {"network": np.array(generator_fingerprint(G))}
    return atomic_write_npz(path, w=proj.w.cpu().numpy(), **extra)


def load_projected_w(path: str | os.PathLike, G, warn: Callable[[str], None] | None = None) -> torch.Tensor:
    """ws [N, num_ws, w_dim] from a ``projected_w.npz``, checked against the network. A file that names another
    network than ``G`` (same shapes, other weights: a fine-tuned copy, another training run) is used, with a
    ``warn`` of one line: rendering a projection with a network fine-tuned from the projected one is a use."""
    try:
        with np.load(path, allow_pickle=False) as data:
            w = torch.from_numpy(np.asarray(data["w"], dtype=np.float32))
            network = str(data["network"]) if "network" in data.files else None
    except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as e:  # an empty or truncated file too
        raise ValueError(f"{path}: not a projected_w.npz with a 'w' array ({e or type(e).__name__})") from None
    if w.ndim == 2:
        w = w.unsqueeze(0)
    if w.ndim != 3 or w.shape[1:] != (G.num_ws, G.w_dim) or not len(w):
        raise ValueError(f"{path}: w has shape {tuple(w.shape)}, the network needs [N, {G.num_ws}, {G.w_dim}], N ≥ 1")
    if not torch.isfinite(w).all():
        raise ValueError(f"{path}: w holds nan or infinite values")
    if network is not None and warn is not None and network != (mine := generator_fingerprint(G)):
        warn(f"{path} was projected with another network (weights {network}, this one's {mine}): "
             "its images will differ from that projection's")
    return w
