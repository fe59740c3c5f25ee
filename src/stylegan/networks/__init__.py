"""Networks built from :mod:`stylegan.nn`: mapping, synthesis, generator, discriminator."""
from __future__ import annotations

import copy

import torch
from torch import nn

from stylegan.config import ALIAS_FREE_ARCHS, NetworkConfig
from stylegan.networks.discriminator import Discriminator
from stylegan.networks.generator import Generator, mix_styles
from stylegan.networks.mapping import MappingNetwork, truncate
from stylegan.networks.synthesis import SynthesisNetwork


def build_generator(config: NetworkConfig) -> nn.Module:
    """StyleGAN2's generator (and the progressive ones), or the alias-free one for ``G.arch`` stylegan3-t/-r."""
    if config.G.arch in ALIAS_FREE_ARCHS:
        from stylegan.networks.stylegan3 import AliasFreeGenerator

        return AliasFreeGenerator(config.G)
    return Generator(config.G)


def build_discriminator(config: NetworkConfig) -> nn.Module:
    """StyleGAN2's discriminator, or ProGAN's (growing, or average-pool down) for the older configurations."""
    d = config.D
    if d.progressive:
        from stylegan.networks.progressive import ProgressiveDiscriminator

        return ProgressiveDiscriminator(d)
    return Discriminator(d.c_dim, d.resolution, d.img_channels, cbase=d.cbase, cmax=d.cmax, architecture=d.arch,
                         mbstd_group=d.mbstd_group, mbstd_channels=d.mbstd_channels, cmap_dim=d.cmap_dim,
                         num_fp16_res=d.num_fp16_res, conv_clamp=d.conv_clamp, mbstd_gain=d.mbstd_gain,
                         base_h=d.base_h, base_w=d.base_w, uncond_head=d.uncond_head)


def build_networks(config: NetworkConfig, seed: int | None = None) -> dict[str, nn.Module]:
    """G, its EMA copy G_ema (initially equal), and D, freshly initialized from the config.

    With ``seed`` the initialization is reproducible and the global random state is left untouched."""
    config.validate()
    with torch.random.fork_rng(devices=[]):
        if seed is not None:
            torch.manual_seed(seed)
        G = build_generator(config)
        D = build_discriminator(config)
    G_ema = copy.deepcopy(G).eval().requires_grad_(False)
    return {"G": G, "G_ema": G_ema, "D": D}


def num_parameters(module: nn.Module) -> int:
    """Trainable parameters (all ``nn.Parameter``s; buffers such as w_avg and noise constants excluded)."""
    return sum(p.numel() for p in module.parameters())


def parameter_counts(config: NetworkConfig) -> dict[str, int]:
    """``{"G": ..., "D": ...}`` for a configuration, without allocating the weights (built on the meta device)."""
    config.validate()
    with torch.device("meta"):
        return {"G": num_parameters(build_generator(config)), "D": num_parameters(build_discriminator(config))}


__all__ = [
    "Discriminator", "Generator", "MappingNetwork", "SynthesisNetwork", "build_discriminator", "build_generator",
    "build_networks", "mix_styles", "num_parameters", "parameter_counts", "truncate",
]
