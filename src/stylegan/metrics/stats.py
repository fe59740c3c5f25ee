"""Streaming feature statistics, for real data (cached on disk) and for generated images.

:class:`FeatureStats` accumulates the count, the sum and the sum of outer products of feature vectors in
float64 (so memory does not grow with the number of images), and optionally keeps the vectors themselves
(KID and precision/recall need them).

Real-data statistics are cached in ``$STYLEGAN_CACHE/metrics`` under a key made of the dataset's content
fingerprint (names, sizes and modification times of the image files in a folder; names, CRC-32s and sizes of the
members of a zip), the feature network's identity (its file's SHA-256 and calling convention), the number of
images used and the subset seed. A second metric on the same data loads them instead of running the network.
"""
from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from stylegan.files import atomic_write_bytes
import torch
from tqdm import tqdm

from stylegan.metrics.features import FeatureNetwork, images_to_uint8
from stylegan.metrics.weights import cache_root

CACHE_VERSION = 1


class FeatureStats:
    """Running statistics of feature vectors; ``max_items`` caps how many are taken."""

    def __init__(self, capture_all: bool = False, max_items: int | None = None):
        self.capture_all = capture_all
        self.max_items = max_items
        self.num_items = 0
        self.dim: int | None = None
        self._sum: np.ndarray | None = None
        self._outer: np.ndarray | None = None
        self._all: list[np.ndarray] = []

    def append(self, feats) -> None:
        x = feats.detach().cpu().numpy() if isinstance(feats, torch.Tensor) else np.asarray(feats)
        x = x.astype(np.float32, copy=False).reshape(x.shape[0], -1)
        if self.max_items is not None:
            x = x[:max(self.max_items - self.num_items, 0)]
        if x.shape[0] == 0:
            return
        if self.dim is None:
            self.dim = x.shape[1]
            self._sum = np.zeros(self.dim, np.float64)
            self._outer = np.zeros((self.dim, self.dim), np.float64)
        elif x.shape[1] != self.dim:
            raise ValueError(f"feature size changed from {self.dim} to {x.shape[1]}")
        x64 = torch.from_numpy(x).to(torch.float64)
        self._sum += x64.sum(dim=0).numpy()
        self._outer += (x64.T @ x64).numpy()  # torch: its thread setting applies (NumPy's BLAS takes every core)
        self.num_items += x.shape[0]
        if self.capture_all:
            self._all.append(x.copy())

    def mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        """Mean and unbiased (N − 1) covariance, float64."""
        if self.num_items < 2:
            raise ValueError(f"need at least two feature vectors, have {self.num_items}")
        n = self.num_items
        mean = self._sum / n
        cov = (self._outer - n * np.outer(mean, mean)) / (n - 1)
        return mean, (cov + cov.T) / 2

    def features(self) -> np.ndarray:
        if not self.capture_all:
            raise ValueError("these statistics did not keep the feature vectors (capture_all=False)")
        if not self._all:
            return np.zeros((0, self.dim or 0), np.float32)
        if len(self._all) > 1:
            self._all = [np.concatenate(self._all)]
        return self._all[0]

    # --- files -------------------------------------------------------------------------------------------

    def save(self, path: str | os.PathLike, meta: dict | None = None) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"sum": self._sum, "outer": self._outer, "num_items": np.int64(self.num_items),
                  "meta": np.frombuffer(json.dumps(meta or {}).encode(), dtype=np.uint8)}
        if self.capture_all:
            arrays["features"] = self.features()
        def write(tmp: str) -> None:
            with open(tmp, "wb") as f:  # a file object: np.savez would add ".npz" to a path
                np.savez(f, **arrays)
        return atomic_write_bytes(path, write)

    @classmethod
    def load(cls, path: str | os.PathLike) -> FeatureStats:
        with np.load(path, allow_pickle=False) as z:
            s = cls(capture_all="features" in z.files)
            s.num_items = int(z["num_items"])
            s._sum = z["sum"]
            s._outer = z["outer"]
            s.dim = s._sum.shape[0]
            if s.capture_all:
                s._all = [z["features"]]
        s.max_items = s.num_items
        return s


# --- datasets ----------------------------------------------------------------------------------------


def dataset_fingerprint(path: str | os.PathLike) -> str:
    """SHA-256 over the image files of a folder (relative names, sizes, modification times) or a zip (member
    names, CRC-32s, sizes): it changes when an image is added, removed or rewritten."""
    return _fingerprint_and_count(path)[0]


def _fingerprint_and_count(path: str | os.PathLike) -> tuple[str, int]:
    from stylegan.data.dataset import is_image_name

    p = Path(path)
    h = hashlib.sha256()
    count = 0
    if p.is_dir():
        h.update(b"dir\n")
        for dirpath, dirnames, filenames in os.walk(p, followlinks=True):
            dirnames.sort()
            for name in sorted(filenames):
                if not is_image_name(name):
                    continue
                f = Path(dirpath) / name
                st = f.stat()
                h.update(f"{f.relative_to(p).as_posix()}|{st.st_size}|{st.st_mtime_ns}\n".encode())
                count += 1
    elif p.is_file() and zipfile.is_zipfile(p):
        h.update(b"zip\n")
        with zipfile.ZipFile(p) as z:
            for info in sorted(z.infolist(), key=lambda i: i.filename):
                if not info.is_dir() and is_image_name(info.filename):
                    h.update(f"{info.filename}|{info.CRC}|{info.file_size}\n".encode())
                    count += 1
    else:
        raise FileNotFoundError(f"dataset not found (not a folder or a zip): {p}")
    return h.hexdigest(), count


def stats_cache_dir() -> Path:
    return cache_root() / "metrics"


def _cache_paths(data_path: str, net: FeatureNetwork, max_items: int | None, seed: int,
                 cache_dir: Path, mirror: bool = False) -> dict[str, Path]:
    fingerprint, count = _fingerprint_and_count(data_path)
    if max_items is not None and max_items >= count * (2 if mirror else 1):
        max_items = None  # the whole dataset either way: share the entry
    key = json.dumps({"v": CACHE_VERSION, "data": fingerprint, "net": net.identity,
                      "max_items": max_items, "seed": seed, **({"mirror": True} if mirror else {})}, sort_keys=True)
    digest = hashlib.sha256(key.encode()).hexdigest()[:20]
    stem = Path(data_path).stem if Path(data_path).is_file() else Path(data_path).name
    base = cache_dir / f"{stem}-{net.name}-{max_items or 'all'}-{digest}"
    return {"stats": base.with_name(base.name + "-stats.npz"), "features": base.with_name(base.name + "-feats.npz")}


def _batches(dataset, batch_size: int, workers: int) -> Iterator[torch.Tensor]:
    loader = torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers)
    for images, _ in loader:
        yield images


def dataset_feature_stats(
    data_path: str | os.PathLike,
    net: FeatureNetwork,
    max_items: int | None = None,
    capture_all: bool = False,
    batch_size: int = 64,
    seed: int = 0,
    workers: int = 0,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
    desc: str = "real features",
    mirror: bool = False,
) -> FeatureStats:
    """Feature statistics of (a seeded random subset of ``max_items`` of) a folder or zip of images, loaded
    from the cache when present; computed, streamed in batches, and cached otherwise. ``mirror``: every image
    also x-flipped (the authors' ``--mirror``): the set twice as long, or with ``max_items``, half that many
    images and their mirror images."""
    from stylegan.data.dataset import ImageDataset

    data_path = os.fspath(data_path)
    paths = None
    if cache:
        paths = _cache_paths(data_path, net, max_items, seed, Path(cache_dir) if cache_dir else stats_cache_dir(),
                             mirror)
        for kind in (("features",) if capture_all else ("features", "stats")):
            if paths[kind].is_file():
                try:
                    return FeatureStats.load(paths[kind])
                except (OSError, ValueError, KeyError, zipfile.BadZipFile):
                    paths[kind].unlink(missing_ok=True)  # damaged cache entry: recompute
    subset = max_items if max_items is None or not mirror else max(1, (max_items + 1) // 2)
    dataset = ImageDataset(data_path, max_size=subset, random_seed=seed, xflip=mirror)
    stats = FeatureStats(capture_all=capture_all, max_items=max_items)
    bar = tqdm(total=len(dataset), desc=desc, unit="img", disable=not progress, leave=False)
    for images in _batches(dataset, batch_size, workers):
        stats.append(net(images))
        bar.update(images.shape[0])
    bar.close()
    dataset.close()
    if paths is not None:
        stats.save(paths["features" if capture_all else "stats"],
                   meta={"data": data_path, "feature_network": net.describe(), "num_items": stats.num_items})
    return stats


# --- generated images --------------------------------------------------------------------------------


def label_sampler(G, data_path: str | os.PathLike | None = None, seed: int = 0) -> Callable[[int], torch.Tensor | None]:
    """Class labels for generated images: None for an unconditional G; otherwise labels drawn at random from
    the dataset (the label distribution of the training data, as the authors' metrics do) when it has labels
    of the right size, else uniformly random one-hot classes."""
    if G.c_dim == 0:
        return lambda n: None
    rng = np.random.RandomState(seed + 1)
    labels = None
    if data_path is not None:
        from stylegan.data.dataset import ImageDataset

        try:
            ds = ImageDataset(data_path, use_labels=True)
            if ds.label_dim == G.c_dim:
                labels = np.stack([ds.get_label(i).numpy() for i in range(ds.num_images)])
            ds.close()
        except ValueError:  # no labels (or unusable ones): uniform classes below
            labels = None
    if labels is not None:
        return lambda n: torch.from_numpy(labels[rng.randint(len(labels), size=n)])
    eye = np.eye(G.c_dim, dtype=np.float32)
    return lambda n: torch.from_numpy(eye[rng.randint(G.c_dim, size=n)])


def _generator_device(G) -> torch.device:
    try:
        return next(G.parameters()).device
    except (StopIteration, AttributeError):
        return torch.device("cpu")


@torch.no_grad()
def generated_images(G, num: int, batch_size: int = 32, seed: int = 0, truncation_psi: float = 1.0,
                     noise_mode: str = "random", labels: Callable[[int], torch.Tensor | None] | None = None
                     ) -> Iterator[torch.Tensor]:
    """``num`` generated images as uint8 NCHW batches, reproducible for a seed (latents and random noise come
    from a seeded generator; the global RNG state is restored afterwards)."""
    device = _generator_device(G)
    labels = labels or label_sampler(G, None, seed)
    g = torch.Generator().manual_seed(seed)
    devices = []
    if device.type == "cuda":
        devices = [device.index if device.index is not None else torch.cuda.current_device()]
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        done = 0
        while done < num:
            n = min(batch_size, num - done)
            z = torch.randn(n, G.z_dim, generator=g).to(device)
            c = labels(n)
            c = c.to(device) if c is not None else None
            img = G(z, c, truncation_psi=truncation_psi, noise_mode=noise_mode)
            yield images_to_uint8(img)
            done += n


def generator_feature_stats(G, net: FeatureNetwork, num_gen: int, capture_all: bool = False, batch_size: int = 32,
                            seed: int = 0, labels=None, truncation_psi: float = 1.0, noise_mode: str = "random",
                            progress: bool = True, desc: str = "generated features") -> FeatureStats:
    """Feature statistics of ``num_gen`` generated images, streamed in batches (memory bounded by the batch,
    plus the vectors when ``capture_all``)."""
    stats = FeatureStats(capture_all=capture_all, max_items=num_gen)
    bar = tqdm(total=num_gen, desc=desc, unit="img", disable=not progress, leave=False)
    for images in generated_images(G, num_gen, batch_size, seed, truncation_psi, noise_mode, labels):
        stats.append(net(images))
        bar.update(images.shape[0])
    bar.close()
    return stats
