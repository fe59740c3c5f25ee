"""Which format a file is in, reading it into our networks, and ``stylegan convert``."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import nn

from stylegan.checkpoint import CheckpointError, build_from_states, read_checkpoint
from stylegan.files import atomic_write_bytes
from stylegan.config import NetworkConfig
from stylegan.interop.errors import InteropError
from stylegan.interop.torch_files import PersistentObject, TFNetwork, is_torch_file, load_pickle_bytes, load_torch_bytes

FOREIGN_SUFFIXES = (".pkl", ".pt", ".pth")
FORMAT_NAMES = {
    "nvlabs-pytorch": "the authors' PyTorch network pickle (stylegan2-ada-pytorch / stylegan3)",
    "nvlabs-tf": "the authors' TensorFlow StyleGAN2 network pickle",
    "rosinality": "rosinality stylegan2-pytorch checkpoint",
    "stylegan": "stylegan checkpoint (this package)",
}


@dataclass
class ImportedNetworks:
    """Networks read from a file: our configuration and our state dicts by network name (G, G_ema, D)."""

    source: Path
    source_format: str
    config: NetworkConfig
    states: dict[str, dict[str, torch.Tensor]]
    notes: list[str] = field(default_factory=list)
    #: For this package's checkpoints: how the networks were trained (``trained_with``: the training options;
    #: ``kimg``), kept by :func:`convert` so that a converted base carries its recipe.
    record: dict = field(default_factory=dict)

    @property
    def networks(self) -> list[str]:
        return [n for n in ("G", "G_ema", "D") if n in self.states]

    def build(self, names: tuple[str, ...] | None = None, device: str | torch.device = "cpu") -> dict[str, nn.Module]:
        """Our modules with the imported weights (strict: every tensor must fit)."""
        try:
            return build_from_states(self.config, self.states, tuple(names or self.networks), device, str(self.source))
        except InteropError:
            raise
        except CheckpointError as e:
            raise InteropError(f"{e}; the file's layout does not match its own constructor arguments") from None


def _read_bytes(path: Path) -> bytes:
    if not path.is_file():
        raise InteropError(f"{path}: no such file")
    try:
        return path.read_bytes()
    except OSError as e:
        raise InteropError(f"{path}: cannot be read ({e})") from None


def read_foreign(path: str | os.PathLike) -> ImportedNetworks:
    """Read an authors' pickle (PyTorch or TensorFlow) or a rosinality checkpoint, whatever its suffix: the
    content decides."""
    from stylegan.interop.nvlabs import import_nvlabs_pickle
    from stylegan.interop.rosinality import import_rosinality
    from stylegan.interop.tf import import_tf_pickle

    path = Path(path)
    data = _read_bytes(path)
    what = str(path)
    try:
        if is_torch_file(data):
            top = load_torch_bytes(data, what)
            fmt = "rosinality"
        else:
            top = load_pickle_bytes(data, what)
            fmt = _kind_of_pickle(top, what)
        if fmt == "nvlabs-pytorch":
            config, states, notes = import_nvlabs_pickle(top, what)
        elif fmt == "nvlabs-tf":
            config, states, notes = import_tf_pickle(top, what)
        else:
            config, states, notes = import_rosinality(top, what)
    except InteropError:
        raise
    except CheckpointError as e:
        raise InteropError(str(e)) from None
    except (RecursionError, MemoryError) as e:
        raise InteropError(f"{what}: structure too deep or too large ({type(e).__name__})") from None
    except Exception as e:  # malformed content reaching the importers: never anything but InteropError
        raise InteropError(f"{what}: unexpected content ({type(e).__name__}: {str(e)[:200]})") from None
    return ImportedNetworks(path, fmt, config, states, notes)


def _kind_of_pickle(top: Any, what: str) -> str:
    items = list(top.values()) if isinstance(top, dict) else list(top) if isinstance(top, (tuple, list)) else [top]
    if any(isinstance(v, PersistentObject) for v in items):
        return "nvlabs-pytorch"
    if any(isinstance(v, TFNetwork) for v in items):
        return "nvlabs-tf"
    if isinstance(top, dict) and any(k in top for k in ("g_ema", "g", "style.1.weight")):
        return "rosinality"
    raise InteropError(f"{what}: a pickle, but not one of the known network formats (the authors' PyTorch or "
                       "TensorFlow pickles, rosinality checkpoints)")


def training_record(extra: dict) -> dict:
    """What a checkpoint's metadata says of how its networks were trained: the training options (a snapshot's
    ``options``, or the ``trained_with`` of a converted file) and the kimg."""
    options = extra.get("options", extra.get("trained_with"))
    record = {"trained_with": options} if isinstance(options, dict) else {}
    for key in ("kimg", "cond_strength"):  # cond_strength: λ of a conditioning faded in (or held)
        if isinstance(extra.get(key), (int, float)):
            record[key] = extra[key]
    return record


def read_any(path: str | os.PathLike) -> ImportedNetworks:
    """Our own checkpoint or any foreign format."""
    path = Path(path)
    if path.suffix.lower() == ".safetensors":
        ckpt = read_checkpoint(path)
        states = {n: ckpt.state_dict(n) for n in ckpt.networks}
        return ImportedNetworks(path, "stylegan", ckpt.config, states, [], training_record(ckpt.extra))
    return read_foreign(path)


@dataclass
class ConvertResult:
    dest: Path
    source_format: str
    dest_format: str
    networks: list[str]
    config: NetworkConfig
    notes: list[str]


def convert(source: str | os.PathLike, dest: str | os.PathLike,
            networks: Sequence[str] | None = None) -> ConvertResult:
    """Convert ``source`` (any readable format) to ``dest``: ``.safetensors`` (this package's checkpoint) or
    ``.pt``/``.pth`` (a rosinality checkpoint of plain tensors). ``networks`` keeps only those (e.g.
    ``["G_ema"]`` for a generator-only file a quarter of a training snapshot's size)."""
    from stylegan.checkpoint import save_checkpoint
    from stylegan.interop.rosinality import to_rosinality

    dest = Path(dest)
    suffix = dest.suffix.lower()
    if suffix not in (".safetensors", ".pt", ".pth"):
        raise InteropError(f"{dest}: unknown output type {dest.suffix!r}; use .safetensors (this package) or "
                           ".pt (rosinality's layout)")
    imported = read_any(source)
    nets = imported.build()  # checks every tensor against the configuration
    if networks is not None:
        missing = [n for n in networks if n not in nets]
        if missing or not networks:
            raise InteropError(f"{source}: holds {', '.join(nets)}; cannot keep {', '.join(missing) or 'nothing'}")
        nets = {n: nets[n] for n in networks}
    if suffix == ".safetensors":
        extra = {"converted_from": Path(source).name, "source_format": imported.source_format, **imported.record}
        if imported.notes:
            extra["import_notes"] = imported.notes
        save_checkpoint(dest, imported.config, nets, extra=extra)
        return ConvertResult(dest, imported.source_format, "stylegan", list(nets), imported.config,
                             imported.notes)
    states = {name: {k: v.detach().cpu() for k, v in m.state_dict().items()} for name, m in nets.items()}
    obj, warnings = to_rosinality(imported.config, states)
    atomic_write_bytes(dest, lambda tmp: torch.save(obj, tmp))
    return ConvertResult(dest, imported.source_format, "rosinality", list(nets), imported.config,
                         imported.notes + warnings)
