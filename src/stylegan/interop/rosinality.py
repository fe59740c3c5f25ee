"""rosinality's stylegan2-pytorch checkpoints (``torch.save`` of ``{"g", "d", "g_ema", "args", ...}`` state
dicts, or ``{"g_ema", "latent_avg"}`` from their weight converter), both ways.

Their layout, and how it maps onto ours:

- mapping ``style.<i+1>`` (``style.0`` is the pixel norm): EqualLinear with lr_mul (0.01) and bias added
  before a leaky ReLU × sqrt(2); weights and biases stored exactly as ours (``mapping.layers.<i>``);
- synthesis: ``input.input`` [1, C, 4, 4] (our 4×4 ``const``); ``conv1`` and ``to_rgb1`` at 4×4; then per
  resolution ``convs.<2k>`` (upsampling), ``convs.<2k+1>`` and ``to_rgbs.<k>``. A StyledConv holds
  ``conv.weight`` [1, out, in, k, k] (scaled by 1/sqrt(fan_in) at run time, irrelevant with demodulation),
  ``conv.modulation`` (EqualLinear, bias init 1 — our ``affine``), ``noise.weight`` [1] (our scalar noise
  strength) and ``activate.bias`` (FusedLeakyReLU: bias, leaky ReLU 0.2, × sqrt(2) — our bias and lrelu);
- upsampling convs are ``conv_transpose2d(stride 2)`` with the kernel as is, then a [1, 3, 3, 1] blur ×4 with
  padding (1, 1): the same as ours. ToRGB: 1×1 modulated conv without demodulation, weight scale
  1/sqrt(in) (our style gain), bias [1, C, 1, 1], the skip image upsampled by the [1, 3, 3, 1] filter ×4;
- ``noises.noise_<i>`` [1, 1, r, r]: the const noise of conv layer i in order (4×4 conv1, then conv0, conv1
  per resolution);
- D: ``convs.0`` fromRGB (ConvLayer 1×1: ``0.weight``, ``1.bias``), ``convs.<j>`` ResBlocks (``conv1``,
  ``conv2`` with blur + stride-2 conv, ``skip`` 1×1 without bias, (out + skip)/sqrt(2)), minibatch std
  (group 4, 1 channel), ``final_conv``, ``final_linear.0`` (lrelu) and ``final_linear.1``;
- the blur kernels (``*.blur.kernel``, ``*.upsample.kernel``, ``convs.<j>.conv2.0.kernel``...) are fixed
  buffers: checked on import, written on export;
- the truncation average is not part of their networks: ``latent_avg`` when the file has it, otherwise the
  mean of w over 4096 fixed-seed samples, as their ``mean_latent(4096)``.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from stylegan.config import ConfigError, DiscriminatorConfig, GeneratorConfig, NetworkConfig, channels_at
from stylegan.interop.errors import InteropError
from stylegan.interop.channels import channels_to_cbase
from stylegan.interop.torch_files import Namespace, check_no_shared_memory

W_AVG_SAMPLES = 4096
W_AVG_CHUNK = 1 << 20  # elements of z per step of the estimate: its memory does not grow with z_dim


def _blur_kernel(gain: float) -> torch.Tensor:
    k = torch.tensor([1.0, 3.0, 3.0, 1.0])
    k = k[None, :] * k[:, None]
    return k / k.sum() * gain



class _State:
    def __init__(self, sd: dict, what: str):
        if not isinstance(sd, dict) or not all(isinstance(k, str) for k in sd):
            raise InteropError(f"{what}: not a state dict")
        for k, v in sd.items():
            if not isinstance(v, torch.Tensor):
                raise InteropError(f"{what}: {k} is not a tensor")
        check_no_shared_memory(sd, what)  # before anything is copied or built from them
        self.sd, self.what, self.used = sd, what, set()

    def __contains__(self, k):
        return k in self.sd

    def __call__(self, k: str, shape: tuple | None = None) -> torch.Tensor:
        if k not in self.sd:
            raise InteropError(f"{self.what}: tensor {k!r} is missing")
        t = self.sd[k]
        if shape is not None and tuple(t.shape) != tuple(shape):
            raise InteropError(f"{self.what}: {k} has shape {tuple(t.shape)}, expected {tuple(shape)}")
        self.used.add(k)
        return t.float() if t.is_floating_point() else t

    def kernel(self, k: str, gain: float):
        if k in self.sd:
            t = self(k)
            if t.shape != (4, 4) or not torch.allclose(t.float(), _blur_kernel(gain), atol=1e-6):
                raise InteropError(f"{self.what}: {k} is not the [1, 3, 3, 1] blur kernel; not supported")

    def check_all_used(self):
        left = sorted(set(self.sd) - self.used)
        if left:
            raise InteropError(f"{self.what}: tensors with no place in our network: {', '.join(left[:10])}"
                               + (" ..." if len(left) > 10 else ""))


def _g_config_from_rosinality(S: _State, what: str) -> tuple[GeneratorConfig, dict[int, int]]:
    """Our generator configuration, and the channels per resolution, from the tensors' names and shapes."""
    depth = 0
    while f"style.{depth + 1}.weight" in S:
        depth += 1
    if depth == 0:
        raise InteropError(f"{what}: no mapping layers (style.1.weight)")
    w_dim, z_dim = S.sd["style.1.weight"].shape
    if "input.input" not in S or tuple(S.sd["input.input"].shape[2:]) != (4, 4):
        raise InteropError(f"{what}: the constant input must be 4x4 (input.input [1, C, 4, 4])")
    n_up = 0
    while f"to_rgbs.{n_up}.conv.weight" in S:
        n_up += 1
    resolution = 4 * 2 ** n_up
    img_channels = S.sd["to_rgb1.bias"].shape[1] if "to_rgb1.bias" in S else 3
    channels = {4: S.sd["input.input"].shape[1]}
    for k in range(n_up):
        key = f"convs.{2 * k + 1}.conv.weight"
        if key not in S:
            raise InteropError(f"{what}: {key} is missing")
        channels[8 * 2 ** k] = S.sd[key].shape[1]
    cbase, cmax = channels_to_cbase(channels, what)
    try:
        g = GeneratorConfig(z_dim=int(z_dim), w_dim=int(w_dim), c_dim=0, resolution=resolution,
                            img_channels=int(img_channels), map_depth=depth, map_lr_mul=0.01, cbase=cbase,
                            cmax=cmax, arch="skip", num_fp16_res=0, conv_clamp=None).validate()
    except ConfigError as e:
        raise InteropError(f"{what}: {e}") from None
    return g, channels


def _g_state_from_rosinality(S: _State, g: GeneratorConfig, channels: dict[int, int]) -> dict[str, torch.Tensor]:
    """Our generator's state dict, each tensor checked for the shape ``g`` gives it."""
    w_dim, img_channels = g.w_dim, g.img_channels
    s: dict[str, torch.Tensor] = {}
    for i in range(g.map_depth):
        s[f"mapping.layers.{i}.weight"] = S(f"style.{i + 1}.weight", (w_dim, g.z_dim if i == 0 else w_dim))
        s[f"mapping.layers.{i}.bias"] = S(f"style.{i + 1}.bias", (w_dim,))

    def styled(ours, theirs, cin, cout, noise_idx, res, up=False):
        s[f"{ours}.weight"] = S(f"{theirs}.conv.weight", (1, cout, cin, 3, 3))[0]
        s[f"{ours}.affine.weight"] = S(f"{theirs}.conv.modulation.weight", (cin, w_dim))
        s[f"{ours}.affine.bias"] = S(f"{theirs}.conv.modulation.bias", (cin,))
        s[f"{ours}.noise.strength"] = S(f"{theirs}.noise.weight", (1,)).reshape([])
        s[f"{ours}.noise.const"] = S(f"noises.noise_{noise_idx}", (1, 1, res, res))[0, 0]
        s[f"{ours}.bias"] = S(f"{theirs}.activate.bias", (cout,))
        if up:
            S.kernel(f"{theirs}.conv.blur.kernel", 4.0)

    def torgb(ours, theirs, cin, up):
        s[f"{ours}.weight"] = S(f"{theirs}.conv.weight", (1, img_channels, cin, 1, 1))[0]
        s[f"{ours}.affine.weight"] = S(f"{theirs}.conv.modulation.weight", (cin, w_dim))
        s[f"{ours}.affine.bias"] = S(f"{theirs}.conv.modulation.bias", (cin,))
        s[f"{ours}.bias"] = S(f"{theirs}.bias", (1, img_channels, 1, 1)).reshape(-1)
        if up:
            S.kernel(f"{theirs}.upsample.kernel", 4.0)

    c4 = channels[4]
    s["synthesis.blocks.4.const"] = S("input.input", (1, c4, 4, 4))[0]
    styled("synthesis.blocks.4.conv1", "conv1", c4, c4, 0, 4)
    torgb("synthesis.blocks.4.torgb", "to_rgb1", c4, False)
    for k in range(int(math.log2(g.resolution)) - 2):
        r = 8 * 2 ** k
        cin, cout = channels[r // 2], channels[r]
        styled(f"synthesis.blocks.{r}.conv0", f"convs.{2 * k}", cin, cout, 2 * k + 1, r, up=True)
        styled(f"synthesis.blocks.{r}.conv1", f"convs.{2 * k + 1}", cout, cout, 2 * k + 2, r)
        torgb(f"synthesis.blocks.{r}.torgb", f"to_rgbs.{k}", cout, True)
    return s


def _g_from_rosinality(sd: dict, what: str) -> tuple[GeneratorConfig, dict[str, torch.Tensor]]:
    S = _State(sd, what)
    g, channels = _g_config_from_rosinality(S, what)
    s = _g_state_from_rosinality(S, g, channels)
    S.check_all_used()
    return g, s


def _d_from_rosinality(sd: dict, what: str) -> tuple[DiscriminatorConfig, dict[str, torch.Tensor]]:
    S = _State(sd, what)
    n_blocks = 0
    while f"convs.{n_blocks + 1}.conv1.0.weight" in S:
        n_blocks += 1
    resolution = 4 * 2 ** n_blocks
    if "convs.0.0.weight" not in S or "final_conv.0.weight" not in S:
        raise InteropError(f"{what}: not a rosinality discriminator (convs.0, final_conv)")
    img_channels = S.sd["convs.0.0.weight"].shape[1]
    c4 = S.sd["final_conv.0.weight"].shape[0]
    channels = {4: c4}
    for j in range(1, n_blocks + 1):
        channels[resolution // 2 ** (j - 1)] = S.sd[f"convs.{j}.conv1.0.weight"].shape[0]
    cbase, cmax = channels_to_cbase(channels, what)
    mbstd_channels = S.sd["final_conv.0.weight"].shape[1] - c4
    if mbstd_channels != 1:
        raise InteropError(f"{what}: final_conv takes {c4 + mbstd_channels} channels; expected {c4} + 1 (mbstd)")
    try:
        d = DiscriminatorConfig(c_dim=0, resolution=resolution, img_channels=int(img_channels), cbase=cbase,
                                cmax=cmax, arch="resnet", mbstd_group=4, mbstd_channels=1, num_fp16_res=0,
                                conv_clamp=None).validate()
    except ConfigError as e:
        raise InteropError(f"{what}: {e}") from None
    s: dict[str, torch.Tensor] = {}
    top = channels[resolution]
    s[f"blocks.{resolution}.fromrgb.weight"] = S("convs.0.0.weight", (top, img_channels, 1, 1))
    s[f"blocks.{resolution}.fromrgb.bias"] = S("convs.0.1.bias", (top,))
    for j in range(1, n_blocks + 1):
        r = resolution // 2 ** (j - 1)
        cin, cout = channels[r], channels[r // 2]
        s[f"blocks.{r}.conv0.weight"] = S(f"convs.{j}.conv1.0.weight", (cin, cin, 3, 3))
        s[f"blocks.{r}.conv0.bias"] = S(f"convs.{j}.conv1.1.bias", (cin,))
        s[f"blocks.{r}.conv1.weight"] = S(f"convs.{j}.conv2.1.weight", (cout, cin, 3, 3))
        s[f"blocks.{r}.conv1.bias"] = S(f"convs.{j}.conv2.2.bias", (cout,))
        s[f"blocks.{r}.skip.weight"] = S(f"convs.{j}.skip.1.weight", (cout, cin, 1, 1))
        S.kernel(f"convs.{j}.conv2.0.kernel", 1.0)
        S.kernel(f"convs.{j}.skip.0.kernel", 1.0)
    s["epilogue.conv.weight"] = S("final_conv.0.weight", (c4, c4 + 1, 3, 3))
    s["epilogue.conv.bias"] = S("final_conv.1.bias", (c4,))
    s["epilogue.fc.weight"] = S("final_linear.0.weight", (c4, c4 * 16))
    s["epilogue.fc.bias"] = S("final_linear.0.bias", (c4,))
    s["epilogue.out.weight"] = S("final_linear.1.weight", (1, c4))
    s["epilogue.out.bias"] = S("final_linear.1.bias", (1,))
    S.check_all_used()
    return d, s


def _estimate_w_avg(g: GeneratorConfig, state: dict[str, torch.Tensor]) -> torch.Tensor:
    from stylegan.networks.mapping import MappingNetwork

    m = MappingNetwork(g.z_dim, 0, g.w_dim, num_ws=None, num_layers=g.map_depth, lr_mul=g.map_lr_mul,
                       w_avg_beta=None)
    m.load_state_dict({k[len("mapping."):]: v for k, v in state.items()
                       if k.startswith("mapping.layers.")}, strict=True)
    gen = torch.Generator().manual_seed(0)
    # In steps of a multiple of 16 rows (torch's CPU generator then draws the same samples as all at once), so
    # that a file claiming a wide z (z_dim 8192 and w_dim 1: a few KB) cannot make this hold 4096 x z_dim.
    rows = max(16, W_AVG_CHUNK // max(g.z_dim, g.w_dim, 1) // 16 * 16)
    total = torch.zeros(g.w_dim, dtype=torch.float64)
    with torch.no_grad():
        for start in range(0, W_AVG_SAMPLES, rows):
            n = min(rows, W_AVG_SAMPLES - start)
            total += m(torch.randn(n, g.z_dim, generator=gen)).sum(dim=0, dtype=torch.float64)
    return (total / W_AVG_SAMPLES).float()


def import_rosinality(top: Any, what: str):
    """(config, {our network name: our state dict}, notes) from a loaded rosinality checkpoint."""
    if isinstance(top, dict) and "style.1.weight" in top:  # a bare generator state dict
        top = {"g_ema": top}
    if not isinstance(top, dict):
        raise InteropError(f"{what}: expected a dict of state dicts (g, d, g_ema), found {type(top).__name__}")
    names = {"g_ema": "G_ema", "g": "G", "d": "D"}
    present = {ours: top[theirs] for theirs, ours in names.items() if isinstance(top.get(theirs), dict)}
    if "G" not in present and "G_ema" not in present:
        keys = ", ".join(str(k) for k in list(top)[:10])
        raise InteropError(f"{what}: no generator state dict (g_ema or g) in the checkpoint (keys: {keys})")
    states: dict[str, dict[str, torch.Tensor]] = {}
    gcfg = None
    notes: list[str] = []
    for name in ("G_ema", "G"):
        if name in present:
            cfg, states[name] = _g_from_rosinality(present[name], f"{what} [{name}]")
            if gcfg is not None and cfg != gcfg:
                raise InteropError(f"{what}: g and g_ema have different shapes")
            gcfg = cfg
    latent_avg = top.get("latent_avg")
    for name in [n for n in ("G_ema", "G") if n in states]:
        if isinstance(latent_avg, torch.Tensor) and latent_avg.numel() == gcfg.w_dim and name == "G_ema":
            states[name]["mapping.w_avg"] = latent_avg.float().reshape(-1).clone()
        else:
            states[name]["mapping.w_avg"] = _estimate_w_avg(gcfg, states[name])
            notes.append(f"{name}: w_avg (for truncation) estimated as the mean w of {W_AVG_SAMPLES} samples "
                         "(seed 0); the checkpoint has no latent_avg for it")
    if "D" in present:
        dcfg, states["D"] = _d_from_rosinality(present["D"], f"{what} [D]")
    else:
        dcfg = DiscriminatorConfig(resolution=gcfg.resolution, img_channels=gcfg.img_channels, cbase=gcfg.cbase,
                                   cmax=gcfg.cmax, num_fp16_res=0, conv_clamp=None)
    args = top.get("args")
    if isinstance(args, Namespace):
        args = args.attrs
    if isinstance(args, dict):
        size = args.get("size")
        if isinstance(size, int) and size != gcfg.resolution:
            raise InteropError(f"{what}: args.size is {size} but the tensors are for {gcfg.resolution}x"
                               f"{gcfg.resolution}")
    try:
        config = NetworkConfig(family="stylegan2", cfg="stylegan2", G=gcfg, D=dcfg).validate()
    except ConfigError as e:
        raise InteropError(f"{what}: {e}") from None
    return config, states, notes


# ---------------------------------------------------------------------------------------------------------
# Export: our networks → their state dicts.

def rosinality_channel_multiplier(config: NetworkConfig) -> int | None:
    """The ``channel_multiplier`` of their Generator/Discriminator that gives our channel counts, or None."""
    for cm in (1, 2, 4, 8):
        table = {4: 512, 8: 512, 16: 512, 32: 512, 64: 256 * cm, 128: 128 * cm, 256: 64 * cm, 512: 32 * cm,
                 1024: 16 * cm}
        ok = True
        for c in (config.G, config.D):
            r = 4
            while r <= c.resolution:
                if channels_at(r, c.cbase, c.cmax) != table[r]:
                    ok = False
                r *= 2
        if ok:
            return cm
    return None


def export_checks(config: NetworkConfig, has_d: bool) -> list[str]:
    """Raise for what their layout cannot hold; return warnings for what their stock classes will not build."""
    g, d = config.G, config.D
    problems = []
    if g.arch != "skip":
        problems.append(f"G architecture {g.arch!r} (theirs is 'skip')")
    if g.c_dim:
        problems.append("a conditional network (theirs is unconditional)")
    if g.z_dim != g.w_dim:
        problems.append(f"z_dim {g.z_dim} != w_dim {g.w_dim} (their style_dim is both)")
    if has_d and (d.arch != "resnet" or d.mbstd_group != 4 or d.mbstd_channels != 1 or d.mbstd_gain != 1):
        problems.append("a D other than resnet with minibatch-std group 4, 1 channel")
    if problems:
        raise InteropError("cannot write a rosinality checkpoint: " + "; ".join(problems))
    warnings = []
    if g.img_channels != 3:
        warnings.append(f"{g.img_channels} image channels: their ToRGB is hard-wired to 3")
    if rosinality_channel_multiplier(config) is None:
        warnings.append("the channel counts are not those of their Generator/Discriminator for any "
                        "channel_multiplier: their classes need the channel table edited to load this file")
    if g.map_lr_mul != 0.01:
        warnings.append(f"mapping lr multiplier {g.map_lr_mul}: pass lr_mlp={g.map_lr_mul} to their Generator")
    return warnings


def generator_to_rosinality(state: dict[str, torch.Tensor], g: GeneratorConfig) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for i in range(g.map_depth):
        out[f"style.{i + 1}.weight"] = state[f"mapping.layers.{i}.weight"]
        out[f"style.{i + 1}.bias"] = state[f"mapping.layers.{i}.bias"]
    b = "synthesis.blocks"
    out["input.input"] = state[f"{b}.4.const"].unsqueeze(0)

    def styled(theirs, ours, noise_idx, up):
        out[f"{theirs}.conv.weight"] = state[f"{ours}.weight"].unsqueeze(0)
        if up:
            out[f"{theirs}.conv.blur.kernel"] = _blur_kernel(4.0)
        out[f"{theirs}.conv.modulation.weight"] = state[f"{ours}.affine.weight"]
        out[f"{theirs}.conv.modulation.bias"] = state[f"{ours}.affine.bias"]
        out[f"{theirs}.noise.weight"] = state[f"{ours}.noise.strength"].reshape(1)
        out[f"{theirs}.activate.bias"] = state[f"{ours}.bias"]
        out[f"noises.noise_{noise_idx}"] = state[f"{ours}.noise.const"][None, None]

    def torgb(theirs, ours, up):
        if up:
            out[f"{theirs}.upsample.kernel"] = _blur_kernel(4.0)
        out[f"{theirs}.conv.weight"] = state[f"{ours}.weight"].unsqueeze(0)
        out[f"{theirs}.conv.modulation.weight"] = state[f"{ours}.affine.weight"]
        out[f"{theirs}.conv.modulation.bias"] = state[f"{ours}.affine.bias"]
        out[f"{theirs}.bias"] = state[f"{ours}.bias"].reshape(1, -1, 1, 1)

    styled("conv1", f"{b}.4.conv1", 0, False)
    torgb("to_rgb1", f"{b}.4.torgb", False)
    n_up = int(math.log2(g.resolution)) - 2
    for k in range(n_up):
        r = 8 * 2 ** k
        styled(f"convs.{2 * k}", f"{b}.{r}.conv0", 2 * k + 1, True)
        styled(f"convs.{2 * k + 1}", f"{b}.{r}.conv1", 2 * k + 2, False)
        torgb(f"to_rgbs.{k}", f"{b}.{r}.torgb", True)
    return {k: v.detach().float().contiguous().clone() for k, v in out.items()}


def discriminator_to_rosinality(state: dict[str, torch.Tensor], d: DiscriminatorConfig) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    res = d.resolution
    out["convs.0.0.weight"] = state[f"blocks.{res}.fromrgb.weight"]
    out["convs.0.1.bias"] = state[f"blocks.{res}.fromrgb.bias"]
    j, r = 1, res
    while r > 4:
        out[f"convs.{j}.conv1.0.weight"] = state[f"blocks.{r}.conv0.weight"]
        out[f"convs.{j}.conv1.1.bias"] = state[f"blocks.{r}.conv0.bias"]
        out[f"convs.{j}.conv2.0.kernel"] = _blur_kernel(1.0)
        out[f"convs.{j}.conv2.1.weight"] = state[f"blocks.{r}.conv1.weight"]
        out[f"convs.{j}.conv2.2.bias"] = state[f"blocks.{r}.conv1.bias"]
        out[f"convs.{j}.skip.0.kernel"] = _blur_kernel(1.0)
        out[f"convs.{j}.skip.1.weight"] = state[f"blocks.{r}.skip.weight"]
        j, r = j + 1, r // 2
    out["final_conv.0.weight"] = state["epilogue.conv.weight"]
    out["final_conv.1.bias"] = state["epilogue.conv.bias"]
    out["final_linear.0.weight"] = state["epilogue.fc.weight"]
    out["final_linear.0.bias"] = state["epilogue.fc.bias"]
    out["final_linear.1.weight"] = state["epilogue.out.weight"]
    out["final_linear.1.bias"] = state["epilogue.out.bias"]
    return {k: v.detach().float().contiguous().clone() for k, v in out.items()}


def to_rosinality(config: NetworkConfig, states: dict[str, dict[str, torch.Tensor]]) -> tuple[dict, list[str]]:
    """Their checkpoint dict (plain tensors, ints and strings only) and warnings."""
    warnings = export_checks(config, "D" in states)
    out: dict[str, Any] = {}
    for ours, theirs in (("G_ema", "g_ema"), ("G", "g")):
        if ours in states:
            out[theirs] = generator_to_rosinality(states[ours], config.G)
    if "D" in states:
        out["d"] = discriminator_to_rosinality(states["D"], config.D)
    ref = states.get("G_ema", states.get("G"))
    if ref is None:
        raise InteropError("cannot write a rosinality checkpoint without a generator")
    out["latent_avg"] = ref["mapping.w_avg"].detach().float().clone()
    cm = rosinality_channel_multiplier(config)
    out["args"] = {"size": config.G.resolution, "latent": config.G.w_dim, "n_mlp": config.G.map_depth,
                   "channel_multiplier": cm if cm is not None else -1}
    return out, warnings
