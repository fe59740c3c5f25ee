"""The authors' alias-free generator (stylegan3's ``training.networks_stylegan3``) mapped onto ours
(:mod:`stylegan.networks.stylegan3`): constructor arguments to a :class:`~stylegan.config.NetworkConfig`, and
tensor names (``synthesis.L5_52_32.weight`` → ``synthesis.layers.5.weight``). The discriminator is
StyleGAN2's: :func:`stylegan.interop.nvlabs.config_from_nvlabs_stylegan3` pairs the two configurations.

The FIR filters stored with their layers (``up_filter``, ``down_filter``) are designed again from the
configuration; :func:`check_stored_filters` verifies that the stored ones are the same filters."""
from __future__ import annotations

import math
import re
from typing import Any, Mapping

import torch

from stylegan.config import GeneratorConfig
from stylegan.interop.errors import InteropError

#: Synthesis arguments whose value our networks fix, with that value (the authors' defaults).
_FIXED = dict(num_layers=14, num_critical=2, first_cutoff=2, first_stopband=2 ** 2.1, last_stopband_rel=2 ** 0.3,
              margin_size=10, output_scale=0.25, filter_size=6, lrelu_upsampling=2)
#: Accepted and not needed to rebuild the network (training or precision settings).
_IGNORED_KEYS = ("num_fp16_res", "magnitude_ema_beta", "conv_clamp", "channel_base", "channel_max", "conv_kernel",
                 "use_radial_filters")
_FILTER = re.compile(r"(^|\.)(up|down)_filter$")
#: The generator's own arguments; every other top-level one is the synthesis network's.
_G_OWN = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs")
_MAPPING_KEYS = ("num_layers", "lr_multiplier", "w_avg_beta")


def _arch(syn: Mapping[str, Any]) -> str:
    kernel, radial = int(syn.get("conv_kernel", 3)), bool(syn.get("use_radial_filters", False))
    if (kernel, radial) == (3, False):
        return "stylegan3-t"
    if (kernel, radial) == (1, True):
        return "stylegan3-r"
    raise InteropError(f"alias-free generator with conv_kernel={kernel}, use_radial_filters={radial} is not "
                       "supported (T: 3 and False; R: 1 and True)")


def _synthesis_kwargs(G_kwargs: Mapping[str, Any]) -> dict[str, Any]:
    syn = {k: v for k, v in G_kwargs.items() if k not in _G_OWN}
    syn.update(dict(G_kwargs.get("synthesis_kwargs") or {}))
    syn.update(dict(syn.pop("layer_kwargs", None) or {}))
    for key, value in _FIXED.items():
        if key in syn and not math.isclose(float(syn[key]), float(value), rel_tol=1e-9):
            raise InteropError(f"alias-free synthesis {key}={syn[key]!r} is not supported (only {value:g})")
    unknown = sorted(set(syn) - set(_FIXED) - set(_IGNORED_KEYS))
    if unknown:
        raise InteropError(f"alias-free synthesis arguments not understood: {', '.join(unknown)}")
    return syn


def generator_config_from_nvlabs_stylegan3(G_kwargs: Mapping[str, Any]) -> GeneratorConfig:
    """Our generator config from the authors' ``G_init_kwargs`` of an alias-free generator (not validated);
    settings our networks cannot express raise :class:`InteropError`."""
    syn = _synthesis_kwargs(G_kwargs)
    mapk = dict(G_kwargs.get("mapping_kwargs") or {})
    unknown = sorted(set(mapk) - set(_MAPPING_KEYS))
    if unknown:
        raise InteropError(f"alias-free mapping arguments not supported: {', '.join(unknown)}")
    clamp = syn.get("conv_clamp", 256)
    return GeneratorConfig(
        z_dim=int(G_kwargs["z_dim"]), w_dim=int(G_kwargs["w_dim"]), c_dim=int(G_kwargs.get("c_dim", 0) or 0),
        resolution=int(G_kwargs["img_resolution"]), img_channels=int(G_kwargs["img_channels"]),
        map_depth=int(mapk.get("num_layers", 2)), map_lr_mul=float(mapk.get("lr_multiplier", 0.01)),
        w_avg_beta=float(mapk.get("w_avg_beta", 0.998)), cbase=int(syn.get("channel_base", 32768)),
        cmax=int(syn.get("channel_max", 512)), arch=_arch(syn), num_fp16_res=0,
        conv_clamp=None if clamp is None else float(clamp), noise=False)


_G_RULES = [
    (re.compile(r"^mapping\.fc(\d+)\.(weight|bias)$"), r"mapping.layers.\1.\2"),
    (re.compile(r"^mapping\.(embed\.(?:weight|bias)|w_avg)$"), r"mapping.\1"),
    (re.compile(r"^synthesis\.input\.(affine\.weight|affine\.bias|weight|freqs|phases|transform)$"),
     r"synthesis.input.\1"),
    (re.compile(r"^synthesis\.L(\d+)_\d+_\d+\.(affine\.weight|affine\.bias|weight|bias|magnitude_ema)$"),
     r"synthesis.layers.\1.\2"),
]


def generator_state_from_nvlabs_stylegan3(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename an alias-free G (or G_ema) state dict of the authors' code to our module names; the stored
    filters are left out (see :func:`check_stored_filters`)."""
    out = {}
    for name, t in state.items():
        if _FILTER.search(name):
            continue
        for pattern, repl in _G_RULES:
            if pattern.match(name):
                out[pattern.sub(repl, name)] = t
                break
        else:
            raise InteropError(f"G: no mapping for the authors' tensor {name!r}")
    return out


def check_stored_filters(cfg: GeneratorConfig, state: Mapping[str, torch.Tensor], atol: float = 1e-6) -> None:
    """Every ``up_filter`` / ``down_filter`` of the authors' state dict equals the filter designed from our
    configuration (else :class:`InteropError`: the network was built with other filter settings)."""
    from stylegan.networks.stylegan3 import designed_filters

    ours = designed_filters(cfg)
    for name, t in state.items():
        m = re.match(r"^synthesis\.L(\d+)_\d+_\d+\.(up|down)_filter$", name)
        if not m:
            continue
        f = ours.get(int(m.group(1)), (None, None))[0 if m.group(2) == "up" else 1]
        if f is None or f.shape != t.shape or not torch.allclose(f, t.float(), rtol=0, atol=atol):
            raise InteropError(f"G: stored filter {name} differs from the one designed from the configuration")
