"""The authors' PyTorch StyleGAN2 (stylegan2-ada-pytorch / stylegan3) parameter layout, mapped onto ours.

Their networks are built from constructor arguments (``G_init_kwargs``, ``D_init_kwargs``) and hold state
dicts with names such as ``synthesis.b64.conv0.noise_strength`` or ``b4.fc.weight``. This module turns those
arguments into a :class:`~stylegan.config.NetworkConfig` and renames the tensors; reading their pickles
safely is the job of the importer built on top of it.
"""
from __future__ import annotations

import re
from typing import Any, Mapping

import torch

from stylegan.config import DiscriminatorConfig, GeneratorConfig, NetworkConfig

# Defaults of the authors' network constructors (not of their training script).
_G_DEFAULTS = dict(num_layers=8, lr_multiplier=0.01, w_avg_beta=0.995, channel_base=32768, channel_max=512,
                   architecture="skip", num_fp16_res=0, conv_clamp=None)
_D_DEFAULTS = dict(channel_base=32768, channel_max=512, architecture="resnet", num_fp16_res=0, conv_clamp=None,
                   mbstd_group_size=4, mbstd_num_channels=1, cmap_dim=None)


class InteropError(ValueError):
    """A foreign network uses a feature or layout we cannot map."""


def config_from_nvlabs(G_kwargs: Mapping[str, Any], D_kwargs: Mapping[str, Any] | None = None) -> NetworkConfig:
    """Our config from the authors' ``G_init_kwargs`` / ``D_init_kwargs``."""
    syn = {**_G_DEFAULTS, **G_kwargs.get("synthesis_kwargs", {})}
    mapk = {**_G_DEFAULTS, **G_kwargs.get("mapping_kwargs", {})}
    for key in ("embed_features", "layer_features"):
        if mapk.get(key) not in (None, G_kwargs["w_dim"]):
            raise InteropError(f"mapping {key}={mapk[key]} differs from w_dim; not supported")
    g = GeneratorConfig(
        z_dim=G_kwargs["z_dim"], w_dim=G_kwargs["w_dim"], c_dim=G_kwargs.get("c_dim", 0),
        resolution=G_kwargs["img_resolution"], img_channels=G_kwargs["img_channels"],
        map_depth=mapk["num_layers"], map_lr_mul=mapk["lr_multiplier"], w_avg_beta=mapk["w_avg_beta"],
        cbase=syn["channel_base"], cmax=syn["channel_max"], arch=syn["architecture"],
        num_fp16_res=syn["num_fp16_res"], conv_clamp=syn["conv_clamp"])
    dk = {**_D_DEFAULTS, **(D_kwargs or {})}
    epi = dk.get("epilogue_kwargs", {})
    d = DiscriminatorConfig(
        c_dim=dk.get("c_dim", g.c_dim), resolution=dk.get("img_resolution", g.resolution),
        img_channels=dk.get("img_channels", g.img_channels), cbase=dk["channel_base"], cmax=dk["channel_max"],
        arch=dk["architecture"], mbstd_group=epi.get("mbstd_group_size", dk["mbstd_group_size"]),
        mbstd_channels=epi.get("mbstd_num_channels", dk["mbstd_num_channels"]), cmap_dim=dk["cmap_dim"],
        num_fp16_res=dk["num_fp16_res"], conv_clamp=dk["conv_clamp"])
    return NetworkConfig(family="stylegan2", cfg="stylegan2", G=g, D=d).validate()


_G_RULES = [
    (re.compile(r"^mapping\.fc(\d+)\.(weight|bias)$"), r"mapping.layers.\1.\2"),
    (re.compile(r"^mapping\.(embed\.(?:weight|bias)|w_avg)$"), r"mapping.\1"),
    (re.compile(r"^synthesis\.b(\d+)\.(conv[01])\.noise_const$"), r"synthesis.blocks.\1.\2.noise.const"),
    (re.compile(r"^synthesis\.b(\d+)\.(conv[01])\.noise_strength$"), r"synthesis.blocks.\1.\2.noise.strength"),
    (re.compile(r"^synthesis\.b(\d+)\.(.+)$"), r"synthesis.blocks.\1.\2"),
]
_D_RULES = [
    (re.compile(r"^b4\.(fromrgb|conv|fc|out)\.(.+)$"), r"epilogue.\1.\2"),
    (re.compile(r"^b(\d+)\.(.+)$"), r"blocks.\1.\2"),
    (re.compile(r"^mapping\.fc(\d+)\.(weight|bias)$"), r"mapping.layers.\1.\2"),
    (re.compile(r"^mapping\.(embed\.(?:weight|bias))$"), r"mapping.\1"),
]
_IGNORED = re.compile(r"(^|\.)resample_filter$")  # fixed FIR filters: rebuilt from the config


def _rename(state: Mapping[str, torch.Tensor], rules, what: str) -> dict[str, torch.Tensor]:
    out = {}
    for name, t in state.items():
        if _IGNORED.search(name):
            continue
        for pattern, repl in rules:
            if pattern.match(name):
                out[pattern.sub(repl, name)] = t
                break
        else:
            raise InteropError(f"{what}: no mapping for the authors' tensor {name!r}")
    return out


def generator_state_from_nvlabs(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a G (or G_ema) state dict of the authors' code to our module names."""
    return _rename(state, _G_RULES, "G")


def discriminator_state_from_nvlabs(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename a D state dict of the authors' code to our module names."""
    return _rename(state, _D_RULES, "D")
