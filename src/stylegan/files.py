"""Writing files so that a reader never sees half of one: the bottom floor that checkpoints, metric caches,
images, videos and imported weights share (it imports nothing of the package)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Callable


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_bytes(path: str | os.PathLike, write: Callable[[str], object]) -> Path:
    """Call ``write(tmp_path)`` and rename the temporary file to ``path`` once it is complete on disk.

    The temporary file (``.NAME.XXXX.tmp``) lies in the same folder, so the rename is atomic; it is removed
    when ``write`` fails or is interrupted, and a full disk is an :class:`OSError` naming ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        try:
            write(tmp)
        except OSError:
            raise
        except Exception as e:  # the safetensors library reports a full disk as its own error type
            if type(e).__name__ != "SafetensorError":
                raise
            raise OSError(f"cannot write {path}: {e}") from None
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp's 0600 would make snapshots private, unlike the run's other files
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_npz(path: str | os.PathLike, **arrays) -> Path:
    """``numpy.savez`` of ``arrays`` to exactly ``path`` (no ".npz" appended), written whole or not at all."""
    import numpy as np

    def write(tmp: str) -> None:
        with open(tmp, "wb") as f:  # a file object: np.savez would add ".npz" to a path
            np.savez(f, **arrays)

    return atomic_write_bytes(path, write)
