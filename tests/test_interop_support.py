"""Builders for the foreign files the interop tests read, and tests of the safe pickle interpreter itself.

The authors' pickles are written here the way their code writes them (``pickle.dump`` of a dict of
``torch_utils.persistence`` objects, tensors pickled by torch; TensorFlow ``dnnlib.tflib.network.Network``
objects with numpy variables), using stand-in modules that exist in ``sys.modules`` only while writing.
"""
from __future__ import annotations

import collections
import contextlib
import io
import pickle
import re
import sys
import types

import numpy as np
import pytest
import torch

from stylegan.interop import InteropError
from stylegan.interop.torch_files import (NpArray, PersistentObject, TFNetwork, allowed_globals, load_pickle_bytes,
                                          load_torch_bytes)

# ---------------------------------------------------------------------------------------------------------
# Stand-in modules for writing.


@contextlib.contextmanager
def authors_modules():
    """``torch_utils.persistence``, ``dnnlib.util.EasyDict`` and ``dnnlib.tflib.network.Network`` stand-ins,
    registered only inside the ``with`` block. Yields a namespace with ``Persistent``, ``EasyDict``,
    ``Network``."""
    persistence = types.ModuleType("torch_utils.persistence")

    def _reconstruct_persistent_obj(meta):  # pragma: no cover - reading never calls it
        raise AssertionError("the real unpickler was used")

    _reconstruct_persistent_obj.__module__ = "torch_utils.persistence"
    _reconstruct_persistent_obj.__qualname__ = "_reconstruct_persistent_obj"
    persistence._reconstruct_persistent_obj = _reconstruct_persistent_obj
    torch_utils = types.ModuleType("torch_utils")
    torch_utils.persistence = persistence

    class EasyDict(dict):
        pass

    EasyDict.__module__, EasyDict.__qualname__ = "dnnlib.util", "EasyDict"

    class Network:
        def __init__(self, state):
            self._state = state

        def __getstate__(self):
            return self._state

        def __setstate__(self, state):  # pragma: no cover
            self._state = state

    Network.__module__, Network.__qualname__ = "dnnlib.tflib.network", "Network"
    dnnlib = types.ModuleType("dnnlib")
    util = types.ModuleType("dnnlib.util")
    tflib = types.ModuleType("dnnlib.tflib")
    network = types.ModuleType("dnnlib.tflib.network")
    util.EasyDict = EasyDict
    network.Network = Network
    dnnlib.util, dnnlib.tflib, dnnlib.EasyDict, tflib.network = util, tflib, EasyDict, network

    class Persistent:
        def __init__(self, meta):
            self.meta = meta

        def __reduce__(self):
            return (_reconstruct_persistent_obj, (self.meta,))

    mods = {"torch_utils": torch_utils, "torch_utils.persistence": persistence, "dnnlib": dnnlib,
            "dnnlib.util": util, "dnnlib.tflib": tflib, "dnnlib.tflib.network": network}
    saved = {k: sys.modules.get(k) for k in mods}
    sys.modules.update(mods)
    try:
        yield types.SimpleNamespace(Persistent=Persistent, EasyDict=EasyDict, Network=Network)
    finally:
        for k, v in saved.items():
            if v is None:
                sys.modules.pop(k, None)
            else:
                sys.modules[k] = v


def easy(ns, d):
    """Nested dicts as EasyDicts, as in the authors' constructor arguments."""
    if isinstance(d, dict):
        return ns.EasyDict({k: easy(ns, v) for k, v in d.items()})
    return d


# ---------------------------------------------------------------------------------------------------------
# The authors' PyTorch networks.

_G_CLASSES = [
    (r"mapping", "MappingNetwork"), (r"mapping\.(fc\d+|embed)", "FullyConnectedLayer"),
    (r"synthesis", "SynthesisNetwork"), (r"synthesis\.b\d+", "SynthesisBlock"),
    (r"synthesis\.b\d+\.conv[01]", "SynthesisLayer"), (r"synthesis\.b\d+\.torgb", "ToRGBLayer"),
    (r"synthesis\.b\d+\.skip", "Conv2dLayer"), (r".*\.affine", "FullyConnectedLayer"),
]
_D_CLASSES = [
    (r"b4", "DiscriminatorEpilogue"), (r"b\d+", "DiscriminatorBlock"), (r"b4\.(fc|out)", "FullyConnectedLayer"),
    (r"b4\.mbstd", "MinibatchStdLayer"), (r"b\d+\.\w+", "Conv2dLayer"), (r"mapping", "MappingNetwork"),
    (r"mapping\.\w+", "FullyConnectedLayer"),
]
_BUFFERS = ("w_avg", "resample_filter", "noise_const")
MODULE_SRC = "# the authors' module source would be here; it is kept as text and never executed\n"


def persistent_tree(ns, flat: dict, root_class: str, init_kwargs: dict, module_src: str = MODULE_SRC,
                    extra_children=(), extra_state=None):
    """Nested persistent objects holding ``flat`` (the authors' state dict names)."""
    rules = _G_CLASSES if root_class == "Generator" else _D_CLASSES
    root = {"class": root_class, "params": {}, "buffers": {}, "children": {}}
    paths = {"": root}

    def node_at(path):
        if path not in paths:
            parent, _, leaf = path.rpartition(".")
            cls = next((c for pat, c in rules if re.fullmatch(pat, path)), "Module")
            paths[path] = {"class": cls, "params": {}, "buffers": {}, "children": {}}
            node_at(parent)["children"][leaf] = paths[path]
        return paths[path]

    for path in extra_children:
        node_at(path)
    for name, t in flat.items():
        path, _, leaf = name.rpartition(".")
        node = node_at(path)
        (node["buffers"] if leaf in _BUFFERS else node["params"])[leaf] = t

    def build(node, kwargs):
        state = {
            "training": False,
            "_parameters": collections.OrderedDict(
                (k, torch.nn.Parameter(v.clone(), requires_grad=False)) for k, v in node["params"].items()),
            "_buffers": collections.OrderedDict((k, v.clone()) for k, v in node["buffers"].items()),
            "_non_persistent_buffers_set": set(),
            "_backward_hooks": collections.OrderedDict(),
            "_forward_hooks": collections.OrderedDict(),
            "_forward_pre_hooks": collections.OrderedDict(),
            "_state_dict_hooks": collections.OrderedDict(),
            "_load_state_dict_pre_hooks": collections.OrderedDict(),
            "_modules": collections.OrderedDict((k, build(c, {})) for k, c in node["children"].items()),
            "_init_args": (),
            "_init_kwargs": easy(ns, kwargs),
            "weight_gain": np.float64(0.125),  # numpy scalars are common attributes of the authors' layers
            "activation": "lrelu",
        }
        if node is root and extra_state:
            state.update(extra_state)
        return ns.Persistent(dict(type="class", version=6, module_src=module_src, class_name=node["class"],
                                  state=state))

    return build(root, init_kwargs)


def nvlabs_pickle_bytes(G_flat, D_flat, G_kwargs, D_kwargs, G_ema_flat=None, protocol=4, module_src=MODULE_SRC,
                        mbstd=True, g_extra_children=()):
    """The bytes of an authors' network pickle holding these state dicts (their names)."""
    with authors_modules() as ns:
        G = persistent_tree(ns, G_flat, "Generator", G_kwargs, module_src, extra_children=g_extra_children)
        data = {"G": G, "G_ema": persistent_tree(ns, G_ema_flat if G_ema_flat is not None else G_flat,
                                                  "Generator", G_kwargs, module_src)}
        if D_flat is not None:
            data["D"] = persistent_tree(ns, D_flat, "Discriminator", D_kwargs, module_src,
                                        extra_children=("b4.mbstd",) if mbstd else ())
        data["augment_pipe"] = persistent_tree(ns, {"p": torch.zeros([])}, "AugmentPipe", {"xflip": 1})
        data["training_set_kwargs"] = {"class_name": "training.dataset.ImageFolderDataset", "path": "x.zip",
                                       "use_labels": False, "resolution": 32, "max_size": None}
        return pickle.dumps(data, protocol=protocol)


def ours_to_nvlabs(state: dict, what: str) -> dict:
    """Our state dict in the authors' names (the inverse of stylegan.interop.nvlabs' renaming), with their
    resampling-filter buffers added."""
    out = {}
    rules = ([(r"^mapping\.layers\.(\d+)\.", r"mapping.fc\1."),
              (r"^synthesis\.blocks\.(\d+)\.(conv[01])\.noise\.const$", r"synthesis.b\1.\2.noise_const"),
              (r"^synthesis\.blocks\.(\d+)\.(conv[01])\.noise\.strength$", r"synthesis.b\1.\2.noise_strength"),
              (r"^synthesis\.blocks\.(\d+)\.", r"synthesis.b\1.")] if what == "G" else
             [(r"^epilogue\.", "b4."), (r"^blocks\.(\d+)\.", r"b\1."), (r"^mapping\.layers\.(\d+)\.", r"mapping.fc\1.")])
    filt = torch.tensor([1.0, 3.0, 3.0, 1.0])
    filt = (filt[:, None] * filt[None, :]) / 64
    for k, v in state.items():
        for pat, repl in rules:
            if re.match(pat, k):
                k = re.sub(pat, repl, k)
                break
        out[k] = v.clone()
        m = re.match(r"^(synthesis\.b\d+\.conv[01]|b\d+\.conv[01]|synthesis\.b\d+)\.", k)
        if m:
            out[m.group(1) + ".resample_filter"] = filt
    return out


def nvlabs_kwargs(config, layout="ada"):
    """The authors' constructor arguments for our config (stylegan2-ada-pytorch or stylegan3 layout)."""
    g, d = config.G, config.D
    syn = dict(channel_base=g.cbase, channel_max=g.cmax, num_fp16_res=g.num_fp16_res, conv_clamp=g.conv_clamp,
               architecture=g.arch)
    G_kwargs = dict(z_dim=g.z_dim, c_dim=g.c_dim, w_dim=g.w_dim, img_resolution=g.resolution,
                    img_channels=g.img_channels, mapping_kwargs=dict(num_layers=g.map_depth))
    if layout == "ada":
        G_kwargs["synthesis_kwargs"] = syn
    else:
        G_kwargs.update(syn, fused_modconv_default="inference_only")
    D_kwargs = dict(c_dim=d.c_dim, img_resolution=d.resolution, img_channels=d.img_channels, architecture=d.arch,
                    channel_base=d.cbase, channel_max=d.cmax, num_fp16_res=d.num_fp16_res, conv_clamp=d.conv_clamp,
                    block_kwargs={"freeze_layers": 0}, mapping_kwargs={},
                    epilogue_kwargs={"mbstd_group_size": d.mbstd_group})
    return G_kwargs, D_kwargs


# ---------------------------------------------------------------------------------------------------------
# The authors' TensorFlow networks.

def tf_network(ns, name, func, variables, static_kwargs=None, components=None):
    state = {"version": 4, "name": name, "static_kwargs": dict(static_kwargs or {}),
             "components": dict(components or {}), "build_module_src": MODULE_SRC,
             "build_func_name": f"training.networks_stylegan2.{func}",
             "variables": [(k, np.asarray(v)) for k, v in variables.items()]}
    return ns.Network(state)


def tf_pickle_bytes(G_vars: dict, D_vars: dict | None, static=None, Gs_vars=None, protocol=4,
                    g_func="G_main", syn_func="G_synthesis_stylegan2", d_func="D_stylegan2", d_static=None):
    """(G, D, Gs) as the authors' TF training pickled them; ``G_vars`` named ``mapping/...``,
    ``synthesis/...`` and ``dlatent_avg``."""
    static = dict(static or {})

    def gen(ns, name, v):
        comp = {}
        for key, func in (("mapping", "G_mapping"), ("synthesis", syn_func)):
            own = {k[len(key) + 1:]: a for k, a in v.items() if k.startswith(key + "/")}
            comp[key] = tf_network(ns, f"G_{key}", func, own, static)
        own = {k: a for k, a in v.items() if "/" not in k}
        return tf_network(ns, name, g_func, own, static, comp)

    with authors_modules() as ns:
        nets = [gen(ns, "G", G_vars)]
        nets.append(tf_network(ns, "D", d_func, D_vars or {}, static if d_static is None else d_static))
        nets.append(gen(ns, "Gs", Gs_vars if Gs_vars is not None else G_vars))
        return pickle.dumps(tuple(nets), protocol=protocol)  # as their training loop: (G, D, Gs)


# ---------------------------------------------------------------------------------------------------------
# Tests of the interpreter itself.

@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_plain_pickles_of_tensors_arrays_and_containers(protocol):
    t = torch.randn(3, 5)
    obj = {"t": t, "view": t[:, 1:4], "half": t.half(), "p": torch.nn.Parameter(torch.randn(4)),
           "od": collections.OrderedDict(a=1, b=[1, 2]), "set": {1, 2}, "np": np.arange(6, dtype=np.float32).reshape(2, 3),
           "npf": np.asfortranarray(np.ones((2, 3), dtype=">f8")), "scalar": np.float64(2.5), "b": b"xy",
           "shared": [t, t], "ints": torch.arange(5)}
    r = load_pickle_bytes(pickle.dumps(obj, protocol=protocol), "x")
    assert torch.equal(r["t"], t) and torch.equal(r["view"], t[:, 1:4]) and torch.equal(r["half"], t.half())
    assert torch.equal(r["ints"], torch.arange(5)) and r["od"] == {"a": 1, "b": [1, 2]} and r["set"] == {1, 2}
    assert isinstance(r["np"], NpArray) and np.array_equal(r["np"].array, obj["np"])
    assert np.array_equal(r["npf"].array, obj["npf"]) and r["scalar"] == 2.5 and r["b"] == b"xy"
    assert r["shared"][0] is r["shared"][1]


@pytest.mark.parametrize("zipfile", [True, False])
def test_torch_save_files_both_formats(zipfile):
    t = torch.randn(4, 6)
    buf = io.BytesIO()
    torch.save({"a": t, "v": t[1:, ::2], "nested": {"x": [t.double()]}}, buf, _use_new_zipfile_serialization=zipfile)
    r = load_torch_bytes(buf.getvalue(), "f")
    assert torch.equal(r["a"], t) and torch.equal(r["v"], t[1:, ::2]) and torch.equal(r["nested"]["x"][0], t.double())


def test_authors_and_tf_stand_ins_are_captured_not_executed():
    with authors_modules() as ns:
        data = pickle.dumps({"G": ns.Persistent({"type": "class", "version": 6, "module_src": "raise SystemExit",
                                                 "class_name": "Generator", "state": {"a": 1}}),
                             "N": ns.Network({"name": "G", "variables": []}), "k": ns.EasyDict(x=1)})
    r = load_pickle_bytes(data, "x")
    assert isinstance(r["G"], PersistentObject) and r["G"].class_name == "Generator" and r["G"].state == {"a": 1}
    assert isinstance(r["N"], TFNetwork) and r["N"].state["name"] == "G" and r["k"] == {"x": 1}


def test_allow_list_is_explicit():
    names = allowed_globals()
    assert "torch_utils.persistence._reconstruct_persistent_obj" in names
    assert not any(n.startswith(("builtins.eval", "os.", "posix.", "subprocess")) for n in names)


def test_views_beyond_their_storage_are_refused():
    buf = io.BytesIO()
    torch.save(torch.arange(4.0), buf)
    data = buf.getvalue()
    # Patch the declared size in data.pkl: the view now claims 1000 elements of a 4-element storage.
    import zipfile as zf

    z = zf.ZipFile(io.BytesIO(data))
    pkl = z.read("archive/data.pkl")
    assert b"K\x04\x85" in pkl
    out = io.BytesIO()
    with zf.ZipFile(out, "w", compression=zf.ZIP_STORED) as w:
        for info in z.infolist():
            body = z.read(info.filename)
            if info.filename.endswith("data.pkl"):
                body = body.replace(b"K\x04\x85", b"M\xe8\x03\x85", 1)
            w.writestr(info, body)
    with pytest.raises(InteropError, match="exceeds its storage"):
        load_torch_bytes(out.getvalue(), "f")


def test_huge_memo_index_and_deep_nesting_are_harmless():
    # LONG_BINPUT with index 2**32 - 1: a dict entry here, not a 32 GB table.
    data = b"\x80\x02]r\xff\xff\xff\xff."
    assert load_pickle_bytes(data, "x") == []
    deep = b"\x80\x02" + b"]" * 200_000 + b"a" * 199_999 + b"."
    r = load_pickle_bytes(deep, "x")
    assert isinstance(r, list)
    nested_keys = b"\x80\x02}" + b")" + b"\x85" * 50 + b"K\x01s."  # key nested 50 tuples deep
    with pytest.raises(InteropError, match="key"):
        load_pickle_bytes(nested_keys, "x")
