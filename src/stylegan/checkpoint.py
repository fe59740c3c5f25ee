"""Checkpoints: one ``.safetensors`` file holding the networks (``G.*``, ``G_ema.*``, ``D.*``, and later the
training state) with the full configuration as JSON in its metadata, so that the file alone rebuilds them.

- Loading never unpickles and never executes code: safetensors holds raw tensors and a JSON header.
- Writes are atomic: a temporary file in the same folder, flushed to disk, then renamed over the target.
- The tensor contents are covered by a SHA-256 digest in the metadata: a truncated, corrupted or edited file
  fails with a :class:`CheckpointError` that names the file and the problem.
"""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from stylegan.config import ConfigError, NetworkConfig
from stylegan.files import atomic_write_bytes  # noqa: F401  (also imported from here by older callers)

FORMAT = "stylegan-checkpoint"
FORMAT_VERSION = 1
NETWORK_NAMES = ("G", "G_ema", "D")


class CheckpointError(ValueError):
    """A checkpoint file cannot be used; the message names the file and the problem."""


@dataclass
class Checkpoint:
    """The raw content of a checkpoint file."""

    path: Path
    config: NetworkConfig
    tensors: dict[str, torch.Tensor]
    networks: list[str]
    extra: dict[str, Any] = field(default_factory=dict)

    def state_dict(self, prefix: str) -> dict[str, torch.Tensor]:
        """The tensors stored under ``prefix.`` (e.g. ``"G_ema"``), with the prefix removed."""
        p = prefix + "."
        return {k[len(p):]: v for k, v in self.tensors.items() if k.startswith(p)}


def tensors_digest(tensors: Mapping[str, torch.Tensor]) -> str:
    """SHA-256 over names, dtypes, shapes and bytes of the tensors, in name order."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().cpu().contiguous()
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def save_checkpoint(
    path: str | os.PathLike,
    config: NetworkConfig,
    networks: Mapping[str, nn.Module],
    extra_tensors: Mapping[str, torch.Tensor] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write networks (by name: ``G``, ``G_ema``, ``D``), optional extra tensors (e.g. optimizer state, under
    their own prefixes) and JSON-able ``extra`` metadata, atomically."""
    from safetensors.torch import save_file

    from stylegan.version import __version__

    tensors: dict[str, torch.Tensor] = {}
    for name, module in networks.items():
        if name not in NETWORK_NAMES:
            raise ValueError(f"unknown network name {name!r}; expected one of {NETWORK_NAMES}")
        for k, v in module.state_dict().items():
            tensors[f"{name}.{k}"] = v.detach().cpu().contiguous().clone()
    for k, v in (extra_tensors or {}).items():
        if k.split(".", 1)[0] in NETWORK_NAMES:
            raise ValueError(f"extra tensor {k!r} collides with a network prefix")
        tensors[k] = v.detach().cpu().contiguous().clone()
    metadata = {
        "format": FORMAT,
        "format_version": str(FORMAT_VERSION),
        "stylegan_version": __version__,
        "config": config.to_json(),
        "networks": json.dumps(list(networks)),
        "extra": json.dumps(dict(extra or {})),
        "sha256": tensors_digest(tensors),
    }
    return atomic_write_bytes(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def read_checkpoint(path: str | os.PathLike, verify: bool = True) -> Checkpoint:
    """Read and check a checkpoint file: format, configuration and content digest."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint file")
    tensors: dict[str, torch.Tensor] = {}
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            meta = f.metadata() or {}
            if meta.get("format") == FORMAT:  # another file's tensors are not even read
                tensors = {k: f.get_tensor(k) for k in f.keys()}
    except Exception as e:  # safetensors raises its own error types for bad headers and short files
        raise CheckpointError(f"{path}: not a readable safetensors file; it may be truncated or corrupted "
                              f"({type(e).__name__}: {e})") from None
    if meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a stylegan checkpoint (metadata 'format' is {meta.get('format')!r}); "
                              "networks from other code must be converted with `stylegan convert`")
    version = meta.get("format_version", "0")
    if not (version.isascii() and version.isdigit() and len(version) <= 9):  # int() fails on "²" and 5000 digits
        raise CheckpointError(f"{path}: invalid metadata: format_version {version[:20]!r} is not a number")
    if int(version) > FORMAT_VERSION:
        raise CheckpointError(f"{path}: written by a newer format version {meta['format_version']}; upgrade stylegan")
    try:
        config = NetworkConfig.from_json(meta.get("config", ""))
    except (ConfigError, ValueError) as e:  # ValueError: e.g. an integer too long for int() in the JSON
        raise CheckpointError(f"{path}: invalid configuration in metadata: {str(e)[:200]}") from None
    if verify:
        digest = tensors_digest(tensors)
        if digest != meta.get("sha256"):
            raise CheckpointError(f"{path}: tensor contents do not match the recorded SHA-256; the file was "
                                  "modified or corrupted after it was written")
    try:
        networks = json.loads(meta.get("networks", "[]"))
        extra = json.loads(meta.get("extra", "{}"))
    except (ValueError, RecursionError) as e:  # ValueError: also integers too long to convert
        raise CheckpointError(f"{path}: invalid metadata: {str(e)[:100]}") from None
    if not (isinstance(networks, list) and all(n in NETWORK_NAMES for n in networks)):
        raise CheckpointError(f"{path}: invalid metadata: 'networks' must be a list of "
                              f"{', '.join(NETWORK_NAMES)}, got {json.dumps(networks)[:60]}")
    if not isinstance(extra, dict):
        raise CheckpointError(f"{path}: invalid metadata: 'extra' must be a JSON object")
    _check_extra(path, extra)
    return Checkpoint(path=path, config=config, tensors=tensors, networks=list(networks), extra=extra)


#: The fields of ``extra`` this package writes and reads back, and the JSON types they must have.
EXTRA_TYPES: dict[str, tuple[type, ...]] = {"kimg": (int, float), "gamma": (int, float), "options": (dict,),
                                            "training": (dict,), "trained_with": (dict,),
                                            "growth": (dict, type(None))}


def _check_extra(path: Path, extra: Mapping[str, Any]) -> None:
    """Refuse an ``extra`` whose known fields have the wrong JSON type (a number given as text, say), so that
    every command that reads them (info, resume) answers the same clear error."""
    names = {int: "a number", float: "a number", dict: "a JSON object", type(None): "null"}
    for key, types in EXTRA_TYPES.items():
        value = extra.get(key)
        if key in extra and (not isinstance(value, types) or isinstance(value, bool)):
            want = " or ".join(dict.fromkeys(names[t] for t in types))
            raise CheckpointError(f"{path}: invalid metadata: extra {key!r} must be {want}, got "
                                  f"{type(value).__name__} {json.dumps(value)[:40]}")


def load_state_strict(module: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
    """``load_state_dict`` that reports every missing, unexpected or misshapen tensor by name."""
    check_state_shapes(module, state, what)
    module.load_state_dict(state, strict=True)


def check_state_values(own: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor], what: str) -> None:
    """Refuse, naming the first such tensor, weights that cannot be what a network was trained to: a tensor
    of another kind than the module's own (integer weights, say, which ``load_state_dict`` would silently
    convert) or a floating-point tensor holding NaN or ±inf (which would make every image blank)."""
    for k in sorted(set(own) & set(state)):
        t = state[k]
        if t.is_floating_point() != own[k].is_floating_point() or t.is_complex() or t.dtype == torch.bool:
            raise CheckpointError(f"{what}: tensor {k} has dtype {str(t.dtype).removeprefix('torch.')}, expected "
                                  f"{str(own[k].dtype).removeprefix('torch.')}; the file does not hold usable weights")
        if t.is_floating_point() and not bool(torch.isfinite(t).all()):
            bad = int((~torch.isfinite(t)).sum())
            raise CheckpointError(f"{what}: tensor {k} holds {bad} non-finite value(s) (NaN or inf); these weights "
                                  "would make blank images (the training that wrote them diverged?)")


def check_state_shapes(module: nn.Module, state: Mapping[str, torch.Tensor], what: str) -> None:
    """Every missing, unexpected or misshapen tensor of ``state`` against ``module``, by name, as one
    :class:`CheckpointError`; then the values (:func:`check_state_values`). ``module`` may live on the meta
    device: then nothing is allocated."""
    own = module.state_dict()
    missing = sorted(set(own) - set(state))
    unexpected = sorted(set(state) - set(own))
    misshapen = [f"{k} {tuple(state[k].shape)} vs expected {tuple(own[k].shape)}"
                 for k in sorted(set(own) & set(state)) if state[k].shape != own[k].shape]
    problems = []
    if missing:
        problems.append(f"missing tensors: {', '.join(missing[:10])}" + (" ..." if len(missing) > 10 else ""))
    if unexpected:
        problems.append(f"unexpected tensors: {', '.join(unexpected[:10])}" + (" ..." if len(unexpected) > 10 else ""))
    if misshapen:
        problems.append(f"shape mismatch: {'; '.join(misshapen[:10])}" + (" ..." if len(misshapen) > 10 else ""))
    if problems:
        raise CheckpointError(f"{what}: tensors do not match the configuration ({' | '.join(problems)})")
    check_state_values(own, state, what)


def build_from_states(
    config: NetworkConfig,
    states: Mapping[str, Mapping[str, torch.Tensor]],
    names: tuple[str, ...],
    device: str | torch.device = "cpu",
    what: str = "network file",
) -> dict[str, nn.Module]:
    """Our networks ``names`` (G, G_ema, D) for ``config`` with the given tensors, strictly: every tensor must
    fit. The configuration is checked against the tensors on the meta device before anything is allocated, so
    a tiny file cannot make this build gigabytes of layers. The one builder of every reader."""
    from stylegan.networks import build_discriminator, build_generator

    out: dict[str, nn.Module] = {}
    for name in names:
        if name not in states:
            raise CheckpointError(f"{what}: holds no {name} (it has {', '.join(states) or 'nothing'})")
        build = build_discriminator if name == "D" else build_generator
        with torch.device("meta"):
            check_state_shapes(build(config), states[name], f"{what} [{name}]")
        module = build(config)
        load_state_strict(module, states[name], f"{what} [{name}]")
        out[name] = module.to(device)
    return out


def load_networks(
    path: str | os.PathLike,
    names: tuple[str, ...] | None = None,
    device: str | torch.device = "cpu",
) -> tuple[NetworkConfig, dict[str, nn.Module], Checkpoint]:
    """Rebuild the networks stored in one of this package's checkpoints (all of them, or ``names``)."""
    ckpt = read_checkpoint(path)
    names = tuple(ckpt.networks) if names is None else names
    states = {n: ckpt.state_dict(n) for n in ckpt.networks}
    return ckpt.config, build_from_states(ckpt.config, states, names, device, str(ckpt.path)), ckpt
