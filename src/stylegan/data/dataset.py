"""Reading training images: :class:`ImageDataset`, and an endless, resumable, rank-split loader.

A *prepared dataset* (what ``stylegan dataset`` writes) is a folder, or a ``.zip`` of that folder, holding
``00000/img00000000.png``, ``00000/img00000001.png``, ... (uint8 PNG, one square power-of-two resolution,
1 or 3 channels) and a ``dataset.json`` of the form ``{"labels": [["00000/img00000000.png", 6], ...]}``
or ``{"labels": null}``; the layout of the StyleGAN2-ADA authors' dataset tool, so zips made with it work
too. :class:`ImageDataset` also reads a plain folder or zip of images (no labels then).
"""
from __future__ import annotations

import io
import json
import math
import numbers
import os
import signal
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from stylegan.config import MAX_CLASSES, is_power_of_two

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".webp", ".bmp")
LABELS_FILE = "dataset.json"


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def walk_files(root: str | os.PathLike) -> list[str]:
    """The files under folder ``root`` as sorted POSIX names relative to it, following symbolic links to
    folders once: a folder reached again (a link loop, or a second link to it) adds nothing."""
    root = Path(root)
    out, seen = [], set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        st = os.stat(dirpath)
        if (st.st_dev, st.st_ino) in seen:
            dirnames[:] = []
            continue
        seen.add((st.st_dev, st.st_ino))
        dirnames.sort()
        rel = Path(dirpath).relative_to(root)
        out.extend((rel / f).as_posix() for f in filenames)
    return sorted(out)


class _Storage:
    """Files of a folder or a zip, by POSIX-style relative name. Zips are opened lazily, once per process."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self._zip: zipfile.ZipFile | None = None
        self._zip_pid: int | None = None
        if self.path.is_dir():
            self.kind = "dir"
        elif self.path.is_file() and zipfile.is_zipfile(self.path):
            self.kind = "zip"
        elif self.path.exists():
            raise ValueError(f"{self.path}: not a folder or a .zip file")
        else:
            raise FileNotFoundError(f"dataset not found: {self.path}")

    def names(self) -> list[str]:
        if self.kind == "dir":
            return walk_files(self.path)
        names = [i.filename for i in self._get_zip().infolist() if not i.is_dir()]
        self.close()  # don't hand an open zip to forked DataLoader workers
        return sorted(names)

    def _get_zip(self) -> zipfile.ZipFile:
        # A ZipFile shares one file offset: a zip opened before a fork must not be used in the child.
        if self._zip is None or self._zip_pid != os.getpid():
            self._zip = zipfile.ZipFile(self.path)
            self._zip_pid = os.getpid()
        return self._zip

    def read(self, name: str) -> bytes:
        if self.kind == "dir":
            return (self.path / name).read_bytes()
        return self._get_zip().read(name)

    def exists(self, name: str) -> bool:
        if self.kind == "dir":
            return (self.path / name).is_file()
        try:
            self._get_zip().getinfo(name)
            return True
        except KeyError:
            return False

    def close(self) -> None:
        if self._zip is not None and self._zip_pid == os.getpid():
            self._zip.close()
        self._zip = None
        self._zip_pid = None

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_zip"] = None
        state["_zip_pid"] = None
        return state


def decode_image(data: bytes, name: str) -> np.ndarray:
    """Encoded image bytes → HWC uint8 (C = 1 or 3). Other modes (alpha, palette, 16 bit) are refused."""
    try:
        with Image.open(io.BytesIO(data)) as img:
            mode = img.mode
            arr = np.array(img) if mode in ("L", "RGB") else None  # a writable copy
    except Exception as e:  # PIL raises a variety of errors for broken files
        raise ValueError(f"{name}: cannot read image: {e}") from e
    if arr is None:
        raise ValueError(f"{name}: image mode {mode!r} is not supported here (want 8-bit L or RGB); "
                         f"prepare the images with `stylegan dataset`")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    return arr


def _read_label_file(storage: _Storage) -> dict[str, Any] | None:
    if not storage.exists(LABELS_FILE):
        return None
    return labels_from_json(storage.read(LABELS_FILE), str(storage.path))


def check_label(label: Any) -> int | list[float]:
    """A label as datasets store it: a class index in [0, MAX_CLASSES), or a vector of at most MAX_CLASSES
    finite numbers. Anything else (a string, a huge class index that would allocate a giant one-hot table, a
    nested list) is a ValueError. The one check of the dataset tool and of the dataset reader."""
    if isinstance(label, (int, np.integer)) and not isinstance(label, bool):
        if not 0 <= int(label) < MAX_CLASSES:
            raise ValueError(f"class label {int(label)} is outside [0, {MAX_CLASSES})")
        return int(label)
    values = label.tolist() if isinstance(label, np.ndarray) else label
    if (isinstance(values, (list, tuple)) and 0 < len(values) <= MAX_CLASSES
            and all(isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v) for v in values)):
        return [float(v) for v in values]
    raise ValueError(f"a label must be a class index or a vector of numbers, got {repr(values)[:40]}")


def labels_from_json(data: bytes, where: str) -> dict[str, Any] | None:
    """The labels of a ``dataset.json`` (``{"labels": [[name, label], ...]}`` or null) by image name."""
    try:
        meta = json.loads(data)
    except (ValueError, RecursionError) as e:
        raise ValueError(f"{where}: {LABELS_FILE} is not valid JSON: {str(e)[:100]}") from None
    labels = meta.get("labels") if isinstance(meta, dict) else None
    if labels is None:
        return None
    if not isinstance(labels, list) or not all(isinstance(e, list) and len(e) == 2 and isinstance(e[0], str)
                                               for e in labels):
        raise ValueError(f"{where}: {LABELS_FILE}: 'labels' must be a list of [file name, label] pairs")
    out = {}
    for name, label in labels:
        try:
            out[name.replace("\\", "/")] = check_label(label)
        except ValueError as e:
            raise ValueError(f"{where}: {LABELS_FILE}, {name}: {e}") from None
    return out


def image_base(h: int, w: int) -> tuple[int, int] | None:
    """The lowest network stage (base_h, base_w) for h × w images, or None when no network makes that size."""
    side = max(h, w)
    if h == w:
        return (4, 4) if is_power_of_two(side) else None
    if not is_power_of_two(side, 4) or (4 * h) % side or (4 * w) % side:
        return None
    return 4 * h // side, 4 * w // side


class ImageDataset(torch.utils.data.Dataset):
    """Images of one size from a folder (searched recursively) or a zip: square with a power-of-two side, or
    non-square with a power-of-two longer side and the shorter one 1/4, 2/4 or 3/4 of it (e.g. 512×384).

    ``dataset[i]`` is ``(image, label)``: a uint8 tensor CHW and a float32 label: a one-hot vector of
    length :attr:`label_dim` for class labels (or the stored vector), or ``torch.zeros(0)`` when
    ``use_labels`` is False. With ``xflip`` the dataset is twice as long: items ``len/2 ...`` are mirrored
    copies. ``max_size`` keeps a random subset (fixed by ``random_seed``) of that many images.
    """

    def __init__(self, path: str | os.PathLike, resolution: int | None = None, use_labels: bool = False,
                 max_size: int | None = None, xflip: bool = False, random_seed: int = 0):
        self.path = str(path)
        self._storage = _Storage(path)
        self.name = Path(path).stem if self._storage.kind == "zip" else Path(path).name
        names = [n for n in self._storage.names() if is_image_name(n)]
        if not names:
            raise ValueError(f"{path}: no images found ({', '.join(IMAGE_EXTENSIONS)})")
        if max_size is not None and max_size < len(names):
            if max_size < 1:
                raise ValueError(f"max_size must be at least 1, got {max_size}")
            keep = np.random.RandomState(random_seed).choice(len(names), size=max_size, replace=False)
            names = [names[i] for i in sorted(keep)]
        self._names = names
        self._xflip = bool(xflip)

        # Shape, from the first image; every image is checked against it when read.
        first = decode_image(self._storage.read(names[0]), self._describe(names[0]))
        h, w, c = first.shape
        if image_base(h, w) is None:
            raise ValueError(f"{self._describe(names[0])}: images must be square with a power-of-two size (or "
                             f"have a power-of-two longer side and the other 1/4, 2/4 or 3/4 of it), got {w}x{h}; "
                             f"prepare them with `stylegan dataset --resolution N [--aspect W:H]`")
        if resolution is not None and max(h, w) != resolution:
            raise ValueError(f"{path}: images are {w}x{h}, not the requested resolution {resolution}")
        self._image_shape = (c, h, w)

        # Labels: dataset.json is checked even when they are not used (a corrupt file is never ignored).
        self._use_labels = bool(use_labels)
        self._labels: np.ndarray | None = None
        label_map = _read_label_file(self._storage)
        if use_labels:
            if label_map is None:
                raise ValueError(f"{path}: use_labels is set but the dataset has no labels "
                                 f"({LABELS_FILE} missing or {{\"labels\": null}})")
            missing = [n for n in names if n not in label_map]
            if missing:
                raise ValueError(f"{path}: {LABELS_FILE} has no label for {missing[0]}"
                                 + (f" and {len(missing) - 1} other images" if len(missing) > 1 else ""))
            raw = [label_map[n] for n in names]
            if all(isinstance(v, int) and not isinstance(v, bool) for v in raw):
                classes = np.asarray(raw, dtype=np.int64)
                if classes.min() < 0:
                    raise ValueError(f"{path}: negative class label {classes.min()}")
                onehot = np.zeros((len(raw), int(classes.max()) + 1), dtype=np.float32)
                onehot[np.arange(len(raw)), classes] = 1
                self._labels = onehot
            else:
                try:
                    vec = np.asarray(raw, dtype=np.float32)
                except (TypeError, ValueError) as e:
                    raise ValueError(f"{path}: labels must be all class indices or all equal-length vectors") from e
                if vec.ndim != 2:
                    raise ValueError(f"{path}: labels must be all class indices or all equal-length vectors")
                self._labels = vec
        self._storage.close()  # reopened on demand, in each process

    def _describe(self, name: str) -> str:
        return f"{self.path}:{name}" if self._storage.kind == "zip" else str(Path(self.path) / name)

    # --- properties -----------------------------------------------------------------------------------

    @property
    def resolution(self) -> int:
        """The longer side."""
        return max(self._image_shape[1:])

    @property
    def base(self) -> tuple[int, int]:
        """(base_h, base_w) of networks that make these images: (4, 4) when square."""
        return image_base(*self._image_shape[1:])

    @property
    def num_channels(self) -> int:
        return self._image_shape[0]

    @property
    def image_shape(self) -> list[int]:
        return list(self._image_shape)

    @property
    def label_dim(self) -> int:
        return 0 if self._labels is None else self._labels.shape[1]

    @property
    def has_labels(self) -> bool:
        return self.label_dim > 0

    @property
    def xflip(self) -> bool:
        return self._xflip

    @property
    def num_images(self) -> int:
        """Number of distinct stored images (``len`` without the mirrored half)."""
        return len(self._names)

    # --- items ----------------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self._names) * (2 if self._xflip else 1)

    def _raw_index(self, idx: int) -> tuple[int, bool]:
        n = len(self)
        if idx < 0:
            idx += n
        if not 0 <= idx < n:
            raise IndexError(f"index {idx} out of range for a dataset of {n}")
        return idx % len(self._names), idx >= len(self._names)

    def load_image(self, idx: int) -> np.ndarray:
        """Item ``idx`` as a CHW uint8 numpy array (mirrored for the second half with xflip)."""
        raw, flip = self._raw_index(idx)
        name = self._names[raw]
        arr = decode_image(self._storage.read(name), self._describe(name))
        chw = arr.transpose(2, 0, 1)
        if chw.shape != self._image_shape:
            c, h, w = self._image_shape
            raise ValueError(f"{self._describe(name)}: image is {chw.shape[2]}x{chw.shape[1]} with "
                             f"{chw.shape[0]} channel(s), expected {w}x{h} with {c} like the rest of the dataset")
        if flip:
            chw = chw[:, :, ::-1]
        return np.ascontiguousarray(chw)

    def get_label(self, idx: int) -> torch.Tensor:
        raw, _ = self._raw_index(idx)
        if self._labels is None:
            return torch.zeros(0, dtype=torch.float32)
        return torch.from_numpy(self._labels[raw].copy())

    def __getitem__(self, idx: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(self.load_image(idx)), self.get_label(idx)

    def close(self) -> None:
        self._storage.close()

    def __repr__(self) -> str:
        return (f"ImageDataset({self.path!r}, images={self.num_images}, shape={self.image_shape}, "
                f"label_dim={self.label_dim}, xflip={self._xflip})")


# --- endless sampling --------------------------------------------------------------------------------


class InfiniteSampler(torch.utils.data.Sampler):
    """Shuffled dataset indices forever, the same for a given seed, split across DDP ranks.

    Conceptually there is one global stream: the permutations of epoch 0, 1, 2, ... (each fixed by
    ``(seed, epoch)``) laid end to end. Rank ``r`` of ``W`` takes the stream's items ``r, r+W, r+2W, ...``,
    so the ranks together see every index once per epoch. ``start`` is how many items this rank has
    already taken. The position (``epoch``, ``position`` within it) is the same on every rank after each
    has taken the same number of items, so one saved state resumes all of them, also with a new world size.
    """

    def __init__(self, size: int, seed: int = 0, rank: int = 0, world_size: int = 1, shuffle: bool = True,
                 start: int = 0):
        if size < 1:
            raise ValueError("cannot sample from an empty dataset")
        if world_size < 1 or not 0 <= rank < world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank={rank}, world_size={world_size}")
        self.size = int(size)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.shuffle = bool(shuffle)
        self.consumed = int(start)
        self._perm_epoch: int | None = None
        self._perm: np.ndarray | None = None

    def permutation(self, epoch: int) -> np.ndarray:
        if self._perm_epoch != epoch:
            if self.shuffle:
                rng = np.random.Generator(np.random.PCG64(np.random.SeedSequence([self.seed, epoch])))
                self._perm = rng.permutation(self.size)
            else:
                self._perm = np.arange(self.size)
            self._perm_epoch = epoch
        return self._perm

    def __iter__(self) -> Iterator[int]:
        while True:
            g = self.consumed * self.world_size + self.rank
            epoch, pos = divmod(g, self.size)
            idx = int(self.permutation(epoch)[pos])
            self.consumed += 1
            yield idx

    def __len__(self) -> int:  # endless; a big number keeps code that asks for len() working
        return 2 ** 62

    @staticmethod
    def position_of(consumed: int, world_size: int, size: int) -> tuple[int, int]:
        return divmod(consumed * world_size, size)

    def state_dict(self) -> dict[str, int]:
        epoch, position = self.position_of(self.consumed, self.world_size, self.size)
        return {"epoch": epoch, "position": position, "seed": self.seed, "size": self.size}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.consumed = _consumed_from_state(state, self.seed, self.size, self.world_size)


def _consumed_from_state(state: dict[str, Any], seed: int, size: int, world_size: int) -> int:
    if int(state["seed"]) != seed or int(state["size"]) != size:
        raise ValueError(f"sampler state is for seed {state['seed']} and {state['size']} items, "
                         f"not seed {seed} and {size} items: the dataset or seed changed")
    g = int(state["epoch"]) * size + int(state["position"])
    return -(-g // world_size)  # round up: never repeat an index another rank may already have seen


class InfiniteLoader:
    """Endless batches from a dataset: a DataLoader over an :class:`InfiniteSampler`.

    ``state_dict()`` describes the batches handed out so far (not what the workers have prefetched), so a
    run resumed with ``load_state_dict()`` gets exactly the batch that would have come next.
    """

    def __init__(self, dataset, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                 num_workers: int = 0, shuffle: bool = True, pin_memory: bool = False, prefetch_factor: int | None = None,
                 **loader_kwargs: Any):
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.size = len(dataset)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.shuffle = bool(shuffle)
        self.num_workers = int(num_workers)
        self.pin_memory = bool(pin_memory)
        self.prefetch_factor = prefetch_factor
        self.loader_kwargs = loader_kwargs
        InfiniteSampler(self.size, self.seed, self.rank, self.world_size)  # validates the arguments
        self.consumed = 0  # items (not batches) handed out by this rank
        self._it: Iterator | None = None

    def _make_iterator(self) -> Iterator:
        sampler = InfiniteSampler(self.size, self.seed, self.rank, self.world_size, self.shuffle, start=self.consumed)
        kw = dict(self.loader_kwargs)
        if self.num_workers > 0 and self.prefetch_factor is not None:
            kw["prefetch_factor"] = self.prefetch_factor
        if self.num_workers > 0:
            kw.setdefault("worker_init_fn", ignore_stop_signals)
        loader = torch.utils.data.DataLoader(self.dataset, batch_size=self.batch_size, sampler=sampler,
                                             num_workers=self.num_workers, pin_memory=self.pin_memory, **kw)
        return iter(loader)

    def __iter__(self) -> InfiniteLoader:
        return self

    def __next__(self):
        if self._it is None:
            self._it = self._make_iterator()
        batch = next(self._it)
        self.consumed += self.batch_size
        return batch

    @property
    def epoch(self) -> int:
        return self.state_dict()["epoch"]

    def state_dict(self) -> dict[str, int]:
        epoch, position = InfiniteSampler.position_of(self.consumed, self.world_size, self.size)
        return {"epoch": epoch, "position": position, "seed": self.seed, "size": self.size}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.consumed = _consumed_from_state(state, self.seed, self.size, self.world_size)
        self.close()

    def close(self) -> None:
        """Stop the worker processes (the next batch starts new ones)."""
        it, self._it = self._it, None
        if it is not None and hasattr(it, "_shutdown_workers"):
            it._shutdown_workers()


def ignore_stop_signals(worker_id: int = 0) -> None:
    """In a data-loading worker: leave SIGINT and SIGTERM to the main process. A signal sent to the whole
    process group (Ctrl-C, ``timeout``, a scheduler's preemption, ``systemctl stop``) would otherwise kill the
    workers first, and the main process would die inside a training step, before its final snapshot. The main
    process stops the workers itself when it closes the loader; if it dies, they exit with it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def infinite_loader(dataset, batch_size: int, seed: int = 0, rank: int = 0, world_size: int = 1,
                    **kwargs: Any) -> InfiniteLoader:
    """Endless shuffled batches of ``batch_size`` (per rank); see :class:`InfiniteLoader`."""
    return InfiniteLoader(dataset, batch_size, seed=seed, rank=rank, world_size=world_size, **kwargs)
