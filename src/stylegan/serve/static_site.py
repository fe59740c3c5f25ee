"""A static "This X Does Not Exist": a folder of files that any web server (or none but the visitor's browser
cache) can host, which generates images in the visitor's browser with no server-side code.

``write_static_site(G, outdir)`` writes:

- ``model.onnx``: the generator exported with random noise as an input (:func:`stylegan.tools.export.export_onnx`),
  or without one for a network that has no noise inputs (StyleGAN3: the page then hides its noise choice); a
  StyleGAN3 network's graph also takes its Fourier input's matrix (``transform``), so that the page can
  translate and rotate the image;
- ``model.json``: what the page needs to drive it (z and class sizes, image shape, the noise layout, ψ, title,
  model card);
- ``const-noise.bin``: the generator's stored noise images (float32, little-endian), so that the page offers
  the same three noise modes as ``stylegan serve`` (const, random, none: zeros);
- ``index.html``, ``site.js``, ``site.css`` (from ``stylegan/serve/site``);
- ``ort/``: onnxruntime-web's WebAssembly build (three files of its npm package, MIT licence), loaded from the
  site's own folder, never from another host.

The page draws its latents from the seed with a small counter-based generator (mulberry32) and Box–Muller;
:func:`site_normals` is the same computation in Python, so a test can check the browser's pixels against
PyTorch. (The seeds therefore do not give the same images as ``stylegan generate --seeds``, which draws with
torch's generator.)

onnxruntime-web comes from a folder or ``.tgz`` the caller names, or else from the npm registry once, checked
against a pinned SHA-256 and cached in ``$STYLEGAN_CACHE/onnxruntime-web-<version>``.
"""
from __future__ import annotations

import gzip
import hashlib
import io
import json
import math
import shutil
import tarfile
import urllib.request
import zlib
from importlib import resources
from pathlib import Path

import numpy as np
import torch

ORT_WEB_VERSION = "1.30.0"
ORT_WEB_URL = f"https://registry.npmjs.org/onnxruntime-web/-/onnxruntime-web-{ORT_WEB_VERSION}.tgz"
ORT_WEB_SHA256 = "d2228df7e4616bc3348bf504ee888f3bec43789a273f0a63f3e68d203ce3bf71"
#: The files of the npm package's ``dist/`` that the page loads: the API (WebAssembly back end only), the
#: module that instantiates the WebAssembly, and the WebAssembly itself.
ORT_WEB_FILES = ("ort.wasm.min.js", "ort-wasm-simd-threaded.mjs", "ort-wasm-simd-threaded.wasm")
ORT_WEB_MAX_FILE = 64 * 2 ** 20
ORT_WEB_NOTICE = (f"onnxruntime-web {ORT_WEB_VERSION} (https://www.npmjs.com/package/onnxruntime-web), "
                  "Copyright (c) Microsoft Corporation, MIT License.\n")
SITE_FILES = ("index.html", "site.js", "site.css")


def cache_folder() -> Path:
    from stylegan.data.builtin import cache_root

    return cache_root() / f"onnxruntime-web-{ORT_WEB_VERSION}"


def _complete(folder: Path) -> bool:
    return all((folder / f).is_file() for f in ORT_WEB_FILES)


def _extract(tgz: bytes, dest: Path) -> None:
    """The :data:`ORT_WEB_FILES` from an npm package archive, by name; no other member is read or written."""
    wanted = {f"package/dist/{f}": f for f in ORT_WEB_FILES}
    found: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(tgz), mode="r:gz") as tar:
            for member in tar:
                if member.name in wanted and member.isfile() and member.size <= ORT_WEB_MAX_FILE:
                    found[wanted[member.name]] = tar.extractfile(member).read()
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:  # an empty, truncated or other file
        raise ValueError(f"not onnxruntime-web's npm package (.tgz): {e or type(e).__name__}") from None
    missing = [f for f in ORT_WEB_FILES if f not in found]
    if missing:
        raise ValueError(f"the onnxruntime-web archive lacks {', '.join(missing)} (is it version {ORT_WEB_VERSION}?)")
    dest.mkdir(parents=True, exist_ok=True)
    for name, data in found.items():
        tmp = dest / (name + ".part")
        tmp.write_bytes(data)
        tmp.replace(dest / name)


def onnxruntime_web(source: str | Path | None = None, download: bool = True) -> Path:
    """A folder holding :data:`ORT_WEB_FILES`. ``source``: such a folder, the package folder (with ``dist/``) or
    the package's ``.tgz``; without it, the cache, filled from the npm registry when ``download``. A ``.tgz``
    other than the pinned release (its SHA-256) is unpacked beside the cache, never into it."""
    if source is not None:
        source = Path(source)
        if source.is_file():  # the pinned archive fills the cache as the download would; any other a folder of its own
            data = source.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            dest = cache_folder() if digest == ORT_WEB_SHA256 else cache_folder().with_name(
                f"onnxruntime-web-sha256-{digest[:16]}")
            try:
                _extract(data, dest)
            except ValueError as e:
                raise ValueError(f"{source}: {e}") from None
            return dest
        for folder in (source, source / "dist", source / "package" / "dist"):
            if _complete(folder):
                return folder
        raise ValueError(f"{source}: not onnxruntime-web's package, its dist/ folder or its .tgz "
                         f"(needs {', '.join(ORT_WEB_FILES)})")
    dest = cache_folder()
    if _complete(dest):
        return dest
    if not download:
        raise ValueError(f"onnxruntime-web {ORT_WEB_VERSION} is not in {dest}")
    try:
        with urllib.request.urlopen(ORT_WEB_URL, timeout=120) as r:
            data = r.read(200 * 2 ** 20)
    except OSError as e:
        raise ValueError(f"cannot download onnxruntime-web from {ORT_WEB_URL} ({e}); download its .tgz "
                         "elsewhere (npm pack onnxruntime-web@" + ORT_WEB_VERSION + ") and give it with --ort-web") from None
    digest = hashlib.sha256(data).hexdigest()
    if digest != ORT_WEB_SHA256:
        raise ValueError(f"{ORT_WEB_URL}: SHA-256 {digest} is not the pinned {ORT_WEB_SHA256}; nothing was written")
    _extract(data, dest)
    return dest


def _mulberry32(seed: int):
    """The page's uniform generator (mulberry32), bit for bit: uniforms in [0, 1)."""
    mask = 0xFFFFFFFF
    a = seed & mask
    while True:
        a = (a + 0x6D2B79F5) & mask
        t = ((a ^ (a >> 15)) * (1 | a)) & mask
        t = ((t + (((t ^ (t >> 7)) * (61 | t)) & mask)) & mask) ^ t
        yield ((t ^ (t >> 14)) & mask) / 4294967296.0


def site_normals(seed: int, n: int) -> np.ndarray:
    """The ``n`` standard normal numbers the page draws for ``seed`` (Box–Muller on mulberry32, in float64, then
    rounded to float32): z first, then the noise images."""
    u = _mulberry32(seed)
    out = np.empty(n, dtype=np.float64)
    for i in range(0, n, 2):
        u1, u2 = next(u), next(u)
        radius = math.sqrt(-2.0 * math.log(1.0 - u1))
        out[i] = radius * math.cos(2.0 * math.pi * u2)
        if i + 1 < n:
            out[i + 1] = radius * math.sin(2.0 * math.pi * u2)
    return out.astype(np.float32)


def site_inputs(G, seed: int, psi: float, noise: str = "const", class_index: int | None = None,
                translate: tuple[float, float] = (0.0, 0.0), rotate: float = 0.0) -> dict:
    """The ONNX inputs the page builds for one seed (a test's reference for the browser's image); a StyleGAN3
    network's moved by ``translate`` (image widths) and ``rotate`` (degrees)."""
    from stylegan.networks.stylegan3 import has_input_transform, input_transform
    from stylegan.tools.export import noise_layout

    layout = noise_layout(G)
    size = sum(h * w for _, (h, w) in layout)
    values = site_normals(seed, G.z_dim + size)
    x = {"z": values[None, :G.z_dim], "psi": np.array(psi, dtype=np.float32)}
    if G.c_dim:
        c = np.zeros((1, G.c_dim), dtype=np.float32)
        c[0, class_index or 0] = 1.0
        x["c"] = c
    if has_input_transform(G):
        x["transform"] = input_transform(translate, rotate).numpy()
    if not size:
        return x
    if noise == "random":
        x["noise"] = values[None, G.z_dim:]
    elif noise == "const":
        x["noise"] = const_noise(G)[None]
    else:
        x["noise"] = np.zeros((1, size), dtype=np.float32)
    return x


def const_noise(G) -> np.ndarray:
    """The generator's stored noise images, flattened in the order of the ``noise`` input."""
    from stylegan.tools.export import noise_layout

    buffers = dict(G.synthesis.named_buffers())
    parts = []
    for name, (h, w) in noise_layout(G):
        block, conv = name.split(".")
        buf = buffers.get(f"blocks.{block}.{conv}.noise.const")
        if buf is None:
            raise ValueError(f"no stored noise image for layer {name}")
        parts.append(buf.detach().to(torch.float32).reshape(h * w).numpy())
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


def site_meta(G, title: str, card: str | None, default_psi: float, class_names: list[str] | None) -> dict:
    from stylegan.networks.stylegan3 import has_input_transform
    from stylegan.tools.export import noise_layout

    layout = noise_layout(G)
    return {"title": title, "card": card or "", "z_dim": int(G.z_dim), "c_dim": int(G.c_dim),
            "class_names": class_names or [str(i) for i in range(G.c_dim)],
            "channels": int(G.img_channels), "height": int(G.img_shape[0]), "width": int(G.img_shape[1]),
            "noise_size": sum(h * w for _, (h, w) in layout), "noise_layers": [[n, h, w] for n, (h, w) in layout],
            "psi": float(default_psi), "movable": has_input_transform(G), "onnxruntime_web": ORT_WEB_VERSION}


def write_static_site(G, outdir: str | Path, *, title: str, card: str | None = None, default_psi: float = 0.7,
                      class_names: list[str] | None = None, ort_web: str | Path | None = None) -> dict:
    """Write the site into ``outdir`` (which the caller has checked may be written). Returns a summary:
    the folder, its size in bytes and the ONNX check (largest relative difference from PyTorch)."""
    from stylegan.tools.export import check_onnx, export_onnx

    meta = site_meta(G, title, card, default_psi, class_names)  # refuses what it cannot describe, first
    ort_dir = onnxruntime_web(ort_web)
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    G = G.cpu().eval()
    noise_mode = "random" if meta["noise_size"] else "none"  # no noise input for a network without noise
    export_onnx(G, out / "model.onnx", noise_mode=noise_mode, movable=meta["movable"])
    err = check_onnx(G, out / "model.onnx", noise_mode=noise_mode, movable=meta["movable"])
    (out / "model.json").write_text(json.dumps(meta, indent=1), encoding="utf-8")
    const_noise(G).astype("<f4").tofile(out / "const-noise.bin")
    site = resources.files("stylegan.serve") / "site"
    for name in SITE_FILES:
        (out / name).write_bytes((site / name).read_bytes())
    (out / "ort").mkdir(exist_ok=True)
    for name in ORT_WEB_FILES:
        shutil.copyfile(ort_dir / name, out / "ort" / name)
    (out / "ort" / "NOTICE.txt").write_text(ORT_WEB_NOTICE, encoding="utf-8")
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    return {"outdir": out, "bytes": size, "onnx_error": err}
