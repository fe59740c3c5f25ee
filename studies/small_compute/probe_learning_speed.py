"""How fast can the small generator learn digits at all? A probe of the small-compute study (studies/small_compute/README.md).

An encoder (the small discriminator's trunk, its last layer widened to w) and a decoder are trained together to
reconstruct the built-in mnist5k digits, by mean squared error, for a fixed wall-clock time; the decoder is the
small StyleGAN2 synthesis network (w broadcast to every layer) or, for comparison, a plain convolutional
decoder (linear layer to 4×4×64, then three times upsampling and a 3×3 convolution). Supervised
reconstruction is an upper bound on how fast a GAN can teach the same network w-dependent shapes. Prints the
error every 50 steps and at the end on 16 fixed digits of all classes (predicting the mean digit gives the
data's variance, 0.21); ``--save`` writes those 16 digits over their reconstructions. Usage::

    OMP_NUM_THREADS=1 python studies/small_compute/probe_learning_speed.py --decoder stylegan2 --beta1 0.9 --seconds 110
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


class PlainDecoder(nn.Module):
    """w → linear → 4×4×64 → (upsample ×2, 3×3 conv, leaky ReLU) × 3 → 3×3 conv to one channel; PyTorch's
    default initialization, no equalized learning rate."""

    def __init__(self, w_dim: int):
        super().__init__()
        self.fc = nn.Linear(w_dim, 64 * 16)
        layers: list[nn.Module] = []
        for cin, cout in ((64, 64), (64, 64), (64, 32)):
            layers += [nn.Upsample(scale_factor=2), nn.Conv2d(cin, cout, 3, padding=1), nn.LeakyReLU(0.2)]
        self.net = nn.Sequential(*layers, nn.Conv2d(32, 1, 3, padding=1))

    def forward(self, w: torch.Tensor) -> torch.Tensor:
        return self.net(F.leaky_relu(self.fc(w), 0.2).view(-1, 64, 4, 4))


def main() -> None:
    from stylegan.data import ImageDataset, resolve_data
    from stylegan.networks import build_networks
    from stylegan.networks.discriminator import Discriminator
    from stylegan.nn.equalized import EqualizedLinear
    from stylegan.presets import make_config

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--decoder", choices=["stylegan2", "plain"], default="stylegan2")
    ap.add_argument("--g-arch", choices=["skip", "orig", "resnet"], default="skip")
    ap.add_argument("--cbase", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=0.002)
    ap.add_argument("--beta1", type=float, default=0.0)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=110)
    ap.add_argument("--noise", choices=["random", "const"], default="random")
    ap.add_argument("--save", help="PNG of 16 digits over their reconstructions")
    args = ap.parse_args()

    torch.manual_seed(0)
    ds = ImageDataset(resolve_data("builtin:mnist5k", None, progress=False))
    X = torch.stack([torch.as_tensor(ds[i][0]) for i in range(len(ds))]).float() / 127.5 - 1
    cfg = make_config("small", resolution=32, img_channels=1, c_dim=0, cbase=args.cbase, g_arch=args.g_arch)
    G = build_networks(cfg, seed=0)["G"]
    E = Discriminator(0, 32, 1, cbase=cfg.D.cbase, cmax=cfg.D.cmax, mbstd_channels=0)
    E.epilogue.out = EqualizedLinear(E.epilogue.out.weight.shape[1], G.w_dim)
    if args.decoder == "plain":
        dec = PlainDecoder(G.w_dim)
        decode = dec
    else:
        dec = G.synthesis
        def decode(w):
            return dec(w.unsqueeze(1).repeat(1, G.num_ws, 1), noise_mode=args.noise)
    opt = torch.optim.Adam(list(E.parameters()) + list(dec.parameters()), lr=args.lr, betas=(args.beta1, 0.99),
                           eps=1e-8)
    start, step = time.time(), 0
    while time.time() - start < args.seconds:
        x = X[torch.randint(len(X), (args.batch,))]
        loss = (decode(E(x)) - x).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        step += 1
        if step % 50 == 0:
            print(f"step {step} t {time.time() - start:.0f}s mse {loss.item():.4f}", flush=True)
    with torch.no_grad():
        x = X[torch.arange(16) * (len(X) // 16)]  # the dataset is ordered by class: a spread of them
        rec = decode(E(x)) if args.decoder == "plain" else dec(E(x).unsqueeze(1).repeat(1, G.num_ws, 1),
                                                                  noise_mode="const")
    print(f"steps {step}; mse on 16 fixed digits {(rec - x).square().mean().item():.4f}; "
          f"variance of the data {X.var(0).mean().item():.4f}")
    if args.save:
        from PIL import Image

        a = ((torch.cat([x, rec.clamp(-1, 1)]) + 1) * 127.5).round().byte().numpy()[:, 0]
        rows = np.concatenate([np.concatenate(list(a[:16]), 1), np.concatenate(list(a[16:]), 1)], 0)
        Image.fromarray(rows).save(args.save)


if __name__ == "__main__":
    main()
