"""The package's cache folder, in one place: ``$STYLEGAN_CACHE`` when set, else the platform's cache folder
(``$XDG_CACHE_HOME/stylegan`` or ``~/.cache/stylegan`` on Linux, ``~/Library/Caches/stylegan`` on macOS,
``%LOCALAPPDATA%\\stylegan`` on Windows). Downloaded networks, built-in datasets, the metrics' feature
networks and dataset statistics live in subfolders of it."""
from __future__ import annotations

import os
import sys
from pathlib import Path


def cache_root() -> Path:
    """``$STYLEGAN_CACHE``, else the platform cache folder's ``stylegan`` subfolder."""
    env = os.environ.get("STYLEGAN_CACHE")
    if env:
        return Path(env).expanduser()
    if sys.platform == "win32" and os.environ.get("LOCALAPPDATA"):
        return Path(os.environ["LOCALAPPDATA"]) / "stylegan"
    if sys.platform == "darwin":
        return Path.home() / "Library" / "Caches" / "stylegan"
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "stylegan"


__all__ = ["cache_root"]
