"""Reading any network file: the one reader above this package's checkpoints and the importers.

    any file, or a pretrained name  →  a Checkpoint (configuration + tensors)  →  built networks

``.safetensors`` files are this package's checkpoints (:mod:`stylegan.checkpoint`); the authors' pickles
(stylegan2-ada-pytorch, stylegan3, TensorFlow StyleGAN2) and rosinality's ``.pt`` files are imported without
executing anything from them (:mod:`stylegan.interop`). Errors are :class:`stylegan.checkpoint.CheckpointError`
(the importers' :class:`stylegan.interop.InteropError` is one).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch
from torch import nn

from stylegan.checkpoint import Checkpoint, CheckpointError, build_from_states, read_checkpoint
from stylegan.interop.errors import InteropError

#: The suffixes this reader knows, and what they hold.
SUFFIXES = {".safetensors": "this package's checkpoint", ".pkl": "the authors' network pickle",
            ".pt": "a rosinality checkpoint", ".pth": "a rosinality checkpoint"}


def read_network_file(path: str | os.PathLike) -> Checkpoint:
    """Any network file as a :class:`~stylegan.checkpoint.Checkpoint`: this package's checkpoints as they
    are (with their training state); foreign files imported (networks only, ``extra["imported_from"]``), e.g.
    to resume or fine-tune from them with ``stylegan train --resume``."""
    from stylegan.interop.formats import read_foreign

    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in SUFFIXES:
        raise CheckpointError(f"{path}: unknown network file type {path.suffix or '(no suffix)'!r}; expected "
                              ".safetensors (this package), .pkl (the authors' pickles) or .pt/.pth (rosinality "
                              "checkpoints)")
    if suffix == ".safetensors":
        return read_checkpoint(path)
    imported = read_foreign(path)
    tensors = {f"{n}.{k}": v for n in imported.networks for k, v in imported.states[n].items()}
    return Checkpoint(path=path, config=imported.config, tensors=tensors, networks=imported.networks,
                      extra={"imported_from": imported.source_format, "import_notes": imported.notes})


def resolve(network: str | os.PathLike) -> Path:
    """The file a ``--network`` value names: an existing file, or a pretrained name's packaged file
    (:func:`stylegan.pretrained.resolve_network`). The one resolver of every command and of :func:`load`; a
    value of an unknown type is returned as it is, for :func:`read_network_file` to say so."""
    from stylegan.pretrained import resolve_network

    value = os.fspath(network)
    known_type = Path(value).suffix.lower() in SUFFIXES or not Path(value).suffix or "://" in value  # URL
    return resolve_network(value) if known_type else Path(network)


def read_network(network: str | os.PathLike) -> Checkpoint:
    """:func:`read_network_file` of a file or a pretrained name."""
    return read_network_file(resolve(network))


def network_info(network: str | os.PathLike) -> dict[str, Any]:
    """A summary of a network file of any format or a pretrained name: configuration, parameter counts,
    resolution, and the file's metadata (training progress, or where it was imported from)."""
    from stylegan.networks import num_parameters

    ckpt = read_network(network)
    states = {n: ckpt.state_dict(n) for n in ckpt.networks}
    nets = build_from_states(ckpt.config, states, tuple(ckpt.networks), "cpu", str(ckpt.path))
    config = ckpt.config
    return {"path": str(ckpt.path), "cfg": config.cfg, "family": config.family, "resolution": config.G.resolution,
            "img_channels": config.G.img_channels, "c_dim": config.G.c_dim, "num_ws": config.G.num_ws,
            "networks": {name: num_parameters(m) for name, m in nets.items()}, "config": config.to_dict(),
            "extra": ckpt.extra}


def load(network: str | os.PathLike, device: str | torch.device = "cpu") -> nn.Module:
    """The generator to use for images: G_ema (or G if the file has no EMA copy), in eval mode, no gradients.

    ``network`` is a file of any format :func:`read_network_file` reads, or a pretrained name
    (``stylegan.load("mnist32")``, see :mod:`stylegan.pretrained`)."""
    ckpt = read_network(network)
    name = "G_ema" if "G_ema" in ckpt.networks else "G"
    if name not in ckpt.networks:
        raise CheckpointError(f"{ckpt.path}: holds no generator")
    try:
        G = build_from_states(ckpt.config, {name: ckpt.state_dict(name)}, (name,), device, str(ckpt.path))[name]
    except CheckpointError as e:
        if "imported_from" not in ckpt.extra or isinstance(e, InteropError):
            raise
        raise InteropError(f"{e}; the file's layout does not match its own constructor arguments") from None
    if ckpt.config.G.c_dim > 0:  # a snapshot taken while --cond-fade faded the class in: as it was trained
        from stylegan.training.loss import saved_condition_strength

        G.mapping.cond_strength = saved_condition_strength(ckpt.extra)
    return G.eval().requires_grad_(False)


__all__ = ["SUFFIXES", "load", "network_info", "read_network", "read_network_file", "resolve"]
