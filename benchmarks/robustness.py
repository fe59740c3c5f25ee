"""Robustness of loading network files: thousands of damaged and crafted files, each loaded in a forked child.

    python benchmarks/robustness.py [--per-format 300] [--seed 0] [--json out.json]

What is generated, in a temporary folder:

- mutated: ``--per-format`` random byte mutations (flip, set, cut, insert, delete) of a valid tiny file of each
  format: the authors' PyTorch pickle, rosinality ``.pt`` files (zip and legacy torch formats), a TensorFlow
  pickle and this package's ``.safetensors``;
- truncated: each valid file cut at many offsets;
- crafted safetensors: metadata of the wrong JSON types, deeply nested JSON, huge claimed configurations
  (thousands of mapping layers, z_dim 5e7, c_dim 1e9...), malformed headers;
- crafted torch files: storages and views that claim huge sizes, a zip bomb, and files that try to make the
  loader multiply memory (one storage viewed or one tensor referenced many times, one byte string decoded many
  times...);
- code: pickles whose globals try to run code (``os.system``, ``builtins.eval``/``exec``, ``subprocess.Popen``,
  ``getattr``/``__import__`` chains, the INST/OBJ opcodes...), in every container; each would create a marker
  file if it ever ran.

Each file is loaded in a child made with ``os.fork`` (``stylegan.load``, and for foreign files also
``stylegan.interop.read_foreign``). The child reports its outcome (loaded; our_error: a ``CheckpointError``,
of which ``InteropError`` is one; other_exception: anything else, a traceback for a user; a child that dies or
hangs is ``killed``) and its peak RSS (``ru_maxrss``), as two increases:

- "peak MB": over the parent's RSS at fork (``/proc/self/statm``). Often negative: the child counts the
  parent's file-backed pages (shared libraries, about 90 MB here) only once it touches them again, so it starts
  below the parent, and this measure under-counts what a load allocates by up to that much;
- "over start": over the child's own RSS just after fork, which counts what the load allocates and the library
  pages it touches again (about 20 MB for a valid tiny file): the conservative measure.

A child's address space is capped (``--child-memory-mb`` above its size at fork) so that a runaway allocation
fails instead of exhausting the machine; a load that hits the cap is reported as such. A code-execution attempt
named ``X`` would create the marker file ``<markers>/X``; the markers are checked after every load.

Prints one row per category and writes every file's result as JSON. Exit status 1 if any load raised
another exception than ours, executed code, was killed, hit the memory cap, loaded a file that must be
refused, or (with ``--max-peak-mb``) used more memory than allowed.
"""
from __future__ import annotations

import argparse
import collections
import io
import json
import os
import pickle
import random
import re
import resource
import select
import signal
import struct
import sys
import tempfile
import time
import traceback
import warnings
import zipfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
import torch

FORMATS = ("nvlabs.pkl", "ros-zip.pt", "ros-legacy.pt", "tf.pkl", "ours.safetensors")
OUTCOMES = ("loaded", "our_error", "other_exception", "killed")
MB = 2 ** 20


# ---------------------------------------------------------------------------------------------------------
# Writing pickles that name globals without importing them.

class Global:
    """A reference to ``module.name``, written by name: the writer never imports or calls it."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args):  # the pickler insists that reduce functions be callable
        raise TypeError("a name only")


class Call:
    """Pickles as ``fn(*args)`` (REDUCE), ``fn`` a :class:`Global` or a real function."""

    def __init__(self, fn, *args):
        self.fn, self.args = fn, args


class New:
    """Pickles as ``cls.__new__(cls)`` (NEWOBJ), then dict items (SETITEMS) and a state (BUILD)."""

    def __init__(self, cls: Global, items: dict | None = None, state=None):
        self.cls, self.items, self.state = cls, items, state


class Build:
    """Pickles as ``obj`` with ``state`` set (BUILD)."""

    def __init__(self, obj, state):
        self.obj, self.state = obj, state


class _Writer(pickle._Pickler):
    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, Global):
            self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        elif isinstance(obj, Call):
            self.save(obj.fn)
            self.save(obj.args)
            self.write(pickle.REDUCE)
        elif isinstance(obj, New):
            self.save(obj.cls)
            self.save(())
            self.write(pickle.NEWOBJ)
            if obj.items:
                self.write(pickle.MARK)
                for k, v in obj.items.items():
                    self.save(k)
                    self.save(v)
                self.write(pickle.SETITEMS)
            if obj.state is not None:
                self.save(obj.state)
                self.write(pickle.BUILD)
        elif isinstance(obj, Build):
            self.save(obj.obj)
            self.save(obj.state)
            self.write(pickle.BUILD)
        else:
            super().save(obj, save_persistent_id)


def dumps(obj, protocol: int = 4) -> bytes:
    """``obj`` pickled, with :class:`Global`, :class:`Call`, :class:`New` and :class:`Build` written as such."""
    buf = io.BytesIO()
    _Writer(buf, protocol).dump(obj)
    return buf.getvalue()


def _easy(d):
    """The authors' ``dnnlib.EasyDict`` (nested)."""
    if isinstance(d, dict):
        return New(Global("dnnlib.util", "EasyDict"), {k: _easy(v) for k, v in d.items()})
    return d


# ---------------------------------------------------------------------------------------------------------
# Valid tiny files of every format.

def tiny_config(**overrides):
    from stylegan.presets import make_config

    kw = dict(resolution=8, cbase=32, cmax=4, map_depth=1, z_dim=4, w_dim=4, num_fp16_res=0, conv_clamp=None)
    return make_config("stylegan2", **{**kw, **overrides})


def _nvlabs_names(state: dict, net: str) -> dict:
    """Our state dict in the authors' PyTorch names, with the resampling filters their layers hold."""
    rules = ([(r"^mapping\.layers\.(\d+)\.", r"mapping.fc\1."),
              (r"^synthesis\.blocks\.(\d+)\.(conv[01])\.noise\.(const|strength)$", r"synthesis.b\1.\2.noise_\3"),
              (r"^synthesis\.blocks\.(\d+)\.", r"synthesis.b\1.")] if net == "G" else
             [(r"^epilogue\.", "b4."), (r"^blocks\.(\d+)\.", r"b\1.")])
    f = torch.tensor([1.0, 3.0, 3.0, 1.0])
    out = {}
    for k, v in state.items():
        for pattern, repl in rules:
            if re.match(pattern, k):
                k = re.sub(pattern, repl, k)
                break
        out[k] = v.detach().clone()
        layer = re.match(r"^((synthesis\.)?b\d+(\.conv[01])?)\.", k)
        if layer and not k.startswith("b4."):
            out[layer.group(1) + ".resample_filter"] = torch.outer(f, f) / 64
    return out


_CLASSES = [(r"", "{root}"), (r"mapping", "MappingNetwork"), (r"synthesis", "SynthesisNetwork"),
            (r"synthesis\.b\d+", "SynthesisBlock"), (r"synthesis\.b\d+\.conv[01]", "SynthesisLayer"),
            (r"synthesis\.b\d+\.torgb", "ToRGBLayer"), (r"b4", "DiscriminatorEpilogue"),
            (r"b\d+", "DiscriminatorBlock"), (r"b4\.mbstd", "MinibatchStdLayer"),
            (r".*(fc\d*|affine|out)", "FullyConnectedLayer"), (r".*", "Conv2dLayer")]
_BUFFERS = ("w_avg", "resample_filter", "noise_const")


def persistent_module(flat: dict, root: str, kwargs: dict, module_src: str, children=(),
                      params: dict | None = None) -> Call:
    """The authors' persistent module tree (``torch_utils.persistence``) holding ``flat`` (their names). One
    tensor given twice becomes one parameter (pickled once, then referenced): ``params`` holds them by id."""
    params = {} if params is None else params

    def parameter(t):
        if not isinstance(t, torch.Tensor):  # a tensor written as a rebuild call
            return Call(Global("torch._utils", "_rebuild_parameter"), t, False, Call(Global("collections",
                                                                                          "OrderedDict")))
        if id(t) not in params:
            params[id(t)] = (t, torch.nn.Parameter(t, requires_grad=False))
        return params[id(t)][1]

    tree: dict = {}
    for path in children:
        node = tree
        for part in path.split("."):
            node = node.setdefault(("module", part), {})
    for name, t in flat.items():
        *path, leaf = name.split(".")
        node = tree
        for part in path:
            node = node.setdefault(("module", part), {})
        node[("buffer" if leaf in _BUFFERS else "param", leaf)] = t

    def build(node, path):
        cls = next(c for pattern, c in _CLASSES if re.fullmatch(pattern, path)).format(root=root)
        od = Global("collections", "OrderedDict")
        state = {
            "training": False,
            "_parameters": Call(od, [(k, parameter(v)) for (kind, k), v in node.items() if kind == "param"]),
            "_buffers": Call(od, [(k, v) for (kind, k), v in node.items() if kind == "buffer"]),
            "_non_persistent_buffers_set": set(),
            "_forward_hooks": Call(od),
            "_modules": Call(od, [(k, build(v, f"{path}.{k}".lstrip("."))) for (kind, k), v in node.items()
                                  if kind == "module"]),
            "_init_args": (),
            "_init_kwargs": _easy(kwargs if not path else {}),
            "weight_gain": np.float64(0.125),
            "activation": "lrelu",
        }
        meta = dict(type="class", version=6, module_src=module_src, class_name=cls, state=state)
        return Call(Global("torch_utils.persistence", "_reconstruct_persistent_obj"), meta)

    return build(tree, "")


MODULE_SRC = "# the authors' module source: kept as text, never executed\n"


def nvlabs_pickle(config, nets, module_src: str = MODULE_SRC, g_flat: dict | None = None,
                  g_kwargs: dict | None = None) -> bytes:
    """An authors' network pickle (stylegan2-ada-pytorch layout) of our networks."""
    g, d = config.G, config.D
    gk = dict(z_dim=g.z_dim, c_dim=g.c_dim, w_dim=g.w_dim, img_resolution=g.resolution, img_channels=g.img_channels,
              mapping_kwargs=dict(num_layers=g.map_depth),
              synthesis_kwargs=dict(channel_base=g.cbase, channel_max=g.cmax, num_fp16_res=g.num_fp16_res,
                                    conv_clamp=g.conv_clamp, architecture=g.arch))
    gk.update(g_kwargs or {})
    dk = dict(c_dim=d.c_dim, img_resolution=d.resolution, img_channels=d.img_channels, architecture=d.arch,
              channel_base=d.cbase, channel_max=d.cmax, num_fp16_res=d.num_fp16_res, conv_clamp=d.conv_clamp,
              block_kwargs={"freeze_layers": 0}, mapping_kwargs={}, epilogue_kwargs={"mbstd_group_size": d.mbstd_group})
    G = g_flat if g_flat is not None else _nvlabs_names(nets["G"].state_dict(), "G")
    G_ema = g_flat if g_flat is not None else _nvlabs_names(nets["G_ema"].state_dict(), "G")
    params: dict = {}
    data = {"G": persistent_module(G, "Generator", gk, module_src, params=params),
            "D": persistent_module(_nvlabs_names(nets["D"].state_dict(), "D"), "Discriminator", dk, module_src,
                                   children=("b4.mbstd",)),
            "G_ema": persistent_module(G_ema, "Generator", gk, module_src, params=params),
            "augment_pipe": persistent_module({"p": torch.zeros([])}, "AugmentPipe", {"xflip": 1}, module_src),
            "training_set_kwargs": {"class_name": "training.dataset.ImageFolderDataset", "path": "x.zip",
                                    "use_labels": False, "resolution": config.G.resolution, "max_size": None}}
    return dumps(data, protocol=4)


def _tf_generator_vars(sd: dict, config) -> dict:
    """Our generator's state as the authors' TensorFlow variables (skip architecture)."""
    g = config.G
    sd = {k: v.detach().numpy() for k, v in sd.items()}
    v = {"dlatent_avg": sd["mapping.w_avg"]}
    for i in range(g.map_depth):
        v[f"mapping/Dense{i}/weight"] = sd[f"mapping.layers.{i}.weight"].T
        v[f"mapping/Dense{i}/bias"] = sd[f"mapping.layers.{i}.bias"]

    def modconv(ours, theirs, flip=False, noise=None):
        w = sd[f"{ours}.weight"]
        v[f"{theirs}/weight"] = (w[:, :, ::-1, ::-1] if flip else w).transpose(2, 3, 1, 0)
        v[f"{theirs}/mod_weight"] = sd[f"{ours}.affine.weight"].T
        v[f"{theirs}/mod_bias"] = sd[f"{ours}.affine.bias"] - 1
        v[f"{theirs}/bias"] = sd[f"{ours}.bias"]
        if noise is not None:
            v[f"{theirs}/noise_strength"] = sd[f"{ours}.noise.strength"]
            v[f"synthesis/noise{noise}"] = sd[f"{ours}.noise.const"][None, None]

    v["synthesis/4x4/Const/const"] = sd["synthesis.blocks.4.const"][None]
    modconv("synthesis.blocks.4.conv1", "synthesis/4x4/Conv", noise=0)
    r, log2 = 4, 2
    while r <= g.resolution:
        ours, theirs = f"synthesis.blocks.{r}", f"synthesis/{r}x{r}"
        if r > 4:
            modconv(f"{ours}.conv0", f"{theirs}/Conv0_up", flip=True, noise=2 * log2 - 5)
            modconv(f"{ours}.conv1", f"{theirs}/Conv1", noise=2 * log2 - 4)
        modconv(f"{ours}.torgb", f"{theirs}/ToRGB")
        r, log2 = r * 2, log2 + 1
    return {k: np.ascontiguousarray(a, dtype=np.float32) for k, a in v.items()}


def _tf_discriminator_vars(sd: dict, config) -> dict:
    """Our discriminator's state as the authors' TensorFlow variables (resnet architecture)."""
    d = config.D
    sd = {k: v.detach().numpy() for k, v in sd.items()}
    v = {}

    def conv(ours, theirs, bias=True):
        v[f"{theirs}/weight"] = sd[f"{ours}.weight"].transpose(2, 3, 1, 0)
        if bias:
            v[f"{theirs}/bias"] = sd[f"{ours}.bias"]

    r = d.resolution
    conv(f"blocks.{r}.fromrgb", f"{r}x{r}/FromRGB")
    while r > 4:
        conv(f"blocks.{r}.conv0", f"{r}x{r}/Conv0")
        conv(f"blocks.{r}.conv1", f"{r}x{r}/Conv1_down")
        conv(f"blocks.{r}.skip", f"{r}x{r}/Skip", bias=False)
        r //= 2
    conv("epilogue.conv", "4x4/Conv")
    v["4x4/Dense0/weight"], v["4x4/Dense0/bias"] = sd["epilogue.fc.weight"].T, sd["epilogue.fc.bias"]
    v["Output/weight"], v["Output/bias"] = sd["epilogue.out.weight"].T, sd["epilogue.out.bias"]
    return {k: np.ascontiguousarray(a, dtype=np.float32) for k, a in v.items()}


def _tf_network(name: str, func: str, variables: dict, components: dict | None = None, static: dict | None = None):
    state = {"version": 4, "name": name, "static_kwargs": dict(static or {}), "components": dict(components or {}),
             "build_module_src": MODULE_SRC, "build_func_name": f"training.networks_stylegan2.{func}",
             "variables": [(k, a) for k, a in variables.items()]}
    return New(Global("dnnlib.tflib.network", "Network"), state=state)


def tf_pickle(g_vars: dict, d_vars: dict, d_static: dict | None = None) -> bytes:
    """(G, D, Gs) as the authors' TensorFlow training pickles them."""
    def gen(name):
        comps = {key: _tf_network(f"G_{key}", func, {k[len(key) + 1:]: a for k, a in g_vars.items()
                                                      if k.startswith(key + "/")})
                 for key, func in (("mapping", "G_mapping"), ("synthesis", "G_synthesis_stylegan2"))}
        return _tf_network(name, "G_main", {k: a for k, a in g_vars.items() if "/" not in k}, comps)

    return dumps((gen("G"), _tf_network("D", "D_stylegan2", d_vars, static=d_static), gen("Gs")), protocol=4)


def valid_files(workdir: Path) -> dict[str, bytes]:
    """A valid tiny file of each format (all load, to the same network)."""
    from stylegan.checkpoint import save_checkpoint
    from stylegan.interop.rosinality import to_rosinality
    from stylegan.networks import build_networks

    config = tiny_config()
    nets = build_networks(config, seed=0)
    out = {"nvlabs.pkl": nvlabs_pickle(config, nets)}
    ros = to_rosinality(config, {k: v.state_dict() for k, v in nets.items()})[0]
    for name, zipped in (("ros-zip.pt", True), ("ros-legacy.pt", False)):
        buf = io.BytesIO()
        torch.save(ros, buf, _use_new_zipfile_serialization=zipped)
        out[name] = buf.getvalue()
    out["tf.pkl"] = tf_pickle(_tf_generator_vars(nets["G_ema"].state_dict(), config),
                              _tf_discriminator_vars(nets["D"].state_dict(), config))
    save_checkpoint(workdir / "ours.safetensors", config, nets)
    out["ours.safetensors"] = (workdir / "ours.safetensors").read_bytes()
    return out


# ---------------------------------------------------------------------------------------------------------
# Mutations.

def mutate(data: bytes, rng: random.Random) -> bytes:
    """1 to 4 random edits: flip a bit, set a byte, cut the tail, insert bytes, delete a run."""
    b = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not b:
            break
        i = rng.randrange(len(b))
        kind = rng.choice(("flip", "set", "cut", "insert", "delete"))
        if kind == "flip":
            b[i] ^= 1 << rng.randrange(8)
        elif kind == "set":
            b[i] = rng.choice((0, 1, 0x7F, 0x80, 0xFF, rng.randrange(256)))
        elif kind == "cut":
            del b[i:]
        elif kind == "insert":
            b[i:i] = bytes(rng.randrange(256) for _ in range(rng.randint(1, 8)))
        else:
            del b[i:i + rng.randint(1, 16)]
    return bytes(b)


def truncation_offsets(n: int, count: int = 24) -> list[int]:
    """``count`` offsets from 0 to n - 1: the first bytes, the last bytes, and spread between."""
    picks = {0, 1, 2, 4, 8, 9, 16, 64, n - 1, n - 2, n - 8, n // 2}
    picks.update(n * k // (count - len(picks) + 1) for k in range(1, count - len(picks) + 1))
    return sorted(p for p in picks if 0 <= p < n)


# ---------------------------------------------------------------------------------------------------------
# Crafted files.

@dataclass
class Case:
    """One file to load. ``expect``: "refused" (must fail with our error), "loaded", or "any"."""

    category: str
    name: str
    make: Callable[[], bytes] = field(repr=False)
    expect: str = "any"


def _safetensors(tensors: dict, meta: dict) -> bytes:
    from safetensors.torch import save

    return save(tensors, metadata=meta)


def _raw_safetensors(header: dict | str | bytes, body: bytes = b"", length: int | None = None) -> bytes:
    h = header if isinstance(header, bytes) else (header if isinstance(header, str) else json.dumps(header)).encode()
    return struct.pack("<Q", len(h) if length is None else length) + h + body


def safetensors_cases(valid: dict[str, bytes]) -> list[Case]:
    from safetensors.torch import load

    from stylegan.checkpoint import tensors_digest

    tensors = load(valid["ours.safetensors"])
    config = tiny_config().to_dict()

    def crafted(cfg=None, **meta_overrides) -> Callable[[], bytes]:
        def make():
            meta = {"format": "stylegan-checkpoint", "format_version": "1", "networks": '["G", "G_ema", "D"]',
                    "extra": "{}", "config": json.dumps(cfg if cfg is not None else config),
                    "sha256": tensors_digest(tensors)}
            meta.update(meta_overrides)
            return _safetensors(tensors, meta)
        return make

    def with_fields(**nets):
        d = json.loads(json.dumps(config))
        for net, fields in nets.items():
            (d if net == "top" else d[net]).update(fields)
        return d

    cases = []
    wrong_types = {"conv_clamp-str": ("G", {"conv_clamp": "256"}), "conv_clamp-list": ("G", {"conv_clamp": [256]}),
                   "map_lr_mul-str": ("G", {"map_lr_mul": "0.01"}), "w_avg_beta-null": ("G", {"w_avg_beta": None}),
                   "cmap_dim-str": ("D", {"cmap_dim": "x"}), "z_dim-float": ("G", {"z_dim": 5.5}),
                   "noise-int": ("G", {"noise": 1}), "cbase-bool": ("G", {"cbase": True}),
                   "resolution-str": ("G", {"resolution": "8"}), "arch-int": ("G", {"arch": 3}),
                   "z_dim-nan": ("G", {"z_dim": float("nan")}), "cmax-neg": ("D", {"cmax": -4}),
                   "G-list": ("top", {"G": [1, 2]}), "family-unknown": ("top", {"family": "stylegan9"})}
    for name, (net, fields) in wrong_types.items():
        cases.append(Case("safetensors-metadata", f"type-{name}.safetensors", crafted(with_fields(**{net: fields})),
                          "refused"))
    deep = 100_000
    metas = {"config-deep-list": dict(config="[" * deep + "]" * deep),
             "config-deep-dict": dict(config='{"a":' * deep + "1" + "}" * deep),
             "networks-deep": dict(networks="[" * deep + "]" * deep),
             "extra-deep": dict(extra='{"a":' * deep + "1" + "}" * deep),
             "networks-dict": dict(networks='{"G": 1}'), "networks-evil": dict(networks='["G", "evil"]'),
             "extra-list": dict(extra="[1, 2]"), "extra-text": dict(extra='"text"'),
             "format_version-1e9": dict(format_version="1e9"), "format_version-huge": dict(format_version="9" * 5000),
             "format-other": dict(format="other"), "config-not-json": dict(config="{"),
             # Integers longer than Python converts (4300 digits): json.loads raises a plain ValueError.
             "config-long-int": dict(config='{"G": {"z_dim": ' + "9" * 5000 + "}}"),
             "networks-long-int": dict(networks="[" + "9" * 5000 + "]"),
             "extra-long-int": dict(extra='{"a": ' + "9" * 5000 + "}"),
             "format_version-superscript": dict(format_version="\u00b2"),
             "sha256-wrong": dict(sha256="0" * 64)}
    for name, meta in metas.items():
        cases.append(Case("safetensors-metadata", f"meta-{name}.safetensors", crafted(**meta), "refused"))
    huge = {"map_depth-3000": dict(G={"map_depth": 3000}), "z_dim-5e7": dict(G={"z_dim": 50_000_000}),
            "c_dim-1e9": dict(G={"c_dim": 10 ** 9}), "cmax-1e5": dict(G={"cmax": 100_000}),
            "w_dim-1e6": dict(G={"w_dim": 1_000_000}), "resolution-2^20": dict(G={"resolution": 2 ** 20}),
            "D-cbase-2^40": dict(D={"cbase": 2 ** 40}), "mbstd_group-1e9": dict(D={"mbstd_group": 10 ** 9}),
            # Within every limit, but gigabytes of layers: refused from the tensor table before it is built.
            "cmax-4096": dict(G={"cmax": 4096, "cbase": 2 ** 20}, D={"cmax": 4096, "cbase": 2 ** 20}),
            "res-1024-cmax-8192": dict(G={"resolution": 1024, "cmax": 8192, "cbase": 2 ** 22, "map_depth": 64,
                                          "z_dim": 8192, "w_dim": 8192},
                                       D={"resolution": 1024, "cmax": 8192, "cbase": 2 ** 22}),
            "c_dim-100000": dict(G={"c_dim": 100_000}, D={"c_dim": 100_000})}
    for name, nets in huge.items():
        cases.append(Case("safetensors-huge", f"huge-{name}.safetensors", crafted(with_fields(**nets)), "refused"))

    t = {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}
    headers = {
        "length-2^63": lambda: _raw_safetensors({"w": t}, bytes(16), length=2 ** 63 - 1),
        "length-past-end": lambda: _raw_safetensors({"w": t}, bytes(16), length=10 ** 6),
        "length-0": lambda: _raw_safetensors(b"", bytes(16)),
        "tensor-2^40": lambda: _raw_safetensors({"w": {"dtype": "F32", "shape": [2 ** 40],
                                                       "data_offsets": [0, 4 * 2 ** 40]}}, bytes(16)),
        "tensor-1e9-zero-offsets": lambda: _raw_safetensors({"w": {"dtype": "F32", "shape": [10 ** 9],
                                                                   "data_offsets": [0, 0]}}, bytes(16)),
        "shape-overflow": lambda: _raw_safetensors({"w": {"dtype": "F32", "shape": [2 ** 32, 2 ** 32, 2 ** 32],
                                                          "data_offsets": [0, 16]}}, bytes(16)),
        "overlapping": lambda: _raw_safetensors({"a": t, "b": t}, bytes(16)),
        "offsets-reversed": lambda: _raw_safetensors({"w": {"dtype": "F32", "shape": [4],
                                                            "data_offsets": [16, 0]}}, bytes(16)),
        "dtype-unknown": lambda: _raw_safetensors({"w": {"dtype": "F128", "shape": [4],
                                                         "data_offsets": [0, 16]}}, bytes(16)),
        "metadata-nested": lambda: _raw_safetensors({"__metadata__": {"format": {"a": 1}}, "w": t}, bytes(16)),
        "metadata-deep": lambda: _raw_safetensors('{"__metadata__": ' + '{"a": ' * 10_000 + "1" + "}" * 10_001,
                                                  bytes(16)),
        "header-not-utf8": lambda: _raw_safetensors(b'{"w": "\xff\xfe"}', bytes(16)),
        "header-deep-list": lambda: _raw_safetensors("[" * 100_000 + "]" * 100_000),
        "many-tensors": lambda: _raw_safetensors({f"w{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]}
                                                  for i in range(100_000)}),
        # The same with our metadata: every tensor is read before the digest can be checked.
        "many-tensors-stylegan": lambda: _raw_safetensors(
            {"__metadata__": {"format": "stylegan-checkpoint", "format_version": "1", "config": json.dumps(config)},
             **{f"G.w{i}": {"dtype": "F32", "shape": [0], "data_offsets": [0, 0]} for i in range(100_000)}}),
    }
    for name, make in headers.items():
        cases.append(Case("safetensors-header", f"header-{name}.safetensors", make, "refused"))
    return cases


LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_SYS_INFO = {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 4}}


def legacy_torch(obj_pickle: bytes, storages: list[bytes] = (), keys: list[str] | None = None) -> bytes:
    """A legacy ``torch.save`` stream around an already pickled object: header, object, keys, raw storages."""
    keys = [str(i) for i in range(len(storages))] if keys is None else keys
    out = [pickle.dumps(LEGACY_MAGIC, 2), pickle.dumps(1001, 2), pickle.dumps(_SYS_INFO, 2), obj_pickle,
           pickle.dumps(keys, 2)]
    for raw in storages:
        out.append(struct.pack("<q", len(raw) // 4) + raw)  # float32 elements
    return b"".join(out)


def torch_zip(data_pkl: bytes, storages: dict[str, bytes] | None = None, compress: bool = False) -> bytes:
    """A ``torch.save`` zip archive around an already pickled object."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED) as z:
        z.writestr("archive/data.pkl", data_pkl)
        z.writestr("archive/byteorder", "little")
        for key, raw in (storages or {}).items():
            z.writestr(f"archive/data/{key}", raw)
        z.writestr("archive/version", "3\n")
    return buf.getvalue()


def _storage_pid(key: str, numel: int, dtype: str = "FloatStorage"):
    return ("storage", Global("torch", dtype), key, "cpu", numel)


class _WithPids(_Writer):
    """Writes :class:`Pid` objects as persistent ids, as torch.save does for storages."""

    def persistent_id(self, obj):
        return obj.pid if isinstance(obj, Pid) else None


class Pid:
    def __init__(self, pid):
        self.pid = pid


def dumps_pids(obj, protocol: int = 2) -> bytes:
    buf = io.BytesIO()
    _WithPids(buf, protocol).dump(obj)
    return buf.getvalue()


def _tensor(storage, offset: int, size: tuple, stride: tuple) -> Call:
    return Call(Global("torch._utils", "_rebuild_tensor_v2"), storage, offset, size, stride, False, Call(
        Global("collections", "OrderedDict")))


def torch_huge_cases() -> list[Case]:
    """Storages, views, archive members and pickle opcodes that claim more than the file holds."""
    small = bytes(16)  # 4 float32

    def in_zip(storage_numel, size, stride, offset=0):
        obj = {"g_ema": {"style.1.weight": _tensor(Pid(_storage_pid("0", storage_numel)), offset, size, stride)}}
        return lambda: torch_zip(dumps_pids(obj), {"0": small})

    def in_legacy(storage_numel, size, stride):
        obj = {"g_ema": {"style.1.weight": _tensor(Pid(_storage_pid("0", storage_numel)), 0, size, stride)}}
        return lambda: legacy_torch(dumps_pids(obj), [small])

    def legacy_count():  # the storage's element count in the stream is 2**60
        obj = {"w": _tensor(Pid(_storage_pid("0", 4)), 0, (4,), (1,))}
        return legacy_torch(dumps_pids(obj), [], keys=["0"]) + struct.pack("<q", 2 ** 60) + small

    def member_size_claim():  # the central directory says the storage member holds 2 GB
        data = bytearray(torch_zip(dumps_pids({"w": _tensor(Pid(_storage_pid("0", 4)), 0, (4,), (1,))}),
                                   {"0": small}))
        cd = data.find(b"archive/data/0", data.find(b"PK\x01\x02")) - 46
        data[cd + 20:cd + 28] = struct.pack("<II", 2 ** 31 - 1, 2 ** 31 - 1)
        return bytes(data)

    def zip_bomb():  # 1 GB of zeros, deflated to about 1 MB
        n = 250_000_000
        return torch_zip(dumps_pids({"w": _tensor(Pid(_storage_pid("0", n)), 0, (n,), (1,))}), {"0": bytes(4 * n)},
                         compress=True)

    def numpy_claim():
        return dumps({"G": _np_array("f4", (2 ** 20, 2 ** 20), small)})

    def zero_size_huge_dims():  # no elements, but a dimension of 2**40 (a claimed z_dim)
        obj = {"g_ema": {"style.1.weight": _tensor(Pid(_storage_pid("0", 4)), 0, (2 ** 40, 0), (1, 1))}}
        return torch_zip(dumps_pids(obj), {"0": small})

    def op(body: bytes, proto: int = 4):
        return lambda: bytes([0x80, proto]) + body

    return [
        Case("torch-huge", "zip-storage-2^40.pt", in_zip(2 ** 40, (4,), (1,)), "refused"),
        Case("torch-huge", "zip-view-2^20x2^20.pt", in_zip(4, (2 ** 20, 2 ** 20), (2 ** 20, 1)), "refused"),
        Case("torch-huge", "zip-view-stride0.pt", in_zip(4, (2 ** 30, 2 ** 30), (0, 0)), "refused"),
        Case("torch-huge", "zip-view-offset-2^40.pt", in_zip(4, (4,), (1,), offset=2 ** 40), "refused"),
        Case("torch-huge", "zip-view-negative-stride.pt", in_zip(4, (4,), (-1,), offset=3), "refused"),
        Case("torch-huge", "zip-view-17-dims.pt", in_zip(4, (1,) * 17, (1,) * 17), "refused"),
        Case("torch-huge", "zip-view-size-2^64.pt", in_zip(4, (2 ** 64,), (1,)), "refused"),
        Case("torch-huge", "zip-zero-size-huge-dims.pt", zero_size_huge_dims, "refused"),
        Case("torch-huge", "zip-member-size-2GB.pt", member_size_claim, "refused"),
        Case("torch-huge", "zip-bomb-1GB.pt", zip_bomb, "refused"),
        Case("torch-huge", "legacy-storage-2^40.pt", in_legacy(2 ** 40, (4,), (1,)), "refused"),
        Case("torch-huge", "legacy-count-2^60.pt", legacy_count, "refused"),
        Case("torch-huge", "legacy-view-2^20x2^20.pt", in_legacy(4, (2 ** 20, 2 ** 20), (2 ** 20, 1)), "refused"),
        Case("torch-huge", "pickle-binbytes8-2^62.pkl", op(b"\x8e" + struct.pack("<Q", 2 ** 62) + small), "refused"),
        Case("torch-huge", "pickle-binunicode8-2^62.pkl", op(b"\x8d" + struct.pack("<Q", 2 ** 62) + small),
             "refused"),
        Case("torch-huge", "pickle-long4-2^31.pkl", op(b"\x8b" + struct.pack("<i", 2 ** 31 - 1) + small, 2),
             "refused"),
        Case("torch-huge", "pickle-frame-2^62.pkl", op(b"\x95" + struct.pack("<Q", 2 ** 62) + b"N."), "refused"),
        Case("torch-huge", "pickle-memo-2^32.pkl", op(b"N\x94r" + struct.pack("<I", 2 ** 32 - 1) + b"."),
             "refused"),
        Case("torch-huge", "pickle-deep-lists.pkl", op(b"]" * 200_000 + b"a" * 199_999 + b"."), "refused"),
        Case("torch-huge", "pickle-numpy-2^20x2^20.pkl", numpy_claim, "refused"),
    ]


def _np_array(code: str, shape: tuple, raw: bytes) -> Build:
    """A numpy array as numpy pickles one: ``_reconstruct``, then its state with the raw bytes."""
    arr = Call(Global("numpy._core.multiarray", "_reconstruct"), Global("numpy", "ndarray"), (0,), b"b")
    order = "|" if code[-1] == "1" else "<"
    dtype = Build(Call(Global("numpy", "dtype"), code, False, True), (3, order, None, None, None, -1, -1, 0))
    return Build(arr, (1, shape, dtype, False, raw))


def _storage_blob(t: torch.Tensor) -> bytes:
    """What a tensor pickled by ``pickle`` holds for its storage: a legacy ``torch.save`` of the typed storage."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TypedStorage is deprecated, but it is what tensors pickle
        storage = t.storage()
    buf = io.BytesIO()
    torch.save(storage, buf, _use_new_zipfile_serialization=False)
    return buf.getvalue()


def _shared_storage_views(n: int = 1000) -> bytes:
    base = torch.arange(250_000, dtype=torch.float32)  # 1 MB
    buf = io.BytesIO()
    torch.save({"g_ema": {f"t{i}": base[i:] for i in range(n)}}, buf)  # 1 GB if each view were copied
    return buf.getvalue()


def _wide_nets(width: int):
    from stylegan.networks import build_networks

    config = tiny_config(z_dim=width, w_dim=width)
    return config, build_networks(config, seed=0)


def _ros_shared_mapping(depth: int, width: int, how: str) -> bytes:
    """A rosinality generator whose ``depth`` mapping layers of ``width`` x ``width`` share one storage: a file of
    about one layer's size for a network ``depth`` times larger ("same": one tensor; "views": views of one fp16
    storage)."""
    from stylegan.interop.rosinality import to_rosinality

    config, nets = _wide_nets(width)
    sd = to_rosinality(config, {"G_ema": nets["G_ema"].state_dict()})[0]["g_ema"]
    shared = torch.zeros(width, width)
    flat = torch.zeros(width * width + depth, dtype=torch.float16)
    for i in range(depth):
        sd[f"style.{i + 1}.weight"] = shared if how == "same" else flat[i:i + width * width].view(width, width)
        sd[f"style.{i + 1}.bias"] = torch.zeros(width)
    buf = io.BytesIO()
    torch.save({"g_ema": sd, "latent_avg": torch.zeros(width)}, buf)
    return buf.getvalue()


def _nvlabs_shared_mapping(depth: int, width: int, how: str) -> bytes:
    """An authors' pickle whose ``depth`` mapping layers are one fp16 tensor ("same"), or fresh tensors each
    read from the same serialized storage bytes ("blob")."""
    config, nets = _wide_nets(width)
    flat = _nvlabs_names(nets["G_ema"].state_dict(), "G")
    shared = torch.zeros(width, width, dtype=torch.float16)
    blob = _storage_blob(shared)
    for i in range(depth):
        if how == "same":
            flat[f"mapping.fc{i}.weight"] = shared
        else:
            storage = Call(Global("torch.storage", "_load_from_bytes"), blob)
            flat[f"mapping.fc{i}.weight"] = _tensor(storage, 0, (width, width), (width, 1))
        flat[f"mapping.fc{i}.bias"] = torch.zeros(width)
    return nvlabs_pickle(config, nets, g_flat=flat, g_kwargs={"mapping_kwargs": {"num_layers": depth}})


def _tf_shared_mapping(depth: int, width: int, how: str) -> bytes:
    """A TensorFlow pickle whose ``depth`` mapping layers are one fp16 array ("same"), or arrays each decoded
    from the same raw bytes ("raw")."""
    config, nets = _wide_nets(width)
    g = _tf_generator_vars(nets["G_ema"].state_dict(), config)
    d = _tf_discriminator_vars(nets["D"].state_dict(), config)
    shared = np.zeros((width, width), np.float16)
    raw = shared.tobytes()
    for i in range(depth):
        g[f"mapping/Dense{i}/weight"] = shared if how == "same" else _np_array("f2", (width, width), raw)
        g[f"mapping/Dense{i}/bias"] = np.zeros(width, np.float32)
    return tf_pickle(g, d)


def _ros_wide_z() -> bytes:
    """A rosinality generator with z_dim 8192 and w_dim 1 and no ``latent_avg``: a small file whose truncation
    average is estimated from 4096 samples of z."""
    from stylegan.interop.rosinality import to_rosinality
    from stylegan.networks import build_networks

    config = tiny_config(z_dim=1, w_dim=1)
    nets = build_networks(config, seed=0)
    sd = to_rosinality(config, {"G_ema": nets["G_ema"].state_dict()})[0]["g_ema"]
    sd["style.1.weight"] = torch.ones(1, 8192)  # their export needs z_dim == w_dim; their import does not
    buf = io.BytesIO()
    torch.save({"g_ema": sd}, buf)
    return buf.getvalue()


def _repeated_calls(kind: str, n: int = 1000, size: int = MB) -> bytes:
    """A plain pickle applying one allowed stand-in ``n`` times to the same (memoized) input of ``size`` bytes."""
    if kind == "latin1":
        text = "\x00" * size
        items = [Call(Global("_codecs", "encode"), text, "latin1") for _ in range(n)]
    elif kind == "numpy":
        raw = bytes(size)
        items = [_np_array("u1", (size,), raw) for _ in range(n)]
    else:  # nested torch.save blobs, each read into a fresh storage and viewed as a tensor
        blob = _storage_blob(torch.zeros(size // 4))
        items = [_tensor(Call(Global("torch.storage", "_load_from_bytes"), blob), 0, (size // 4,), (1,))
                 for _ in range(n)]
    return dumps({"G": items}, protocol=4)


def amplification_cases() -> list[Case]:
    """Small files that would make a careless loader allocate many times their size."""
    return [
        Case("amplify", "views-1000x-1MB.pt", _shared_storage_views, "refused"),
        Case("amplify", "ros-mapping-same-tensor.pt", lambda: _ros_shared_mapping(64, 1024, "same"), "refused"),
        Case("amplify", "ros-mapping-fp16-views.pt", lambda: _ros_shared_mapping(64, 1024, "views"), "refused"),
        Case("amplify", "nvlabs-mapping-same-fp16.pkl", lambda: _nvlabs_shared_mapping(64, 1024, "same"), "refused"),
        Case("amplify", "nvlabs-mapping-same-blob.pkl", lambda: _nvlabs_shared_mapping(64, 1024, "blob"), "refused"),
        Case("amplify", "tf-mapping-same-fp16.pkl", lambda: _tf_shared_mapping(64, 1024, "same"), "refused"),
        Case("amplify", "tf-mapping-same-raw.pkl", lambda: _tf_shared_mapping(64, 1024, "raw"), "refused"),
        Case("amplify", "ros-wide-z.pt", _ros_wide_z, "any"),
        Case("amplify", "pickle-latin1-1000x-1MB.pkl", lambda: _repeated_calls("latin1"), "refused"),
        Case("amplify", "pickle-numpy-1000x-1MB.pkl", lambda: _repeated_calls("numpy"), "refused"),
        Case("amplify", "pickle-blob-1000x-1MB.pkl", lambda: _repeated_calls("blob"), "refused"),
    ]


# --- code execution ----------------------------------------------------------------------------------------

def _g(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def _s(text: str) -> bytes:
    b = text.encode()
    return b"X" + struct.pack("<I", len(b)) + b


def _call(fn: bytes, *args: bytes) -> bytes:
    return fn + b"(" + b"".join(args) + b"tR"


def attack_bodies(marker: Path) -> dict[str, bytes]:
    """Pickle bodies (no PROTO, no STOP) that would create ``marker`` if an unpickler ran what they name."""
    m = str(marker)
    cmd = f"touch {m}"
    write = f"open({m!r}, 'w').close()"
    argv = b"](" + _s("touch") + _s(m) + b"e"
    system = _call(_g("os", "system"), _s(cmd))
    inner = b"\x80\x02" + system + b"."
    legacy_inner = legacy_torch(inner)
    return {
        "os.system": system,
        "posix.system": _call(_g("posix", "system"), _s(cmd)),
        "builtins.eval": _call(_g("builtins", "eval"), _s(write)),
        "builtins.exec": _call(_g("builtins", "exec"), _s(write)),
        "__builtin__.eval": _call(_g("__builtin__", "eval"), _s(write)),
        "subprocess.Popen": _call(_g("subprocess", "Popen"), argv),
        "subprocess.call": _call(_g("subprocess", "call"), argv),
        "subprocess.check_output": _call(_g("subprocess", "check_output"), argv),
        "getattr-import": _call(_call(_g("builtins", "getattr"), _call(_g("builtins", "__import__"), _s("os")),
                                      _s("system")), _s(cmd)),
        "importlib-getattr": _call(_call(_g("builtins", "getattr"), _call(_g("importlib", "import_module"),
                                                                          _s("os")), _s("system")), _s(cmd)),
        "stack-global": _s("os") + _s("system") + b"\x93(" + _s(cmd) + b"tR",
        "inst-opcode": b"(" + _s(cmd) + b"ios\nsystem\n",
        "obj-opcode": b"(" + _g("os", "system") + _s(cmd) + b"o",
        "newobj-popen": _g("subprocess", "Popen") + b"(" + argv + b"t\x81",
        "functools.partial": _call(_call(_g("functools", "partial"), _g("os", "system"), _s(cmd))),
        "copyreg-reconstructor": _call(_g("copyreg", "_reconstructor"), _g("subprocess", "Popen"),
                                       _g("builtins", "object"), b"(" + argv + b"t"),
        "pickle.loads": _call(_g("pickle", "loads"), b"B" + struct.pack("<I", len(inner)) + inner),
        "operator.methodcaller": _call(_call(_g("operator", "methodcaller"), _s("system"), _s(cmd)),
                                       _call(_g("builtins", "__import__"), _s("os"))),
        "in-OrderedDict": _call(_g("collections", "OrderedDict"), b"](" + _s("k") + system + b"\x86e"),
        "in-rebuild-tensor": _call(_g("torch._utils", "_rebuild_tensor_v2"), system, b"K\x00", b"K\x01\x85",
                                   b"K\x01\x85", b"\x89", b"N"),
        "in-nested-storage": _call(_g("torch.storage", "_load_from_bytes"),
                                   b"B" + struct.pack("<I", len(legacy_inner)) + legacy_inner),
        "in-numpy-reconstruct": _call(_g("numpy.core.multiarray", "_reconstruct"), _g("os", "system"), _s(cmd),
                                      b"C\x01b"),
        "in-persistent-obj": _call(_g("torch_utils.persistence", "_reconstruct_persistent_obj"),
                                   b"}(" + _s("state") + system + b"u"),
        "in-EasyDict-build": _g("dnnlib.util", "EasyDict") + b")\x81" + system + b"b",
        "as-persistent-id": system + b"Q",
    }


def code_cases(markers: Path) -> list[Case]:
    """Every attack in a plain pickle, a torch zip archive and a legacy torch stream, and an authors' pickle
    whose module source (kept as text) would run a command."""
    cases = []
    for name in attack_bodies(markers):
        for container in ("pkl", "zip.pt", "legacy.pt"):
            file = f"{name}.{container}"

            def make(name=name, container=container, file=file):
                payload = b"\x80\x02" + attack_bodies(markers / file)[name] + b"."
                if container == "pkl":
                    return payload
                return torch_zip(payload) if container == "zip.pt" else legacy_torch(payload)
            cases.append(Case("code", file, make, "refused"))
    file = "module-src-os.system.pkl"

    def module_src():
        from stylegan.networks import build_networks

        config = tiny_config()
        src = f"import os\nos.system('touch {markers / file}')\nopen({str(markers / file)!r}, 'w').close()\n"
        return nvlabs_pickle(config, build_networks(config, seed=0), module_src=src)
    cases.append(Case("code", file, module_src, "loaded"))
    return cases


def all_cases(valid: dict[str, bytes], markers: Path, per_format: int, seed: int) -> list[Case]:
    cases = [Case("valid", name, lambda d=data: d, "loaded") for name, data in valid.items()]
    for fmt, data in valid.items():
        stem, suffix = fmt.split(".")
        for i in range(per_format):
            rng = random.Random(f"{seed}:{fmt}:{i}")
            cases.append(Case(f"mutated {fmt}", f"{stem}-{i:04d}.{suffix}", lambda d=data, r=rng: mutate(d, r)))
    for fmt, data in valid.items():
        stem, suffix = fmt.split(".")
        for cut in truncation_offsets(len(data)):
            cases.append(Case("truncated", f"{stem}-cut{cut}.{suffix}", lambda d=data, c=cut: d[:c], "refused"))
    cases += safetensors_cases(valid) + torch_huge_cases() + amplification_cases() + code_cases(markers)
    return cases


# ---------------------------------------------------------------------------------------------------------
# Loading each file in a forked child.

def _statm(field_index: int) -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[field_index]) * os.sysconf("SC_PAGE_SIZE")


def _hit_memory_cap(e: BaseException) -> bool:
    """Whether ``e`` (or an exception it replaced) is a failed allocation."""
    seen = set()
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        text = str(e)
        if isinstance(e, MemoryError) or "MemoryError" in text or "allocate memory" in text or "bad_alloc" in text:
            return True
        e = e.__cause__ or e.__context__
    return False


def _child(path: Path, foreign: bool, cap: int, w: int) -> None:
    start_rss = _statm(1)
    torch.set_num_threads(1)  # OpenMP worker threads do not survive fork
    warnings.simplefilter("ignore")
    if cap:
        limit = _statm(0) + cap
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    import stylegan
    from stylegan.checkpoint import CheckpointError
    from stylegan.interop import read_foreign

    report: dict = {"calls": {}, "error": "", "memory_cap": False, "start_rss": start_rss}
    calls = [("load", stylegan.load)] + ([("read_foreign", read_foreign)] if foreign else [])
    for call, fn in calls:
        try:
            fn(path)
            report["calls"][call] = "loaded"
        except CheckpointError as e:
            report["calls"][call] = "our_error"
            report["error"] = report["error"] or f"{type(e).__name__}: {str(e)[:300]}"
            report["memory_cap"] |= _hit_memory_cap(e)
        except BaseException as e:  # what the suite is looking for
            report["calls"][call] = "other_exception"
            report["error"] = f"{type(e).__name__}: {str(e)[:300]}"
            report["traceback"] = traceback.format_exc()[-3000:]
            report["memory_cap"] |= _hit_memory_cap(e)
    report["maxrss"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    data = json.dumps(report).encode()
    while data:
        data = data[os.write(w, data):]


@dataclass
class Result:
    category: str
    name: str
    size: int
    expect: str
    outcome: str
    peak_increase: int  # bytes: the child's peak RSS minus the parent's RSS at fork
    peak_over_start: int  # bytes: the child's peak RSS minus its own RSS just after fork
    code_executed: bool = False
    memory_cap: bool = False
    error: str = ""
    calls: dict = field(default_factory=dict)
    traceback: str = ""

    @property
    def unexpected(self) -> bool:
        return ((self.expect == "refused" and self.outcome != "our_error")
                or (self.expect == "loaded" and self.outcome != "loaded"))


def load_in_child(path: Path, cap: int, timeout: float) -> dict:
    """Loads ``path`` in a forked child: outcome, peak RSS increase, error."""
    foreign = path.suffix != ".safetensors"
    parent_rss = _statm(1)
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.close(r)
            _child(path, foreign, cap, w)
            code = 0
        finally:
            os._exit(code)
    os.close(w)
    chunks, deadline, reason = [], time.monotonic() + timeout, ""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            os.kill(pid, signal.SIGKILL)
            reason = f"no answer within {timeout:g} s"
            break
        if select.select([r], [], [], left)[0]:
            chunk = os.read(r, 1 << 16)
            if not chunk:
                break
            chunks.append(chunk)
    os.close(r)
    _, status, usage = os.wait4(pid, 0)
    try:
        report = json.loads(b"".join(chunks))
    except ValueError:
        sig = os.WTERMSIG(status) if os.WIFSIGNALED(status) else None
        reason = reason or (f"killed by {signal.Signals(sig).name}" if sig else f"exit status {os.WEXITSTATUS(status)}")
        peak = usage.ru_maxrss * 1024
        return {"outcome": "killed", "error": reason, "peak_increase": peak - parent_rss,
                "peak_over_start": peak - parent_rss, "memory_cap": False, "calls": {}}
    calls = report["calls"]
    if "other_exception" in calls.values():
        outcome = "other_exception"
    elif calls.get("load") == "loaded":
        outcome = "loaded"
    else:
        outcome = "our_error"
    return {"outcome": outcome, "error": report["error"], "peak_increase": report["maxrss"] - parent_rss,
            "peak_over_start": report["maxrss"] - report["start_rss"], "memory_cap": report["memory_cap"],
            "calls": calls, "traceback": report.get("traceback", "")}


# ---------------------------------------------------------------------------------------------------------
# Reporting.

COLUMNS = ("files", "loaded", "clear errors", "tracebacks", "killed", "code run", "mem cap", "unexpected",
           "peak MB", "over start", "worst file (size)")


def summarize(results: list[Result]) -> dict[str, dict]:
    """Per category (and "all"): counts and the file with the largest peak memory increase."""
    groups: dict[str, list[Result]] = collections.defaultdict(list)
    for r in results:
        groups[r.category].append(r)
    groups["all"] = list(results)
    out = {}
    for cat, rs in groups.items():
        worst = max(rs, key=lambda r: r.peak_increase)
        worst_start = max(rs, key=lambda r: r.peak_over_start)
        out[cat] = {"files": len(rs), "loaded": sum(r.outcome == "loaded" for r in rs),
                    "our_error": sum(r.outcome == "our_error" for r in rs),
                    "other_exception": sum(r.outcome == "other_exception" for r in rs),
                    "killed": sum(r.outcome == "killed" for r in rs),
                    "code_executed": sum(r.code_executed for r in rs), "memory_cap": sum(r.memory_cap for r in rs),
                    "unexpected": sum(r.unexpected for r in rs), "worst_peak_increase": worst.peak_increase,
                    "worst_file": worst.name, "worst_file_size": worst.size,
                    "worst_peak_over_start": worst_start.peak_over_start, "worst_over_start_file": worst_start.name}
    return out


def _size(n: int) -> str:
    return f"{n / MB:.1f} MB" if n >= MB else f"{n / 1024:.1f} KB" if n >= 1024 else f"{n} B"


def format_table(summary: dict[str, dict]) -> str:
    rows = [("category",) + COLUMNS]
    for cat, s in summary.items():
        rows.append((cat, s["files"], s["loaded"], s["our_error"], s["other_exception"], s["killed"],
                     s["code_executed"], s["memory_cap"], s["unexpected"], f"{s['worst_peak_increase'] / MB:.1f}",
                     f"{s['worst_peak_over_start'] / MB:.1f}", f"{s['worst_file']} ({_size(s['worst_file_size'])})"))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(v).ljust(w) if i in (0, len(row) - 1) else str(v).rjust(w)
                       for i, (v, w) in enumerate(zip(row, widths))).rstrip() for row in rows]
    lines.insert(1, "-" * len(lines[0]))
    lines.insert(len(lines) - 1, "-" * len(lines[0]))
    return "\n".join(lines)


def failures(results: list[Result], max_peak: int | None = None) -> list[str]:
    """One line per result that makes the run fail."""
    out = []
    for r in results:
        problems = []
        if r.outcome in ("other_exception", "killed"):
            problems.append(f"{r.outcome}: {r.error}")
        if r.code_executed:
            problems.append("CODE WAS EXECUTED (marker file created)")
        if r.memory_cap:
            problems.append(f"hit the memory cap: {r.error}")
        if r.unexpected:
            problems.append(f"expected {r.expect}, got {r.outcome}")
        if max_peak is not None and max(r.peak_increase, r.peak_over_start) > max_peak:
            problems.append(f"peak memory increase {max(r.peak_increase, r.peak_over_start) / MB:.0f} MB > "
                            f"{max_peak / MB:.0f} MB")
        if problems:
            out.append(f"{r.category} / {r.name} ({_size(r.size)}): {'; '.join(problems)}")
    return out


# ---------------------------------------------------------------------------------------------------------

def run(per_format: int = 300, seed: int = 0, cap_mb: int = 4096, timeout: float = 120.0, progress: bool = True,
        only: str | None = None) -> list[Result]:
    """Generates every file, loads each in a child, and returns the results."""
    from tqdm import tqdm

    import stylegan
    from stylegan.interop import read_foreign

    threads = torch.get_num_threads()
    try:
        with tempfile.TemporaryDirectory(prefix="stylegan-robustness-") as tmp:
            tmp = Path(tmp)
            (tmp / "files").mkdir()
            markers = tmp / "markers"
            markers.mkdir()
            valid = valid_files(tmp)
            for name, data in valid.items():  # imports and lazy initialization happen here, not in the children
                path = tmp / "files" / name
                path.write_bytes(data)
                stylegan.load(path)
                if not name.endswith(".safetensors"):
                    read_foreign(path)
                path.unlink()
            cases = all_cases(valid, markers, per_format, seed)
            if only:
                cases = [c for c in cases if re.search(only, f"{c.category}/{c.name}")]
            results = []
            for case in tqdm(cases, desc="loading", unit="file", disable=not progress, file=sys.stderr):
                path = tmp / "files" / case.name
                data = case.make()
                path.write_bytes(data)
                del data
                r = load_in_child(path, cap_mb * MB, timeout)
                marker = markers / case.name
                results.append(Result(case.category, case.name, path.stat().st_size, case.expect,
                                      code_executed=marker.exists(), **r))
                path.unlink()
            stray = sorted(p.name for p in markers.iterdir())
            for r in results:
                r.code_executed |= r.name in stray
            return results
    finally:
        torch.set_num_threads(threads)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-format", type=int, default=300, help="random mutations of each valid file (default 300)")
    p.add_argument("--seed", type=int, default=0, help="seed of the mutations (default 0)")
    p.add_argument("--json", type=Path, help="write every file's result and the summary here")
    p.add_argument("--max-peak-mb", type=float, help="fail if any load's peak memory increase exceeds this")
    p.add_argument("--child-memory-mb", type=int, default=4096,
                   help="cap of each child's address space above its size at fork (default 4096; 0: none)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds a child may take (default 120)")
    p.add_argument("--only", help="only the files whose category/name matches this regular expression")
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    results = run(args.per_format, args.seed, args.child_memory_mb, args.timeout, not args.no_progress, args.only)
    summary = summarize(results)
    print(format_table(summary))
    max_peak = None if args.max_peak_mb is None else int(args.max_peak_mb * MB)
    bad = failures(results, max_peak)
    for line in bad:
        print("FAIL", line)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"per_format": args.per_format, "seed": args.seed, "summary": summary,
                                         "failures": bad, "results": [asdict(r) for r in results]}, indent=1))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
