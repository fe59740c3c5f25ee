"""Pretrained networks by name, and networks by URL.

``PRETRAINED`` maps a name to a checkpoint file in this folder (installed as package data), each with its
model card ``NAME.md`` beside it. ``PUBLISHED`` (:mod:`stylegan.pretrained.published`) names the authors'
released pickles (StyleGAN3-T/R, StyleGAN2, StyleGAN2-ADA), downloaded on first use. Every command's
``--network`` accepts a path, a packaged or published name, or an ``http(s)://`` URL, through
:func:`resolve_network` (the one resolver), and ``stylegan train --resume NAME`` starts a new run from it
(transfer learning: the packaged files hold G_ema and D, and the options they were trained with)::

    >>> G = stylegan.load("mnist32")
    >>> G = stylegan.load("stylegan3-t-ffhq-1024x1024")       # downloaded once into the cache folder
    >>> G = stylegan.load("https://example.org/network.pkl")  # any URL (stylegan.pretrained.download)

A registered name whose file is not installed (yet) is reported as such, not as an unknown name.
"""
from __future__ import annotations

import os
from pathlib import Path

from stylegan.checkpoint import CheckpointError
from stylegan.pretrained.download import cached_path, download_url, is_url
from stylegan.pretrained.published import PUBLISHED

#: Name → checkpoint file in this folder.
PRETRAINED: dict[str, str] = {"mnist32": "mnist32.safetensors", "twemoji32": "twemoji32.safetensors",
                              "twemoji-nofaces32": "twemoji-nofaces32.safetensors"}

#: The network that ``stylegan serve`` serves when no ``--network`` is given.
DEFAULT_NETWORK = "mnist32"

#: What each pretrained network draws, for page titles ("This Digit Does Not Exist").
SUBJECTS: dict[str, str] = {"mnist32": "Digit", "twemoji32": "Emoji", "twemoji-nofaces32": "Emoji"}

FOLDER = Path(__file__).resolve().parent


class PretrainedError(CheckpointError):
    """A ``--network`` value that is neither an existing file nor an installed pretrained network."""


def names() -> list[str]:
    """The registered names of packaged networks, sorted."""
    return sorted(PRETRAINED)


def published_names() -> list[str]:
    """The names of the authors' published networks (downloaded on first use), in the order listed."""
    return list(PUBLISHED)


def where(name: str) -> str:
    """How a known name is had: ``packaged``, ``downloaded`` (in the cache) or ``downloaded on first use``."""
    if name in PRETRAINED:
        return "packaged" if is_available(name) else "packaged (file not installed)"
    return "downloaded" if cached_path(PUBLISHED[name].url).is_file() else "downloaded on first use"


def packaged_path(name: str) -> Path:
    """Where the file of a registered name lives (it may not exist yet)."""
    if name not in PRETRAINED:
        raise PretrainedError(f"{name!r} is not a pretrained network name; known names: {', '.join(names())}")
    return FOLDER / PRETRAINED[name]


def is_available(name: str) -> bool:
    """True when ``name`` is registered and its file is installed."""
    return name in PRETRAINED and packaged_path(name).is_file()


def resolve_network(name_or_path: str | os.PathLike) -> Path:
    """The checkpoint file for a ``--network`` value: an existing file as it is, a URL's or a published name's
    cached download (downloading it first), else a pretrained name's packaged file. Errors say which names
    exist, or that a known name's file is not installed, or why a download failed (one line each)."""
    value = os.fspath(name_or_path)
    if is_url(value):
        return download_url(value)
    if value in PUBLISHED and not Path(value).is_file():
        return download_url(PUBLISHED[value].url, sha256=PUBLISHED[value].sha256 or None)
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
    raise PretrainedError(f"{value}: no such network file, URL or pretrained network name (known names: "
                          f"{', '.join(names())}, and {len(PUBLISHED)} published ones such as "
                          f"stylegan3-t-ffhq-1024x1024, which `stylegan networks` lists)")


def model_card_path(name: str) -> Path:
    """Where the model card of a registered name lives: ``NAME.md`` beside its file."""
    return packaged_path(name).with_suffix(".md")


def model_card(name: str) -> str | None:
    """The model card (Markdown) of a pretrained network, or None for a name without one."""
    if name in PRETRAINED and model_card_path(name).is_file():
        return model_card_path(name).read_text(encoding="utf-8")
    return None


__all__ = ["DEFAULT_NETWORK", "PRETRAINED", "PUBLISHED", "PretrainedError", "SUBJECTS", "is_available", "model_card",
           "model_card_path", "names", "packaged_path", "published_names", "resolve_network", "where"]
