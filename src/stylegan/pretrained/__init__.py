"""Pretrained networks shipped with the package, by name.

``PRETRAINED`` maps a name to a checkpoint file in this folder (installed as package data), each with its
model card ``NAME.md`` beside it. Every command's ``--network`` accepts such a name as well as a path, through
:func:`resolve_network`, and ``stylegan train --resume NAME`` starts a new run from it (transfer learning: the
packaged files hold G_ema and D, and the options they were trained with)::

    >>> G = stylegan.load("mnist32")

A registered name whose file is not installed (yet) is reported as such, not as an unknown name.
"""
from __future__ import annotations

import os
from pathlib import Path

from stylegan.checkpoint import CheckpointError

#: Name → checkpoint file in this folder.
PRETRAINED: dict[str, str] = {"mnist32": "mnist32.safetensors", "twemoji-nofaces32": "twemoji-nofaces32.safetensors"}

#: The network that ``stylegan serve`` serves when no ``--network`` is given.
DEFAULT_NETWORK = "mnist32"

#: What each pretrained network draws, for page titles ("This Digit Does Not Exist").
SUBJECTS: dict[str, str] = {"mnist32": "Digit", "twemoji-nofaces32": "Emoji"}

FOLDER = Path(__file__).resolve().parent


class PretrainedError(CheckpointError):
    """A ``--network`` value that is neither an existing file nor an installed pretrained network."""


def names() -> list[str]:
    """The registered names, sorted."""
    return sorted(PRETRAINED)


def packaged_path(name: str) -> Path:
    """Where the file of a registered name lives (it may not exist yet)."""
    if name not in PRETRAINED:
        raise PretrainedError(f"{name!r} is not a pretrained network name; known names: {', '.join(names())}")
    return FOLDER / PRETRAINED[name]


def is_available(name: str) -> bool:
    """True when ``name`` is registered and its file is installed."""
    return name in PRETRAINED and packaged_path(name).is_file()


def resolve_network(name_or_path: str | os.PathLike) -> Path:
    """The checkpoint file for a ``--network`` value: an existing file as it is, else a pretrained name's
    packaged file. Errors say which names exist, or that a known name's file is not installed."""
    value = os.fspath(name_or_path)
    path = Path(value)
    if path.is_file():
        return path
    if value in PRETRAINED:
        p = packaged_path(value)
        if not p.is_file():
            raise PretrainedError(f"pretrained network {value!r} is registered, but its file {p.name} is not "
                                  f"installed in {p.parent}; give --network PATH to a checkpoint instead")
        return p
    if path.exists():
        raise PretrainedError(f"{value}: not a file")
    raise PretrainedError(f"{value}: no such network file, and not a pretrained network name "
                          f"(known names: {', '.join(names())})")


def model_card_path(name: str) -> Path:
    """Where the model card of a registered name lives: ``NAME.md`` beside its file."""
    return packaged_path(name).with_suffix(".md")


def model_card(name: str) -> str | None:
    """The model card (Markdown) of a pretrained network, or None for a name without one."""
    if name in PRETRAINED and model_card_path(name).is_file():
        return model_card_path(name).read_text(encoding="utf-8")
    return None


__all__ = ["DEFAULT_NETWORK", "PRETRAINED", "PretrainedError", "SUBJECTS", "is_available", "model_card", "names",
           "model_card_path", "packaged_path", "resolve_network"]
