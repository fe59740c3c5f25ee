"""What keeps a GAN from collapsing in five CPU minutes? A factorial probe of the small-compute study
(studies/small_compute/README.md).

A minimal GAN loop (non-saturating logistic loss, no regularizer, one D step and one G step per batch) trains a
generator and a discriminator on the built-in mnist5k digits for a fixed wall-clock time, then scores the
generator as the study does (digit FD, class coverage of 1,000 samples, per-pixel diversity over 64 fixed
latents). Each network is either

- ``dcgan``: the DCGAN architecture at 32² (Radford et al. 2015): G z → 4×4×4w → 8×8×2w → 16×16×w → 32×32
  by 4×4 transposed convolutions, batch normalization and ReLU, tanh output; D the mirror image with strided
  4×4 convolutions and leaky ReLU, batch normalization on its middle layers; weights N(0, 0.02);
  ``--g-bn 0`` / ``--d-bn 0`` drop the batch normalization; or
- ``stylegan2``: the package's ``small`` networks (the StyleGAN2 generator; the resnet discriminator).
  ``--d-bn 1`` adds batch normalization (batch statistics only) after the convolutions of every D block but
  the first; ``--g-bn-style 1`` adds batch normalization after every modulated convolution of G (a probe of
  the mechanism; it couples the samples of a batch); ``--g-noise const`` trains without per-sample noise;
  ``--g-input 1`` adds to the generator's 4×4 constant a learned linear function of w (the "traditional
  input" of StyleGAN's Table 1, configurations A–C).

Both optimizers are Adam with the given learning rate and β (DCGAN's: 2e-4, (0.5, 0.999)); ``--g-lr`` sets
G's alone. Usage::

    OMP_NUM_THREADS=1 python studies/small_compute/probe_batchnorm_factorial.py --g dcgan --d dcgan --seconds 300 \\
        --save dcgan.png
    OMP_NUM_THREADS=1 python studies/small_compute/probe_batchnorm_factorial.py --g stylegan2 --d stylegan2 --d-bn 1 \\
        --lr 0.002 --betas 0,0.99 --batch 32 --aug 1 --seconds 300
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent))


def batchnorm(channels: int, on: bool) -> nn.Module:
    return nn.BatchNorm2d(channels) if on else nn.Identity()


class DCGANGenerator(nn.Module):
    """DCGAN's generator at 32² with ``w`` channels at 16² (4w at 4²); called as the package's G is."""

    def __init__(self, z_dim: int = 100, w: int = 64, bn: bool = True, img_channels: int = 1):
        super().__init__()
        self.z_dim, self.c_dim = z_dim, 0
        layers: list[nn.Module] = []
        for i, (cin, cout) in enumerate(((z_dim, 4 * w), (4 * w, 2 * w), (2 * w, w))):
            layers += [nn.ConvTranspose2d(cin, cout, 4, 1 if i == 0 else 2, 0 if i == 0 else 1, bias=False),
                       batchnorm(cout, bn), nn.ReLU()]
        self.net = nn.Sequential(*layers, nn.ConvTranspose2d(w, img_channels, 4, 2, 1, bias=False), nn.Tanh())

    def forward(self, z: torch.Tensor, c=None, **_) -> torch.Tensor:
        return self.net(z[:, :, None, None])


class DCGANDiscriminator(nn.Module):
    """DCGAN's discriminator at 32²: strided 4×4 convolutions w → 2w → 4w, then a 4×4 convolution to a logit."""

    def __init__(self, w: int = 64, bn: bool = True, img_channels: int = 1):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(img_channels, w, 4, 2, 1, bias=False), nn.LeakyReLU(0.2),
            nn.Conv2d(w, 2 * w, 4, 2, 1, bias=False), batchnorm(2 * w, bn), nn.LeakyReLU(0.2),
            nn.Conv2d(2 * w, 4 * w, 4, 2, 1, bias=False), batchnorm(4 * w, bn), nn.LeakyReLU(0.2),
            nn.Conv2d(4 * w, 1, 4, 1, 0, bias=False))

    def forward(self, x: torch.Tensor, c=None) -> torch.Tensor:
        return self.net(x).flatten(1)


def dcgan_init(m: nn.Module) -> None:
    if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


class BatchNormAfter(nn.Module):
    """A StyleGAN2 convolution (of D, or a modulated one of G) followed by batch normalization over the batch
    it is given (batch statistics only). In G a probe of the mechanism only: it couples the samples of a
    batch, which the StyleGAN2 generator does not."""

    def __init__(self, conv: nn.Module):
        super().__init__()
        self.conv, self.bn = conv, nn.BatchNorm2d(conv.weight.shape[0], track_running_stats=False)

    def forward(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        return self.bn(self.conv(x, *args, **kwargs))


def add_batchnorm(blocks, skip_first: bool) -> None:
    """Wrap ``conv0`` and ``conv1`` of every block in :class:`BatchNormAfter` (not the very first conv when
    ``skip_first``; not where a block has none)."""
    for i, block in enumerate(blocks):
        for k in ("conv0", "conv1"):
            conv = getattr(block, k)
            if conv is not None and not (skip_first and i == 0 and k == "conv0"):
                setattr(block, k, BatchNormAfter(conv))


class LatentInput(nn.Module):
    """The 4×4 block of the StyleGAN2 synthesis network with ``const + linear(w)`` in place of the constant."""

    def __init__(self, block: nn.Module, w_dim: int):
        from stylegan.nn.equalized import EqualizedLinear

        super().__init__()
        self.block = block
        self.fc = EqualizedLinear(w_dim, block.const.numel())
        for a in ("num_conv", "num_torgb", "use_fp16", "in_channels", "out_channels", "resolution", "shape",
                  "conv0", "conv1"):
            setattr(self, a, getattr(block, a))

    def forward(self, x, img, ws, noise_mode="random", fused=None, dtype=torch.float32, noise=None):
        b = self.block
        x = b.const.unsqueeze(0) + self.fc(ws[:, 0]).view(-1, *b.const.shape)
        x = b.conv1(x, ws[:, 0], noise_mode=noise_mode, fused=fused)
        return x, b.torgb(x, ws[:, 1], fused=fused)


def build(args) -> tuple[nn.Module, nn.Module]:
    from stylegan.networks import build_networks
    from stylegan.presets import make_config

    nets = build_networks(make_config("small", resolution=32, img_channels=1, c_dim=0), seed=args.seed)
    if args.g == "dcgan":
        G = DCGANGenerator(bn=bool(args.g_bn))
        G.apply(dcgan_init)
    else:
        G = nets["G"]
        if args.g_bn_style:
            add_batchnorm(G.synthesis.blocks.values(), skip_first=False)
        if args.g_input:
            G.synthesis.blocks["4"] = LatentInput(G.synthesis.blocks["4"], G.w_dim)
    if args.d == "dcgan":
        D = DCGANDiscriminator(bn=bool(args.d_bn))
        D.apply(dcgan_init)
    else:
        D = nets["D"]
        if args.d_bn:
            add_batchnorm(D.blocks.values(), skip_first=True)
    return G, D


def main() -> None:
    from stylegan.data import ImageDataset, resolve_data
    from stylegan.metrics.coverage import class_coverage
    from stylegan.training.diffaug import DiffAugment
    from study_small_compute import digit_fd, pixel_diversity

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--g", choices=["dcgan", "stylegan2"], default="dcgan")
    ap.add_argument("--d", choices=["dcgan", "stylegan2"], default="dcgan")
    ap.add_argument("--g-bn", type=int, default=1, help="DCGAN G: batch normalization (1) or not (0)")
    ap.add_argument("--d-bn", type=int, default=None,
                    help="batch normalization in D (default: 1 for the DCGAN D, 0 for the StyleGAN2 D)")
    ap.add_argument("--g-bn-style", type=int, default=0,
                    help="StyleGAN2 G: batch normalization after every modulated convolution (a probe)")
    ap.add_argument("--g-input", type=int, default=0, help="StyleGAN2 G: const + linear(w) at 4×4 (1) or not (0)")
    ap.add_argument("--g-noise", choices=["random", "const"], default="random",
                    help="StyleGAN2 G: the noise inputs while training (const: no per-sample noise)")
    ap.add_argument("--lr", type=float, default=2e-4)
    ap.add_argument("--g-lr", type=float, default=None, help="G's learning rate (default: --lr)")
    ap.add_argument("--betas", default="0.5,0.999")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--aug", type=int, default=0, help="DiffAugment on every D input (1) or not (0)")
    ap.add_argument("--seconds", type=float, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", help="PNG of 16 samples of the final generator")
    ap.add_argument("--json", help="append the result here as one JSON line")
    args = ap.parse_args()
    if args.d_bn is None:
        args.d_bn = int(args.d == "dcgan")

    torch.manual_seed(args.seed)
    ds = ImageDataset(resolve_data("builtin:mnist5k", None, progress=False))
    X = torch.stack([torch.as_tensor(ds[i][0]) for i in range(len(ds))]).float() / 127.5 - 1
    G, D = build(args)
    betas = tuple(float(b) for b in args.betas.split(","))
    opt_g = torch.optim.Adam(G.parameters(), lr=args.g_lr or args.lr, betas=betas)
    opt_d = torch.optim.Adam(D.parameters(), lr=args.lr, betas=betas)
    aug = DiffAugment() if args.aug else (lambda x: x)
    n, step, start = args.batch, 0, time.time()
    while time.time() - start < args.seconds:
        x = X[torch.randint(len(X), (n,))]
        fake = G(torch.randn(n, G.z_dim), None, noise_mode=args.g_noise)
        # Real and generated images go through D as separate batches: with batch normalization each is
        # normalized by its own statistics.
        loss_d = F.softplus(D(aug(fake.detach()), None)).mean() + F.softplus(-D(aug(x), None)).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()
        loss_g = F.softplus(-D(aug(fake), None)).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        step += 1
        if step % 100 == 0:
            print(f"step {step} kimg {step * n / 1000:.1f} t {time.time() - start:.0f}s "
                  f"loss G {loss_g.item():.3f} D {loss_d.item():.3f}", flush=True)
    # A DCGAN generator is sampled as it was trained: batch statistics (the running ones lag behind).
    result = {**vars(args), "steps": step, "kimg": step * n / 1000}
    with torch.no_grad():
        result["diversity"] = round(pixel_diversity(G), 4)
        result["digit_fd"] = round(digit_fd(G), 1)
        cov = class_coverage(G, progress=False)
    result.update({k: cov[k] for k in ("classes_covered", "class_kl", "confident")})
    print(json.dumps(result))
    if args.json:
        with open(args.json, "a") as f:
            f.write(json.dumps(result) + "\n")
    if args.save:
        from PIL import Image

        with torch.no_grad():
            img = G(torch.randn(16, G.z_dim, generator=torch.Generator().manual_seed(1)), None, noise_mode="const")
        a = ((img.clamp(-1, 1) + 1) * 127.5).round().byte().numpy()[:, 0]
        Image.fromarray(np.concatenate(list(a), 1)).save(args.save)


if __name__ == "__main__":
    main()
