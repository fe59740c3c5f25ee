"""Where the dataset tool reads images from.

:func:`open_source` picks the reader from the path:

* a folder of images (searched recursively: png, jpg, jpeg, webp, bmp), or a ``.zip`` of images; a
  ``dataset.json`` at its top (a prepared dataset) carries its labels over;
* MNIST / Fashion-MNIST IDX files: ``*-images-idx3-ubyte`` (or ``.gz``), labels from the matching
  ``*-labels-idx1-ubyte(.gz)`` beside it; a folder holding them uses the ``train-`` set;
* CIFAR-10 python batches: ``cifar-10-python.tar.gz`` (or the extracted ``cifar-10-batches-py`` folder);
  the 50,000 training images of ``data_batch_1..5``, with labels. The pickles are read with the package's
  restricted unpickler (:mod:`stylegan.unpickler`), allowed to build only dicts, lists and numpy arrays;
* an LSUN lmdb export (a folder with ``data.mdb``), which needs ``pip install lmdb``.

Every source yields :class:`SourceItem` s, whose image is decoded only when ``load()`` is called, so the
tool can name (and skip) a file that does not decode.
"""
from __future__ import annotations

import gzip
import io
import os
import pickle
import re
import struct
import tarfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from stylegan.data.dataset import LABELS_FILE, is_image_name, labels_from_json, walk_files
from stylegan.unpickler import (AllowList, AllowListUnpickler, allow, builtin_dict, builtin_list, guard,
                                    lookup_global, new_dict, new_list, numpy_array_globals, plain_arrays)


@dataclass
class SourceItem:
    name: str                          # for messages: a file, an archive member, or ``file[index]``
    load: Callable[[], Image.Image]    # decodes the image; raises if it is broken
    label: Any = None                  # a class index (or a stored label vector), or None


class Source:
    """An iterable of :class:`SourceItem` with a known length (or None) and a description."""

    description: str = "source"
    has_labels: bool = False

    def __iter__(self) -> Iterator[SourceItem]:
        raise NotImplementedError

    def __len__(self) -> int:
        raise TypeError("length unknown")

    def length(self) -> int | None:
        try:
            return len(self)
        except TypeError:
            return None

    def close(self) -> None:
        pass


def decode_bytes(data: bytes) -> Image.Image:
    """Encoded bytes → a fully decoded PIL image (truncated or corrupt data raises here, not later)."""
    img = Image.open(io.BytesIO(data))
    img.load()
    return img



# --- folders and zips of images ----------------------------------------------------------------------


class FolderSource(Source):
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.description = f"folder {self.path}"
        self.names = [n for n in walk_files(self.path) if is_image_name(n)]
        label_file = self.path / LABELS_FILE
        self.labels = labels_from_json(label_file.read_bytes(), str(self.path)) if label_file.is_file() else None
        self.has_labels = self.labels is not None

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[SourceItem]:
        for name in self.names:
            path = self.path / name
            label = self.labels.get(name) if self.labels is not None else None
            yield SourceItem(str(path), lambda path=path: decode_bytes(path.read_bytes()), label)


class ZipSource(Source):
    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.description = f"zip {self.path}"
        self._zip = zipfile.ZipFile(self.path)
        self.names = sorted(i.filename for i in self._zip.infolist() if not i.is_dir() and is_image_name(i.filename))
        try:
            self.labels = labels_from_json(self._zip.read(LABELS_FILE), str(self.path))
        except KeyError:
            self.labels = None
        self.has_labels = self.labels is not None

    def __len__(self) -> int:
        return len(self.names)

    def __iter__(self) -> Iterator[SourceItem]:
        for name in self.names:
            label = self.labels.get(name) if self.labels is not None else None
            yield SourceItem(f"{self.path}:{name}", lambda name=name: decode_bytes(self._zip.read(name)), label)

    def close(self) -> None:
        self._zip.close()


# --- images held in arrays (IDX, CIFAR, built-in sets) -----------------------------------------------


class ArraySource(Source):
    """Images from an array NHW (grayscale) or NHWC (C = 1, 3 or 4) of uint8, with optional labels."""

    def __init__(self, images: np.ndarray, labels: np.ndarray | None = None, description: str = "array"):
        if images.dtype != np.uint8 or images.ndim not in (3, 4):
            raise ValueError(f"{description}: expected uint8 images NHW or NHWC, got {images.dtype} {images.shape}")
        if labels is not None and len(labels) != len(images):
            raise ValueError(f"{description}: {len(images)} images but {len(labels)} labels")
        self.images = images
        self.labels = labels
        self.description = description
        self.has_labels = labels is not None

    def __len__(self) -> int:
        return len(self.images)

    def _image(self, i: int) -> Image.Image:
        a = self.images[i]
        if a.ndim == 3 and a.shape[2] == 1:
            a = a[:, :, 0]
        if a.ndim == 2:
            return Image.fromarray(a, "L")
        return Image.fromarray(a, {3: "RGB", 4: "RGBA"}[a.shape[2]])

    def __iter__(self) -> Iterator[SourceItem]:
        for i in range(len(self.images)):
            label = None if self.labels is None else int(self.labels[i])
            yield SourceItem(f"{self.description}[{i}]", lambda i=i: self._image(i), label)


# --- MNIST / Fashion-MNIST IDX -----------------------------------------------------------------------

_IDX_DTYPES = {0x08: np.dtype(">u1"), 0x09: np.dtype(">i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
               0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
_IDX_IMAGES = re.compile(r"images([-.])idx3([-.])ubyte(\.gz)?$")


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """An IDX file (optionally gzipped) as a numpy array."""
    path = Path(path)
    opener = gzip.open if path.name.endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (OSError, EOFError) as e:
        raise ValueError(f"{path}: cannot read: {e}") from e
    if len(data) < 4 or data[0] != 0 or data[1] != 0 or data[2] not in _IDX_DTYPES:
        raise ValueError(f"{path}: not an IDX file (bad magic number)")
    dtype, ndim = _IDX_DTYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path}: truncated IDX header")
    dims = struct.unpack(f">{ndim}I", data[4:header])
    count = int(np.prod(dims, dtype=np.int64))
    if len(data) != header + count * dtype.itemsize:
        raise ValueError(f"{path}: IDX file has {len(data) - header} data bytes, expected "
                         f"{count * dtype.itemsize} for shape {dims}")
    return np.frombuffer(data, dtype, count, offset=header).reshape(dims).astype(dtype.newbyteorder("="))


def idx_labels_path(images_path: str | os.PathLike) -> Path | None:
    """The ``*-labels-idx1-ubyte(.gz)`` file that goes with an images IDX file, if present."""
    p = Path(images_path)
    m = _IDX_IMAGES.search(p.name)
    if m is None:
        return None
    stem = p.name[:m.start()] + f"labels{m.group(1)}idx1{m.group(2)}ubyte"
    for name in (stem + (m.group(3) or ""), stem, stem + ".gz"):
        if (p.parent / name).is_file():
            return p.parent / name
    return None


def idx_source(images_path: str | os.PathLike) -> ArraySource:
    images = read_idx(images_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(f"{images_path}: expected unsigned-byte images N×H×W, got {images.dtype} {images.shape}")
    labels = None
    lpath = idx_labels_path(images_path)
    if lpath is not None:
        labels = read_idx(lpath)
        if labels.ndim != 1 or len(labels) != len(images):
            raise ValueError(f"{lpath}: expected {len(images)} labels, got an array of shape {labels.shape}")
        labels = labels.astype(np.int64)
    return ArraySource(images, labels, description=str(images_path))


def _find_idx_images(folder: Path) -> Path | None:
    found = sorted(p for p in folder.iterdir() if p.is_file() and _IDX_IMAGES.search(p.name))
    if not found:
        return None
    train = [p for p in found if p.name.startswith("train")]
    if len(train) >= 1:
        return train[0]
    if len({_IDX_IMAGES.sub("", p.name) for p in found}) > 1:
        raise ValueError(f"{folder}: several IDX image sets and none named train-*: pass one file as the source")
    return found[0]


# --- CIFAR-10 ----------------------------------------------------------------------------------------


def _cifar_globals() -> AllowList:
    allowed = numpy_array_globals()
    allow(allowed, ["builtins.dict", "__builtin__.dict"], builtin_dict, new=new_dict)
    allow(allowed, ["builtins.list", "__builtin__.list"], builtin_list, new=new_list)
    return allowed


_CIFAR_GLOBALS = _cifar_globals()


class RestrictedUnpickler(pickle.Unpickler):
    """Unpickles dicts, lists, strings, numbers and numpy arrays, and refuses every other global.

    The pickle is interpreted by the package's restricted unpickler (:mod:`stylegan.unpickler`), never by
    Python's: only numpy's array reconstruction functions, ``numpy.ndarray``, ``numpy.dtype`` (numeric types)
    and builtins ``dict``/``list`` may be named, and they reach stand-ins, so a crafted file cannot call anything
    (``os.system`` and friends raise :class:`pickle.UnpicklingError`, as does a malformed file). The class keeps
    :class:`pickle.Unpickler`'s interface: ``RestrictedUnpickler(file, encoding=...).load()``.
    """

    def __init__(self, file, *, encoding: str = "ASCII", errors: str = "strict", **kwargs):
        super().__init__(file, encoding=encoding, errors=errors, **kwargs)
        self._file, self._encoding, self._errors = file, encoding, errors

    def find_class(self, module: str, name: str) -> Any:
        """The stand-in a pickle's reference to ``module.name`` resolves to; refuses names not allowed."""
        return lookup_global(_CIFAR_GLOBALS, module, name)

    def load(self) -> Any:
        """The next object of the file, numpy arrays as :class:`numpy.ndarray`; the file is left after it when it
        can seek."""
        seekable = getattr(self._file, "seekable", lambda: False)()
        start = self._file.tell() if seekable else 0
        data = self._file.read()
        unpickler = AllowListUnpickler(data, _CIFAR_GLOBALS, encoding=self._encoding, errors=self._errors)
        obj, end = guard(lambda: unpickler.load(0))
        if seekable:
            self._file.seek(start + end)
        return guard(lambda: plain_arrays(obj))


def restricted_loads(data: bytes) -> Any:
    return RestrictedUnpickler(io.BytesIO(data), encoding="bytes").load()


_CIFAR_BATCH = re.compile(r"(?:^|/)data_batch_(\d+)$")


def _cifar_batch(data: bytes, where: str) -> tuple[np.ndarray, np.ndarray]:
    batch = restricted_loads(data)
    if not isinstance(batch, dict):
        raise ValueError(f"{where}: not a CIFAR batch (a pickled dict)")
    get = lambda key: batch.get(key.encode(), batch.get(key))  # noqa: E731 (py2 pickles have bytes keys)
    images, labels = get("data"), get("labels")
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 2 or images.shape[1] != 3072:
        raise ValueError(f"{where}: expected 'data' to be uint8 N×3072")
    labels = np.asarray(labels, dtype=np.int64)
    if labels.shape != (len(images),):
        raise ValueError(f"{where}: expected {len(images)} labels, got shape {labels.shape}")
    return images.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1), labels


def cifar10_source(path: str | os.PathLike) -> ArraySource:
    """The training batches of CIFAR-10 from the python tarball or its extracted folder."""
    path = Path(path)
    batches: list[tuple[int, str, bytes]] = []
    if path.is_dir():
        for p in path.iterdir():
            m = _CIFAR_BATCH.search(p.name)
            if m and p.is_file():
                batches.append((int(m.group(1)), str(p), p.read_bytes()))
    else:
        try:
            with tarfile.open(path) as tar:
                for member in tar.getmembers():
                    m = _CIFAR_BATCH.search(member.name)
                    if m and member.isfile():
                        batches.append((int(m.group(1)), f"{path}:{member.name}", tar.extractfile(member).read()))
        except (tarfile.TarError, OSError, EOFError) as e:
            raise ValueError(f"{path}: cannot read the archive: {e}") from e
    if not batches:
        raise ValueError(f"{path}: no CIFAR-10 data_batch_N files found")
    batches.sort()
    parts = [_cifar_batch(data, where) for _, where, data in batches]
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts])
    return ArraySource(np.ascontiguousarray(images), labels, description=str(path))


def _is_cifar_tar(path: Path) -> bool:
    return path.name.endswith((".tar.gz", ".tgz", ".tar")) and tarfile.is_tarfile(path)


# --- LSUN lmdb ---------------------------------------------------------------------------------------


def import_lmdb():
    try:
        import lmdb
    except ImportError as e:
        raise ImportError("reading an LSUN lmdb export needs the lmdb package: pip install lmdb") from e
    return lmdb


class LmdbSource(Source):
    """Values of an lmdb database (LSUN exports), each an encoded image (webp, jpeg, png)."""

    def __init__(self, path: str | os.PathLike):
        lmdb = import_lmdb()
        self.path = Path(path)
        self.description = f"lmdb {self.path}"
        try:
            self._env = lmdb.open(str(self.path), readonly=True, lock=False, readahead=False, max_readers=1,
                                  subdir=True)
        except lmdb.Error as e:
            raise ValueError(f"{self.path}: cannot open the lmdb database: {e}") from e
        self._len = int(self._env.stat()["entries"])

    def __len__(self) -> int:
        return self._len

    def __iter__(self) -> Iterator[SourceItem]:
        with self._env.begin(write=False) as txn:
            for key, value in txn.cursor():
                name = f"{self.path}[{bytes(key).decode('utf-8', 'replace')}]"
                yield SourceItem(name, lambda data=bytes(value): decode_bytes(data))

    def close(self) -> None:
        self._env.close()


# --- picking a reader --------------------------------------------------------------------------------


def open_source(path: str | os.PathLike) -> Source:
    """The :class:`Source` for a path (see the module docstring for what is recognised)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"source not found: {path}")
    if path.is_dir():
        if (path / "data.mdb").is_file():
            return LmdbSource(path)
        if any(_CIFAR_BATCH.search(p.name) for p in path.iterdir()):
            return cifar10_source(path)
        idx = _find_idx_images(path)
        if idx is not None:
            return idx_source(idx)
        return FolderSource(path)
    if path.name == "data.mdb":
        return LmdbSource(path.parent)
    if _IDX_IMAGES.search(path.name):
        return idx_source(path)
    if zipfile.is_zipfile(path):
        return ZipSource(path)
    if _is_cifar_tar(path):
        return cifar10_source(path)
    raise ValueError(f"{path}: unknown source type: want a folder or .zip of images, MNIST-style "
                     f"*-images-idx3-ubyte[.gz], cifar-10-python.tar.gz, or an lmdb folder (LSUN)")
