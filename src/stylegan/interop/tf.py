"""The authors' TensorFlow StyleGAN2 networks (``dnnlib.tflib.network.Network`` pickles), without TensorFlow.

A pickled ``Network`` keeps its state as a dict: ``version``, ``name``, ``static_kwargs`` (the build function's
arguments), ``components`` (sub-networks: ``mapping``, ``synthesis``), ``build_module_src`` (kept as text, never
executed), ``build_func_name`` and ``variables`` (a list of (name, numpy array)). Variable names are relative to
their network and are joined here as ``<component>/<name>`` (``mapping/Dense0/weight``,
``synthesis/8x8/Conv0_up/mod_bias``...).

The layout facts (StyleGAN2, ``training/networks_stylegan2.py`` of the authors' TF code):

- dense weights are [in, out], conv weights [kh, kw, in, out] (HWIO); runtime scale ``lrmul / sqrt(fan_in)``
  as ours; biases multiplied by ``lrmul`` as ours;
- the style affine of a modulated conv (``mod_weight`` [w_dim, in], ``mod_bias``) adds 1 at run time: our
  affine bias is ``mod_bias + 1``;
- an upsampling conv flips its kernel (``w[::-1, ::-1]``) before ``conv2d_transpose``, whereas ours (and the
  authors' PyTorch code) uses the kernel as the transposed kernel directly: ``Conv0_up`` and ``Skip`` kernels
  are flipped spatially on import;
- noise images ``noise<i>`` [1, 1, r, r] of the synthesis network, one per conv layer in order (4×4 conv,
  then ``Conv0_up``, ``Conv1`` per resolution); ``noise_strength`` is a scalar;
- ``dlatent_avg`` of G is our ``w_avg``; mapping labels (``LabelConcat``) are normalized jointly with z,
  which our mapping cannot express, so conditional TF networks are refused;
- D: ``FromRGB``, ``Conv0``, ``Conv1_down``, ``Skip`` per resolution, then ``4x4/Conv``, ``4x4/Dense0`` and
  ``Output``; minibatch std with ``mbstd_group_size`` (default 4) and ``mbstd_num_features`` (1).
"""
from __future__ import annotations

import math
import re
from typing import Any

import numpy as np
import torch

from stylegan.config import ConfigError, DiscriminatorConfig, GeneratorConfig, NetworkConfig
from stylegan.interop.errors import InteropError
from stylegan.interop.channels import channels_to_cbase
from stylegan.interop.torch_files import TFNetwork, as_numpy, check_no_shared_memory

# Build functions we know, and what they are.
_G_STYLEGAN2 = "G_main"
_SYN_STYLEGAN2 = "G_synthesis_stylegan2"
_D_STYLEGAN2 = "D_stylegan2"
_UNSUPPORTED = {
    "G_style": "a StyleGAN (v1) generator",
    "G_synthesis": "a StyleGAN (v1) synthesis network",
    "D_basic": "a StyleGAN (v1) discriminator",
    "G_synthesis_stylegan_revised": "a StyleGAN2 config A-D generator (revised StyleGAN synthesis)",
    "D_stylegan": "a StyleGAN2 config A-D discriminator (StyleGAN layout)",
    "G_paper": "a ProGAN generator",
    "D_paper": "a ProGAN discriminator",
}


def _func_name(net: TFNetwork) -> str:
    name = net.state.get("build_func_name", "")
    return name.rsplit(".", 1)[-1] if isinstance(name, str) else ""


def _check_supported(net: TFNetwork, what: str) -> str:
    fn = _func_name(net)
    if fn in _UNSUPPORTED:
        raise InteropError(f"{what}: {_UNSUPPORTED[fn]} ({fn}); importing it is not supported yet (it needs this "
                           "package's StyleGAN v1 / ProGAN networks, which do not exist yet)")
    return fn


def flatten_variables(net: TFNetwork, what: str) -> dict[str, np.ndarray]:
    """All variables of a network and its components, named ``<component>/<variable>``, as float32."""
    variables = _stored_variables(net, what, "", 0)
    check_no_shared_memory(variables, what)  # before anything is copied or built from them
    return {k: np.asarray(a, dtype=np.float32) for k, a in variables.items()}


def _stored_variables(net: TFNetwork, what: str, prefix: str, depth: int) -> dict[str, np.ndarray]:
    if depth > 4:
        raise InteropError(f"{what}: components nested too deeply")
    out: dict[str, np.ndarray] = {}
    variables = net.state.get("variables", [])
    if not isinstance(variables, (list, tuple)):
        raise InteropError(f"{what}: network variables are not a list")
    for item in variables:
        if not isinstance(item, (list, tuple)) or len(item) != 2 or not isinstance(item[0], str):
            raise InteropError(f"{what}: malformed variable entry")
        out[prefix + item[0]] = as_numpy(item[1])
    comps = net.state.get("components", {}) or {}
    if not isinstance(comps, dict):
        raise InteropError(f"{what}: network components are not a dict")
    for key, comp in comps.items():
        if not isinstance(key, str) or not isinstance(comp, TFNetwork):
            raise InteropError(f"{what}: component {key!r} is not a network")
        _check_supported(comp, what)
        out.update(_stored_variables(comp, what, f"{prefix}{key}/", depth + 1))
    return out


def _static_kwargs(net: TFNetwork) -> dict[str, Any]:
    kw = net.state.get("static_kwargs", {}) or {}
    return dict(kw) if isinstance(kw, dict) else {}


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32))


def _conv(w: np.ndarray, flip: bool = False) -> torch.Tensor:
    """[kh, kw, in, out] → [out, in, kh, kw], flipped spatially for TF's upsampling convolutions."""
    if w.ndim != 4:
        raise InteropError(f"expected a 4-D convolution kernel, found shape {w.shape}")
    w = w.transpose(3, 2, 0, 1)
    if flip:
        w = w[:, :, ::-1, ::-1]
    return _t(w)


def _dense(w: np.ndarray) -> torch.Tensor:
    if w.ndim != 2:
        raise InteropError(f"expected a 2-D dense weight, found shape {w.shape}")
    return _t(w.T)



class _Vars:
    """Takes variables by name and reports leftovers: every variable of the file must be used."""

    def __init__(self, variables: dict[str, np.ndarray], what: str):
        self.v, self.what, self.used = variables, what, set()

    def __contains__(self, name):
        return name in self.v

    def __call__(self, name: str) -> np.ndarray:
        if name not in self.v:
            raise InteropError(f"{self.what}: TensorFlow variable {name!r} is missing")
        self.used.add(name)
        return self.v[name]

    def ignore(self, pattern: str):
        for n in self.v:
            if re.fullmatch(pattern, n):
                self.used.add(n)

    def check_all_used(self):
        left = sorted(set(self.v) - self.used)
        if left:
            raise InteropError(f"{self.what}: TensorFlow variables with no place in our network: "
                               f"{', '.join(left[:10])}" + (" ..." if len(left) > 10 else ""))


def _resolutions(V: _Vars, prefix: str, kind: str, what: str) -> list[int]:
    """The resolutions of the ``<prefix><r>x<r>/`` variables: 4, 8, ... up to the network's, all present."""
    res_names = sorted({int(m.group(1)) for n in V.v if (m := re.match(rf"^{prefix}(\d+)x\1/", n))})
    if not res_names or res_names[0] != 4:
        raise InteropError(f"{what}: no 4x4 {kind} layers")
    if res_names != _powers_of_two(res_names[-1]):
        raise InteropError(f"{what}: {kind} resolutions {res_names} are not consecutive powers of two")
    return res_names


def _powers_of_two(resolution: int) -> list[int]:
    return [2 ** i for i in range(2, int(math.log2(resolution)) + 1)]


def _architecture(V: _Vars, resnet_var: str, skip_var: str) -> str:
    if resnet_var in V:
        return "resnet"
    return "skip" if skip_var in V else "orig"


# --- G -----------------------------------------------------------------------------------------------------

def _g_static_kwargs(net: TFNetwork, what: str) -> dict[str, Any]:
    """The build arguments of G and its mapping and synthesis components, checked against what ours can do."""
    fn = _check_supported(net, what)
    if fn != _G_STYLEGAN2:
        raise InteropError(f"{what}: unknown generator build function {fn!r} (expected {_G_STYLEGAN2})")
    comps = net.state.get("components", {}) or {}
    if not isinstance(comps, dict) or not isinstance(comps.get("mapping"), TFNetwork) \
            or not isinstance(comps.get("synthesis"), TFNetwork):
        raise InteropError(f"{what}: the generator has no mapping and synthesis components")
    syn_fn = _check_supported(comps["synthesis"], what)
    if syn_fn != _SYN_STYLEGAN2:
        raise InteropError(f"{what}: unknown synthesis build function {syn_fn!r} (expected {_SYN_STYLEGAN2})")
    kw = {**_static_kwargs(net), **_static_kwargs(comps["mapping"]), **_static_kwargs(comps["synthesis"])}
    if list(kw.get("resample_kernel", [1, 3, 3, 1])) != [1, 3, 3, 1]:
        raise InteropError(f"{what}: resampling kernel {kw['resample_kernel']} is not supported")
    for key in ("nonlinearity", "mapping_nonlinearity"):
        if kw.get(key, "lrelu") != "lrelu":
            raise InteropError(f"{what}: {key}={kw[key]!r} is not supported (only lrelu)")
    if kw.get("normalize_latents", True) is not True:
        raise InteropError(f"{what}: normalize_latents=False is not supported")
    if kw.get("fmap_decay", 1.0) != 1.0:
        raise InteropError(f"{what}: fmap_decay={kw['fmap_decay']} is not supported")
    return kw


def _g_config(V: _Vars, kw: dict[str, Any], what: str) -> GeneratorConfig:
    """Our generator configuration from the variables' names and shapes and the build arguments."""
    if any(n.startswith("mapping/LabelConcat/") for n in V.v) or kw.get("label_size", 0):
        raise InteropError(f"{what}: conditional TensorFlow networks are not supported (their mapping "
                           "normalizes z and the label embedding jointly, which our mapping network cannot express)")
    depth = 0
    while f"mapping/Dense{depth}/weight" in V:
        depth += 1
    if depth == 0:
        raise InteropError(f"{what}: no mapping layers (mapping/Dense0/weight)")
    z_dim = V.v["mapping/Dense0/weight"].shape[0]
    w_dim = V.v[f"mapping/Dense{depth - 1}/weight"].shape[1]
    res_names = _resolutions(V, "synthesis/", "synthesis", what)
    resolution = res_names[-1]
    if kw.get("resolution", resolution) != resolution:
        raise InteropError(f"{what}: static resolution {kw['resolution']} but layers up to {resolution}")
    top_rgb = f"synthesis/{resolution}x{resolution}/ToRGB/bias"
    img_channels = V.v[top_rgb].shape[0] if top_rgb in V else -1
    conv_names = {r: f"synthesis/{r}x{r}/Conv1/weight" if r > 4 else "synthesis/4x4/Conv/weight" for r in res_names}
    channels = {r: V.v[name].shape[3] for r, name in conv_names.items() if name in V}
    if len(channels) != len(res_names):
        raise InteropError(f"{what}: synthesis convolution weights are missing")
    cbase, cmax = channels_to_cbase(channels, what)
    arch = _architecture(V, "synthesis/8x8/Skip/weight", "synthesis/4x4/ToRGB/weight")
    if kw.get("architecture", arch) != arch:
        raise InteropError(f"{what}: static architecture {kw['architecture']!r} but variables of {arch!r}")
    try:
        return GeneratorConfig(z_dim=int(z_dim), w_dim=int(w_dim), c_dim=0, resolution=resolution,
                               img_channels=int(img_channels), map_depth=depth,
                               map_lr_mul=float(kw.get("mapping_lrmul", 0.01)),
                               w_avg_beta=float(kw.get("dlatent_avg_beta", 0.995) or 0.995), cbase=cbase, cmax=cmax,
                               arch=arch, num_fp16_res=int(kw.get("num_fp16_res", 0) or 0),
                               conv_clamp=None if kw.get("conv_clamp") is None else float(kw["conv_clamp"])).validate()
    except (ConfigError, TypeError, ValueError) as e:
        raise InteropError(f"{what}: {e}") from None


def _g_mapping_state(V: _Vars, g: GeneratorConfig, what: str) -> dict[str, torch.Tensor]:
    s: dict[str, torch.Tensor] = {}
    for i in range(g.map_depth):
        w = V(f"mapping/Dense{i}/weight")
        if i < g.map_depth - 1 and w.shape[1] != g.w_dim:
            raise InteropError(f"{what}: mapping layers {w.shape[1]} wide, not w_dim={g.w_dim}; not supported")
        s[f"mapping.layers.{i}.weight"] = _dense(w)
        s[f"mapping.layers.{i}.bias"] = _t(V(f"mapping/Dense{i}/bias"))
    s["mapping.w_avg"] = _t(V("dlatent_avg")).reshape(-1)
    return s


def _modconv(s: dict[str, torch.Tensor], V: _Vars, ours: str, theirs: str, flip: bool = False,
             noise_idx: int | None = None, torgb: bool = False):
    """One modulated convolution (or ToRGB, without noise) into ``s``."""
    s[f"{ours}.weight"] = _conv(V(f"{theirs}/weight"), flip=flip)
    s[f"{ours}.affine.weight"] = _dense(V(f"{theirs}/mod_weight"))
    s[f"{ours}.affine.bias"] = _t(V(f"{theirs}/mod_bias") + 1)
    s[f"{ours}.bias"] = _t(V(f"{theirs}/bias"))
    if not torgb:
        s[f"{ours}.noise.strength"] = _t(V(f"{theirs}/noise_strength")).reshape([])
        noise = V(f"synthesis/noise{noise_idx}")
        s[f"{ours}.noise.const"] = _t(noise.reshape(noise.shape[-2:]))


def _g_synthesis_state(V: _Vars, g: GeneratorConfig) -> dict[str, torch.Tensor]:
    s: dict[str, torch.Tensor] = {"synthesis.blocks.4.const": _t(V("synthesis/4x4/Const/const")[0])}
    _modconv(s, V, "synthesis.blocks.4.conv1", "synthesis/4x4/Conv", noise_idx=0)
    for r in _powers_of_two(g.resolution):
        log2 = int(math.log2(r))
        ours, theirs = f"synthesis.blocks.{r}", f"synthesis/{r}x{r}"
        if r > 4:
            _modconv(s, V, f"{ours}.conv0", f"{theirs}/Conv0_up", flip=True, noise_idx=2 * log2 - 5)
            _modconv(s, V, f"{ours}.conv1", f"{theirs}/Conv1", noise_idx=2 * log2 - 4)
            if g.arch == "resnet":
                s[f"{ours}.skip.weight"] = _conv(V(f"{theirs}/Skip/weight"), flip=True)
        if g.arch == "skip" or r == g.resolution:
            _modconv(s, V, f"{ours}.torgb", f"{theirs}/ToRGB", torgb=True)
    return s


def _g_config_and_state(net: TFNetwork, what: str) -> tuple[GeneratorConfig, dict[str, torch.Tensor]]:
    kw = _g_static_kwargs(net, what)
    V = _Vars(flatten_variables(net, what), what)
    V.ignore(r"(.*/)?lod")
    g = _g_config(V, kw, what)
    s = _g_mapping_state(V, g, what)
    s.update(_g_synthesis_state(V, g))
    V.check_all_used()
    return g, s


# --- D -----------------------------------------------------------------------------------------------------

def _d_static_kwargs(net: TFNetwork, what: str) -> dict[str, Any]:
    """The build arguments of D, checked against what ours can do."""
    fn = _check_supported(net, what)
    if fn != _D_STYLEGAN2:
        raise InteropError(f"{what}: unknown discriminator build function {fn!r} (expected {_D_STYLEGAN2})")
    kw = _static_kwargs(net)
    if kw.get("label_size", 0):
        raise InteropError(f"{what}: conditional TensorFlow discriminators are not supported (their label "
                           "projection differs from ours)")
    if list(kw.get("resample_kernel", [1, 3, 3, 1])) != [1, 3, 3, 1] or kw.get("nonlinearity", "lrelu") != "lrelu" \
            or kw.get("fmap_decay", 1.0) != 1.0:
        raise InteropError(f"{what}: non-default resampling kernel, activation or fmap_decay is not supported")
    return kw


def _d_config(V: _Vars, kw: dict[str, Any], what: str) -> DiscriminatorConfig:
    """Our discriminator configuration from the variables' names and shapes and the build arguments."""
    res_names = _resolutions(V, "", "discriminator", what)
    resolution = res_names[-1]
    c4 = V.v["4x4/Conv/weight"].shape[3] if "4x4/Conv/weight" in V else 0
    channels = {4: c4}
    for r in res_names[1:]:
        if f"{r}x{r}/Conv0/weight" not in V:
            raise InteropError(f"{what}: {r}x{r}/Conv0/weight is missing")
        channels[r] = V.v[f"{r}x{r}/Conv0/weight"].shape[3]
    if "4x4/Dense0/weight" in V and V.v["4x4/Dense0/weight"].shape[1] != c4:
        raise InteropError(f"{what}: 4x4/Dense0 has {V.v['4x4/Dense0/weight'].shape[1]} outputs, not the {c4} "
                           "channels at 4x4 (fmap_base too small for fmap_max); not supported")
    cbase, cmax = channels_to_cbase(channels, what)
    arch = _architecture(V, f"{resolution}x{resolution}/Skip/weight", "4x4/FromRGB/weight")
    top = f"{resolution}x{resolution}/FromRGB/weight"
    img_channels = V.v[top].shape[2] if top in V else -1
    group = kw.get("mbstd_group_size", 4)
    mbstd_channels = V.v["4x4/Conv/weight"].shape[2] - c4 if c4 else 0
    if group is None or group <= 1:
        group, mbstd_channels = 4, 0
    try:
        d = DiscriminatorConfig(c_dim=0, resolution=resolution, img_channels=int(img_channels), cbase=cbase,
                                cmax=cmax, arch=arch, mbstd_group=int(group), mbstd_channels=int(mbstd_channels),
                                num_fp16_res=int(kw.get("num_fp16_res", 0) or 0),
                                conv_clamp=None if kw.get("conv_clamp") is None else float(kw["conv_clamp"]))
        d.validate()
    except (ConfigError, TypeError, ValueError) as e:
        raise InteropError(f"{what}: {e}") from None
    return d


def _d_state(V: _Vars, d: DiscriminatorConfig) -> dict[str, torch.Tensor]:
    s: dict[str, torch.Tensor] = {}

    def conv(ours, theirs, bias=True):
        s[f"{ours}.weight"] = _conv(V(f"{theirs}/weight"))
        if bias:
            s[f"{ours}.bias"] = _t(V(f"{theirs}/bias"))

    for r in _powers_of_two(d.resolution)[:0:-1]:
        if d.arch == "skip" or r == d.resolution:
            conv(f"blocks.{r}.fromrgb", f"{r}x{r}/FromRGB")
        conv(f"blocks.{r}.conv0", f"{r}x{r}/Conv0")
        conv(f"blocks.{r}.conv1", f"{r}x{r}/Conv1_down")
        if d.arch == "resnet":
            conv(f"blocks.{r}.skip", f"{r}x{r}/Skip", bias=False)
    if d.arch == "skip" or d.resolution == 4:
        conv("epilogue.fromrgb", "4x4/FromRGB")
    conv("epilogue.conv", "4x4/Conv")
    s["epilogue.fc.weight"] = _dense(V("4x4/Dense0/weight"))
    s["epilogue.fc.bias"] = _t(V("4x4/Dense0/bias"))
    s["epilogue.out.weight"] = _dense(V("Output/weight"))
    s["epilogue.out.bias"] = _t(V("Output/bias"))
    return s


def _d_config_and_state(net: TFNetwork, what: str, like: GeneratorConfig | None):
    kw = _d_static_kwargs(net, what)
    V = _Vars(flatten_variables(net, what), what)
    V.ignore(r"(.*/)?lod")
    d = _d_config(V, kw, what)
    s = _d_state(V, d)
    V.check_all_used()
    return d, s


def import_tf_pickle(top: Any, what: str):
    """(config, {our network name: our state dict}, notes) from an unpickled TensorFlow network pickle:
    usually the tuple (G, D, Gs)."""
    nets = list(top) if isinstance(top, (tuple, list)) else [top]
    if not nets or not all(isinstance(n, TFNetwork) for n in nets):
        raise InteropError(f"{what}: expected TensorFlow networks (G, D, Gs)")
    for n in nets:
        _check_supported(n, what)
    by_name: dict[str, TFNetwork] = {}
    for i, n in enumerate(nets):
        name = n.state.get("name")
        fn = _func_name(n)
        if fn == _D_STYLEGAN2:
            key = "D"
        elif name == "Gs" or (len(nets) == 3 and i == 2) or (len(nets) == 1):
            key = "G_ema"
        else:
            key = "G"
        if key in by_name:
            raise InteropError(f"{what}: two networks would both be {key}")
        by_name[key] = n
    gens = {k: v for k, v in by_name.items() if k != "D"}
    if not gens:
        raise InteropError(f"{what}: no generator in the pickle")
    states: dict[str, dict[str, torch.Tensor]] = {}
    gcfg = None
    for key in ("G_ema", "G"):
        if key in gens:
            cfg, states[key] = _g_config_and_state(gens[key], f"{what} [{key}]")
            if gcfg is not None and cfg != gcfg:
                raise InteropError(f"{what}: G and Gs have different configurations")
            gcfg = cfg
    if "D" in by_name:
        dcfg, states["D"] = _d_config_and_state(by_name["D"], f"{what} [D]", gcfg)
    else:
        dcfg = DiscriminatorConfig(resolution=gcfg.resolution, img_channels=gcfg.img_channels, cbase=gcfg.cbase,
                                   cmax=gcfg.cmax, num_fp16_res=gcfg.num_fp16_res, conv_clamp=gcfg.conv_clamp)
    try:
        config = NetworkConfig(family="stylegan2", cfg="stylegan2", G=gcfg, D=dcfg).validate()
    except ConfigError as e:
        raise InteropError(f"{what}: {e}") from None
    notes = ["TensorFlow G_main applies truncation psi 0.5 by default when run; here psi is whatever you pass "
             "(generate --trunc)"]
    return config, states, notes
