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

from stylegan.config import ConfigError, DiscriminatorConfig, GeneratorConfig, NetworkConfig
from stylegan.interop.errors import InteropError
from stylegan.interop.nvlabs_stylegan3 import (check_stored_filters, generator_config_from_nvlabs_stylegan3,
                                               generator_state_from_nvlabs_stylegan3)

# Defaults of the authors' network constructors (not of their training script).
_G_DEFAULTS = dict(num_layers=8, lr_multiplier=0.01, w_avg_beta=0.995, channel_base=32768, channel_max=512,
                   architecture="skip", num_fp16_res=0, conv_clamp=None)
_D_DEFAULTS = dict(channel_base=32768, channel_max=512, architecture="resnet", num_fp16_res=0, conv_clamp=None,
                   mbstd_group_size=4, mbstd_num_channels=1, cmap_dim=None)


# Keys of the synthesis network's (and its blocks' and layers') constructors. stylegan2-ada-pytorch passes them
# in ``synthesis_kwargs``; stylegan3's copy of the StyleGAN2 generator takes them as keyword arguments of G.
_SYNTHESIS_KEYS = ("channel_base", "channel_max", "num_fp16_res", "conv_clamp", "architecture",
                   "resample_filter", "use_noise", "activation", "kernel_size", "fp16_channels_last",
                   "fused_modconv_default", "channels_last")
_STANDARD_FILTER = [1, 3, 3, 1]


def _require(cond: bool, msg: str) -> None:
    if not cond:
        raise InteropError(msg)


def _as_list(v):
    try:
        return [float(x) for x in v]
    except TypeError:
        return None


def config_from_nvlabs(G_kwargs: Mapping[str, Any], D_kwargs: Mapping[str, Any] | None = None) -> NetworkConfig:
    """Our config from the authors' ``G_init_kwargs`` / ``D_init_kwargs``.

    Accepts both layouts of the generator arguments (``synthesis_kwargs`` of stylegan2-ada-pytorch, or the
    synthesis arguments at the top level as in stylegan3's StyleGAN2 generator). Settings our networks cannot
    express (another resampling filter or activation, mapping layers of another width...) raise
    :class:`InteropError`. Without ``D_kwargs`` the discriminator mirrors the generator's channels."""
    try:
        return _config_from_nvlabs(G_kwargs, D_kwargs)
    except InteropError:
        raise
    except (KeyError, TypeError, ValueError, ConfigError) as e:
        raise InteropError(f"the authors' constructor arguments cannot be used ({type(e).__name__}: {e})") from None


def _config_from_nvlabs(G_kwargs, D_kwargs) -> NetworkConfig:
    _require(isinstance(G_kwargs, Mapping), "generator constructor arguments are not a dict")
    top_syn = {k: v for k, v in G_kwargs.items() if k in _SYNTHESIS_KEYS}
    syn = {**_G_DEFAULTS, **top_syn, **dict(G_kwargs.get("synthesis_kwargs") or {})}
    mapk = {**_G_DEFAULTS, **dict(G_kwargs.get("mapping_kwargs") or {})}
    for key in ("embed_features", "layer_features"):
        if mapk.get(key) not in (None, G_kwargs["w_dim"]):
            raise InteropError(f"mapping {key}={mapk[key]} differs from w_dim; not supported")
    _require(mapk.get("activation", "lrelu") == "lrelu",
             f"mapping activation {mapk.get('activation')!r} is not supported (only lrelu)")
    _require(syn.get("activation", "lrelu") == "lrelu",
             f"synthesis activation {syn.get('activation')!r} is not supported (only lrelu)")
    _require(syn.get("kernel_size", 3) == 3, f"synthesis kernel size {syn.get('kernel_size')} is not supported")
    rf = syn.get("resample_filter", _STANDARD_FILTER)
    _require(_as_list(rf) == _STANDARD_FILTER, f"resampling filter {rf!r} is not supported (only [1, 3, 3, 1])")
    g = GeneratorConfig(
        z_dim=int(G_kwargs["z_dim"]), w_dim=int(G_kwargs["w_dim"]), c_dim=int(G_kwargs.get("c_dim", 0) or 0),
        resolution=int(G_kwargs["img_resolution"]), img_channels=int(G_kwargs["img_channels"]),
        map_depth=int(mapk["num_layers"]), map_lr_mul=float(mapk["lr_multiplier"]),
        w_avg_beta=float(mapk["w_avg_beta"]) if mapk["w_avg_beta"] is not None else 0.995,
        cbase=int(syn["channel_base"]), cmax=int(syn["channel_max"]), arch=syn["architecture"],
        num_fp16_res=int(syn["num_fp16_res"]), conv_clamp=_clamp(syn["conv_clamp"]))
    if D_kwargs is None:
        dk = {**_D_DEFAULTS, "channel_base": g.cbase, "channel_max": g.cmax, "num_fp16_res": g.num_fp16_res,
              "conv_clamp": g.conv_clamp}
    else:
        _require(isinstance(D_kwargs, Mapping), "discriminator constructor arguments are not a dict")
        dk = {**_D_DEFAULTS, **D_kwargs}
    epi = dict(dk.get("epilogue_kwargs") or {})
    blk = dict(dk.get("block_kwargs") or {})
    dmap = dict(dk.get("mapping_kwargs") or {})
    for where, kw in (("block", blk), ("epilogue", epi), ("mapping", dmap)):
        _require(kw.get("activation", "lrelu") == "lrelu",
                 f"discriminator {where} activation {kw.get('activation')!r} is not supported (only lrelu)")
    rf = blk.get("resample_filter", _STANDARD_FILTER)
    _require(_as_list(rf) == _STANDARD_FILTER, f"D resampling filter {rf!r} is not supported (only [1, 3, 3, 1])")
    _require(dmap.get("num_layers", 8) == 8 and dmap.get("lr_multiplier", 0.01) == 0.01
             and dmap.get("embed_features") is None and dmap.get("layer_features") is None,
             f"discriminator label mapping {dmap} is not supported (only the default: 8 layers, lr 0.01)")
    group = epi.get("mbstd_group_size", dk["mbstd_group_size"])
    _require(group is not None, "minibatch-std group size None (whole batch) is not supported")
    d = DiscriminatorConfig(
        c_dim=int(dk.get("c_dim", g.c_dim) or 0), resolution=int(dk.get("img_resolution", g.resolution)),
        img_channels=int(dk.get("img_channels", g.img_channels)), cbase=int(dk["channel_base"]),
        cmax=int(dk["channel_max"]), arch=dk["architecture"], mbstd_group=int(group),
        mbstd_channels=int(epi.get("mbstd_num_channels", dk["mbstd_num_channels"])),
        cmap_dim=None if dk["cmap_dim"] is None else int(dk["cmap_dim"]),
        num_fp16_res=int(dk["num_fp16_res"]), conv_clamp=_clamp(dk["conv_clamp"]))
    return NetworkConfig(family="stylegan2", cfg="stylegan2", G=g, D=d).validate()


def config_from_nvlabs_stylegan3(G_kwargs: Mapping[str, Any], D_kwargs: Mapping[str, Any] | None = None
                                 ) -> NetworkConfig:
    """Our config from the authors' ``G_init_kwargs`` of an alias-free generator (StyleGAN3 T or R) and the
    ``D_init_kwargs`` of its StyleGAN2 discriminator (without them, D mirrors G's channels)."""
    try:
        g = generator_config_from_nvlabs_stylegan3(G_kwargs)
        stub = {k: G_kwargs[k] for k in ("z_dim", "w_dim", "c_dim", "img_resolution", "img_channels") if k in G_kwargs}
        d = config_from_nvlabs({**stub, "channel_base": g.cbase, "channel_max": g.cmax}, D_kwargs).D
        return NetworkConfig(family="stylegan3", cfg=g.arch, G=g, D=d).validate()
    except InteropError:
        raise
    except (KeyError, TypeError, ValueError, ConfigError) as e:
        raise InteropError(f"the authors' alias-free constructor arguments cannot be used "
                           f"({type(e).__name__}: {e})") from None


def _clamp(v):
    return None if v is None else float(v)


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


# ---------------------------------------------------------------------------------------------------------
# The authors' network pickles (stylegan2-ada-pytorch, stylegan3): a dict with G, D, G_ema (persistent objects
# captured by stylegan.interop.torch_files, never executed), augment_pipe and training_set_kwargs.

_G_POSITIONAL = ("z_dim", "c_dim", "w_dim", "img_resolution", "img_channels", "mapping_kwargs", "synthesis_kwargs")
_D_POSITIONAL = ("c_dim", "img_resolution", "img_channels", "architecture", "channel_base", "channel_max",
                 "num_fp16_res", "conv_clamp", "cmap_dim", "block_kwargs", "mapping_kwargs", "epilogue_kwargs")
_MAX_MODULE_DEPTH = 16


def constructor_kwargs(obj, positional: tuple[str, ...]) -> dict[str, Any]:
    """The constructor arguments of a persistent object: its ``init_kwargs`` with ``init_args`` named."""
    args = obj.init_args()
    if len(args) > len(positional):
        raise InteropError(f"{obj.class_name} was built with {len(args)} positional arguments; expected at most "
                           f"{len(positional)}")
    return {**dict(zip(positional, args)), **obj.init_kwargs()}


def flatten_module(obj, what: str) -> dict[str, torch.Tensor]:
    """The state dict of a persistent module tree: parameters and buffers by dotted name, as stored (views of the
    file's storages, not converted)."""
    from stylegan.interop.torch_files import PersistentObject

    out: dict[str, torch.Tensor] = {}
    seen: set[int] = set()

    def visit(node, prefix: str, depth: int):
        if depth > _MAX_MODULE_DEPTH or id(node) in seen:
            raise InteropError(f"{what}: module tree too deep or cyclic at {prefix or 'the top'}")
        seen.add(id(node))
        state = node.state
        for group in ("_parameters", "_buffers"):
            tensors = state.get(group) or {}
            if not isinstance(tensors, dict):
                raise InteropError(f"{what}: {prefix}{group} is not a dict")
            for name, t in tensors.items():
                if t is None:
                    continue
                if not isinstance(name, str) or not isinstance(t, torch.Tensor):
                    raise InteropError(f"{what}: {prefix}{name} is not a tensor")
                out[prefix + name] = t
        modules = state.get("_modules") or {}
        if not isinstance(modules, dict):
            raise InteropError(f"{what}: {prefix}_modules is not a dict")
        for name, child in modules.items():
            if child is None:
                continue
            if not isinstance(name, str) or not isinstance(child, PersistentObject):
                raise InteropError(f"{what}: submodule {prefix}{name} is a {type(child).__name__}, not one of the "
                                   "authors' persistent network classes")
            visit(child, f"{prefix}{name}.", depth + 1)

    visit(obj, "", 0)
    return out


def _submodule_names(obj) -> list[str]:
    mods = obj.state.get("_modules") or {}
    return [k for k in mods if isinstance(k, str)] if isinstance(mods, dict) else []


def _generator_kind(G, what: str) -> str:
    """``stylegan2`` (blocks ``b4``, ``b8``...) or ``stylegan3`` (``input`` and layers ``L0_36_512``...)."""
    from stylegan.interop.torch_files import PersistentObject

    syn = (G.state.get("_modules") or {}).get("synthesis")
    if not isinstance(syn, PersistentObject):
        raise InteropError(f"{what}: the generator has no synthesis network")
    names = _submodule_names(syn)
    if "input" in names and all(n == "input" or re.match(r"^L\d+_\d+_\d+$", n) for n in names):
        return "stylegan3"
    if not all(re.match(r"^b\d+$", n) for n in names) or "class SynthesisInput" in syn.module_src:
        raise InteropError(f"{what}: unknown synthesis network layout (modules {', '.join(names[:8])})")
    return "stylegan2"


def import_nvlabs_pickle(top: Any, what: str):
    """(config, {our network name: our state dict}, notes) from an unpickled authors' network pickle."""
    from stylegan.interop.torch_files import PersistentObject, check_no_shared_memory

    if isinstance(top, PersistentObject):
        top = {"G_ema" if top.class_name == "Generator" else "D": top}
    if not isinstance(top, dict):
        raise InteropError(f"{what}: expected the authors' dict of networks (G, D, G_ema), found "
                           f"{type(top).__name__}")
    nets = {k: top[k] for k in ("G", "G_ema", "D") if isinstance(top.get(k), PersistentObject)}
    gens = {k: v for k, v in nets.items() if k != "D"}
    if not gens:
        raise InteropError(f"{what}: no generator (G or G_ema) in the pickle (keys: "
                           f"{', '.join(str(k) for k in list(top)[:10])})")
    for name, net in nets.items():
        expected = "Discriminator" if name == "D" else "Generator"
        if net.class_name != expected:
            raise InteropError(f"{what}: {name} is a {net.class_name!r}, expected {expected!r}")
    kinds = {_generator_kind(net, f"{what} [{name}]") for name, net in gens.items()}
    if len(kinds) > 1:
        raise InteropError(f"{what}: G and G_ema are different kinds of generator")
    sg3 = kinds == {"stylegan3"}
    ref = gens.get("G_ema", gens.get("G"))
    G_kwargs = constructor_kwargs(ref, _G_POSITIONAL)
    D_kwargs = constructor_kwargs(nets["D"], _D_POSITIONAL) if "D" in nets else None
    try:
        config = (config_from_nvlabs_stylegan3 if sg3 else config_from_nvlabs)(G_kwargs, D_kwargs)
    except InteropError as e:
        raise InteropError(f"{what}: {e}") from None
    for name, net in gens.items():
        if net is not ref and constructor_kwargs(net, _G_POSITIONAL) != G_kwargs:
            raise InteropError(f"{what}: G and G_ema were built with different arguments")
    states: dict[str, dict[str, torch.Tensor]] = {}
    notes: list[str] = []
    syn = {**{k: v for k, v in G_kwargs.items() if k in _SYNTHESIS_KEYS},
           **dict(G_kwargs.get("synthesis_kwargs") or {})}
    for name, net in nets.items():
        flat = flatten_module(net, f"{what} [{name}]")
        if name == "D":
            state = discriminator_state_from_nvlabs(flat)
        elif sg3:
            check_stored_filters(config.G, flat)
            state = generator_state_from_nvlabs_stylegan3(flat)
        else:
            state = generator_state_from_nvlabs(flat)
        check_no_shared_memory(state, f"{what} [{name}]")  # before anything is copied or built from them
        state = {k: t.float() if t.is_floating_point() else t for k, t in state.items()}
        if name != "D" and not sg3 and syn.get("use_noise", True) is False:
            _add_silent_noise(state, config)
            notes.append(f"{name}: the network has no noise inputs (use_noise=False); imported with noise strength 0")
        states[name] = state
    return config, states, notes


def _add_silent_noise(state: dict[str, torch.Tensor], config: NetworkConfig) -> None:
    res = 4
    while res <= config.G.resolution:
        for conv in ("conv0", "conv1") if res > 4 else ("conv1",):
            state.setdefault(f"synthesis.blocks.{res}.{conv}.noise.strength", torch.zeros([]))
            state.setdefault(f"synthesis.blocks.{res}.{conv}.noise.const", torch.zeros(res, res))
        res *= 2
