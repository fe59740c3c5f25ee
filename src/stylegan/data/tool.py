"""The dataset tool: turn a source of images into a prepared dataset (see :mod:`stylegan.data.dataset`).

Per image, in this order:

1. decode it (a file that does not decode is skipped and named, or aborts the run: ``on_error``);
2. apply the EXIF orientation, if any;
3. colour: images with transparency (RGBA, LA, palette with a transparent colour) are composited onto
   ``rgba_background``; grayscale stays 1 channel, or becomes RGB with ``channels=3``; colour becomes
   gray only with ``channels=1``. ``channels=None`` takes the first image's: 1 if it is grayscale, else 3
   (later grayscale images then become RGB; a colour image after grayscale ones is an error that asks
   for ``channels=3``); 16-bit grayscale is scaled to 8 bits;
4. geometry: a non-square image is an error unless ``transform`` says what to do: ``center-crop`` takes
   the largest centered square; ``center-crop-wide`` takes the largest centered 2:1 rectangle (the full
   width, height width/2, for images at most 2:1 wide), scales it to resolution × resolution/2 and pads it
   with black above and below to a square (the StyleGAN authors' handling of LSUN cars);
   With ``aspect`` (``"4:3"``, ``"2:1"``, ... see :data:`ASPECTS`) the images are not made square: the largest
   centered box of that width:height ratio is taken, for networks that make non-square images (the longer
   side is ``resolution``, e.g. 512×384 for 4:3);
5. resize to ``resolution`` with PIL's LANCZOS filter (no-op when the size already matches).

The output is written to a temporary folder or file beside ``dest`` and renamed into place at the end,
so a failed run leaves nothing behind.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import warnings
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps
from tqdm import tqdm

from stylegan.config import is_power_of_two
from stylegan.data.dataset import LABELS_FILE, check_label
from stylegan.data.sources import Source, SourceItem, open_source

TRANSFORMS = ("center-crop", "center-crop-wide")
#: Width:height ratios a network can make, with its lowest stage (base_h, base_w): the shorter side is 1/4,
#: 2/4 or 3/4 of the longer (see :func:`stylegan.config.stage_shape`).
ASPECTS = {"1:1": (4, 4), "4:3": (3, 4), "3:4": (4, 3), "2:1": (2, 4), "1:2": (4, 2), "4:1": (1, 4), "1:4": (4, 1)}
ON_ERROR = ("skip", "fail")
_GRAY_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16L", "I;16B", "I;16N", "F")


class DatasetError(ValueError):
    """A problem with the source, the destination or the options (not one unreadable file)."""


@dataclass
class ConvertSummary:
    dest: str
    written: int
    resolution: int
    channels: int
    label_dim: int                      # 0: no labels
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (name, reason)
    size: tuple[int, int] | None = None  # (width, height) when not square
    #: How many images of each source size ("WxH") were written, the output size included.
    source_sizes: dict[str, int] = field(default_factory=dict)

    def resize_note(self) -> str | None:
        """One line on what resizing changed: a warning when the source images had different sizes (they
        were all brought to one), a note when all had one other size; None when nothing was resized."""
        w, h = self.size or (self.resolution, self.resolution)
        out = f"{w}x{h}"
        resized = sum(n for size, n in self.source_sizes.items() if size != out)
        if not resized:
            return None
        if len(self.source_sizes) == 1:
            return f"note: resized all {resized} images from {next(iter(self.source_sizes))} to {out}"
        sizes = ", ".join(f"{size}: {n}" for size, n in sorted(self.source_sizes.items(),
                                                                key=lambda kv: [int(v) for v in kv[0].split("x")]))
        return (f"warning: the source images have {len(self.source_sizes)} different sizes ({sizes}); "
                f"{resized} of {self.written} were resized to {out}")

    def __str__(self) -> str:
        w, h = self.size or (self.resolution, self.resolution)
        lines = [f"wrote {self.written} images ({w}x{h}, {self.channels} channel"
                 f"{'s' if self.channels > 1 else ''}{', labels' if self.label_dim else ''}) to {self.dest}"]
        if self.resize_note():
            lines.append(self.resize_note())
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} unreadable file(s):")
            lines += [f"  {name}: {reason}" for name, reason in self.skipped]
        return "\n".join(lines)


# --- per-image processing ----------------------------------------------------------------------------


def _has_alpha(img: Image.Image) -> bool:
    return img.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (img.mode in ("P", "L", "RGB") and "transparency" in img.info)


def is_grayscale(img: Image.Image) -> bool:
    return img.mode in _GRAY_MODES


def to_channels(img: Image.Image, channels: int, background: tuple[int, int, int]) -> Image.Image:
    """A PIL image of any mode → mode ``L`` (channels=1) or ``RGB`` (channels=3)."""
    if img.mode.startswith("I;16"):
        img = Image.fromarray((np.asarray(img).astype(np.uint32) >> 8).astype(np.uint8), "L")
    elif img.mode in ("I", "F"):
        img = Image.fromarray(np.clip(np.asarray(img), 0, 255).astype(np.uint8), "L")
    if _has_alpha(img):
        rgba = img.convert("RGBA")
        canvas = Image.new("RGBA", rgba.size, tuple(background) + (255,))
        img = Image.alpha_composite(canvas, rgba).convert("RGB")
    if channels == 1:
        return img if img.mode == "L" else img.convert("L")
    return img if img.mode == "RGB" else img.convert("RGB")


def to_square(img: Image.Image, resolution: int, transform: str | None, name: str) -> Image.Image:
    """Crop/pad per ``transform`` and resize to ``resolution`` × ``resolution`` with LANCZOS."""
    w, h = img.size
    if transform is None:
        if w != h:
            raise DatasetError(f"{name}: image is not square ({w}x{h}); pass transform='center-crop' "
                               f"(--transform center-crop) or 'center-crop-wide'")
    elif transform == "center-crop":
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        img = img.crop((left, top, left + s, top + s))
    elif transform == "center-crop-wide":
        cw, ch = (w, w // 2) if h >= w // 2 else (2 * h, h)   # largest centered 2:1 box
        left, top = (w - cw) // 2, (h - ch) // 2
        img = img.crop((left, top, left + cw, top + ch))
        inner_h = resolution // 2
        if img.size != (resolution, inner_h):
            img = img.resize((resolution, inner_h), Image.Resampling.LANCZOS)
        canvas = Image.new(img.mode, (resolution, resolution), 0)
        canvas.paste(img, (0, (resolution - inner_h) // 2))
        return canvas
    else:
        raise DatasetError(f"unknown transform {transform!r}; choose from {', '.join(TRANSFORMS)}")
    if img.size != (resolution, resolution):
        img = img.resize((resolution, resolution), Image.Resampling.LANCZOS)
    return img


# --- writers -----------------------------------------------------------------------------------------


@contextlib.contextmanager
def _naming(dest: Path, name: str):
    """A failed write (a full disk) raised as an error naming the file of the dataset it was writing."""
    try:
        yield
    except OSError as e:
        raise OSError(e.errno, e.strerror or str(e), f"{dest}: {name}") from None


class _FolderWriter:
    def __init__(self, dest: Path):
        self.dest = dest
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}.tmp-", dir=dest.parent))

    def write(self, name: str, data: bytes) -> None:
        p = self.tmp / name
        with _naming(self.dest, name):
            p.parent.mkdir(parents=True, exist_ok=True)
            p.write_bytes(data)

    def commit(self) -> None:
        os.chmod(self.tmp, 0o777 & ~_umask())  # mkdtemp makes it private
        if self.dest.is_dir():
            self.dest.rmdir()  # checked empty before; rmdir refuses otherwise
        os.rename(self.tmp, self.dest)

    def abort(self) -> None:
        shutil.rmtree(self.tmp, ignore_errors=True)


class _ZipWriter:
    def __init__(self, dest: Path):
        self.dest = dest
        fd, tmp = tempfile.mkstemp(prefix=f".{dest.name}.tmp-", suffix=".zip", dir=dest.parent)
        os.close(fd)
        self.tmp = Path(tmp)
        self.zip = zipfile.ZipFile(self.tmp, "w", compression=zipfile.ZIP_STORED)  # PNGs are compressed already

    def write(self, name: str, data: bytes) -> None:
        with _naming(self.dest, name):
            self.zip.writestr(name, data)

    def commit(self) -> None:
        self.zip.close()
        os.chmod(self.tmp, 0o644 & ~_umask())
        if self.dest.exists():
            raise DatasetError(f"{self.dest} appeared while the dataset was being written")
        os.rename(self.tmp, self.dest)

    def abort(self) -> None:
        try:
            self.zip.close()
        finally:
            self.tmp.unlink(missing_ok=True)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _encode_png(img: Image.Image) -> bytes:
    import io

    buf = io.BytesIO()
    img.save(buf, format="PNG", compress_level=1)
    return buf.getvalue()


def check_dest(source: str | os.PathLike | None, dest: str | os.PathLike) -> Path:
    """Refuse a dest that is the source, lies inside it, or already exists (other than an empty folder)."""
    dest = Path(dest).expanduser()
    dest_abs = dest.resolve()
    if source is not None:
        src_abs = Path(source).expanduser().resolve()
        if dest_abs == src_abs:
            raise DatasetError(f"refusing to write the dataset over its source {source}")
        if src_abs.is_dir() and dest_abs.is_relative_to(src_abs):
            raise DatasetError(f"refusing to write the dataset into its source folder: {dest} is inside {source}")
    if dest.is_symlink() or dest.exists():
        if dest.is_dir() and not dest.is_symlink():
            if any(dest.iterdir()):
                raise DatasetError(f"destination {dest} exists and is not empty")
        else:
            raise DatasetError(f"destination {dest} already exists")
    return dest


def _parse_background(background: Any) -> tuple[int, int, int]:
    if isinstance(background, str):
        parts = background.split(",")
        try:
            background = tuple(int(p) for p in parts)
        except ValueError:
            raise DatasetError(f"background must be R,G,B with integers 0-255, got {background!r}") from None
    bg = tuple(background)
    if len(bg) == 1:
        bg = bg * 3
    if len(bg) != 3 or not all(isinstance(v, (int, np.integer)) and 0 <= v <= 255 for v in bg):
        raise DatasetError(f"background must be three integers 0-255 (R,G,B), got {background!r}")
    return tuple(int(v) for v in bg)


# --- the tool ----------------------------------------------------------------------------------------


def parse_size(text: str) -> tuple[int, str | None]:
    """``--resolution`` as the authors write it: ``N`` (N×N) or ``WxH`` → (the longer side, the aspect of
    :data:`ASPECTS` for a non-square size, else None). A size no network can make is a :class:`DatasetError`
    naming the sizes of that longer side that it can."""
    parts = str(text).lower().replace("×", "x").split("x")
    if len(parts) not in (1, 2) or not all(p.strip().isdigit() for p in parts):
        raise DatasetError(f"{text!r}: expected N or WxH, such as 64 or 64x48")
    w, h = (int(parts[0]), int(parts[-1]))
    res = max(w, h)
    if w == h:
        return res, None
    for aspect, (base_h, base_w) in ASPECTS.items():
        if (res * base_w // 4, res * base_h // 4) == (w, h):
            return res, aspect
    sizes = ", ".join(f"{res * bw // 4}x{res * bh // 4}" for a, (bh, bw) in ASPECTS.items() if a != "1:1")
    raise DatasetError(f"{w}x{h} is not a size a network can make; with the longer side {res}: {res}x{res}, "
                       f"{sizes}")


def to_aspect(img: Image.Image, resolution: int, aspect: str) -> Image.Image:
    """The largest centered box of ``aspect`` (width:height, a key of :data:`ASPECTS`), resized with LANCZOS
    so that its longer side is ``resolution``."""
    base_h, base_w = ASPECTS[aspect]
    w, h = img.size
    if w * base_h >= h * base_w:          # wider than the aspect: full height
        cw, ch = h * base_w // base_h, h
    else:
        cw, ch = w, w * base_h // base_w
    left, top = (w - cw) // 2, (h - ch) // 2
    img = img.crop((left, top, left + cw, top + ch))
    size = (resolution * base_w // 4, resolution * base_h // 4)
    return img if img.size == size else img.resize(size, Image.Resampling.LANCZOS)


def convert_dataset(source: str | os.PathLike | Source | Iterable[SourceItem], dest: str | os.PathLike,
                    resolution: int | None, transform: str | None = None, max_images: int | None = None,
                    channels: int | None = None, rgba_background: Any = (255, 255, 255),
                    on_error: str = "skip", progress: bool = True, aspect: str | None = None) -> ConvertSummary:
    """Write ``source`` as a prepared dataset at ``dest`` (a folder, or a zip if it ends in ``.zip``).

    ``source`` is a path (see :func:`stylegan.data.sources.open_source`) or a :class:`Source`.
    ``resolution``: the output size, a power of two ≥ 4; None keeps the size of the first image (which
    must then be square and a power of two). ``max_images`` caps how many images are written.
    ``channels``: 1, 3 or None (from the first image). ``rgba_background``: the colour (R,G,B, or a
    string "R,G,B") that transparent pixels are composited onto. ``on_error``: ``"skip"`` a file that
    cannot be decoded (warned about and listed in the summary), or ``"fail"`` with an error naming it.
    Labels come from the source (IDX, CIFAR, a prepared dataset's dataset.json) and are written to
    ``dataset.json``; images without a label give ``{"labels": null}``. ``aspect``: non-square output
    (see :func:`to_aspect`); needs ``resolution`` and no ``transform``.
    """
    if aspect is not None:
        if aspect not in ASPECTS:
            raise DatasetError(f"aspect must be one of {', '.join(ASPECTS)} (width:height), got {aspect!r}")
        if transform is not None:
            raise DatasetError("aspect crops to its own ratio: leave out transform (--transform)")
        if resolution is None:
            raise DatasetError("aspect needs a resolution (--resolution N: the longer side)")
    if resolution is not None and not is_power_of_two(resolution, 4):
        raise DatasetError(f"resolution must be a power of two of at least 4, got {resolution}")
    if transform not in (None,) + TRANSFORMS:
        raise DatasetError(f"unknown transform {transform!r}; choose from {', '.join(TRANSFORMS)}")
    if channels not in (None, 1, 3):
        raise DatasetError(f"channels must be 1 or 3 (or None: from the source), got {channels!r}")
    if on_error not in ON_ERROR:
        raise DatasetError(f"on_error must be 'skip' or 'fail', got {on_error!r}")
    if max_images is not None and max_images < 1:
        raise DatasetError(f"max_images must be at least 1, got {max_images}")
    background = _parse_background(rgba_background)

    source_path = None if isinstance(source, Source) or not isinstance(source, (str, os.PathLike)) else source
    dest = check_dest(source_path, dest)
    opened = False
    if source_path is not None:
        try:
            source = open_source(source_path)
        except (FileNotFoundError, ImportError):
            raise
        except (ValueError, OSError) as e:
            raise DatasetError(str(e)) from e
        opened = True
    total = source.length() if isinstance(source, Source) else None
    if total is not None and max_images is not None:
        total = min(total, max_images)

    dest.parent.mkdir(parents=True, exist_ok=True)
    writer = _ZipWriter(dest) if dest.suffix.lower() == ".zip" else _FolderWriter(dest)
    skipped: list[tuple[str, str]] = []
    labels: list[list[Any]] = []
    any_label = all_labels = None
    out_res, out_ch = resolution, channels
    auto_channels = channels is None
    written = 0
    source_sizes: dict[str, int] = {}
    try:
        with tqdm(total=total, unit="img", desc="dataset", disable=not progress) as bar:
            for item in source:
                if max_images is not None and written >= max_images:
                    break
                try:
                    img = item.load()
                    img = ImageOps.exif_transpose(img)
                except Exception as e:  # noqa: BLE001 - any decoding failure is "unreadable"
                    reason = f"{type(e).__name__}: {e}"
                    if on_error == "fail":
                        raise DatasetError(f"cannot read {item.name}: {reason}") from e
                    warnings.warn(f"skipping unreadable {item.name}: {reason}", stacklevel=2)
                    skipped.append((item.name, reason))
                    bar.set_postfix(skipped=len(skipped))
                    continue
                # grayscale with alpha stays grayscale only on a gray background
                gray = is_grayscale(img) and (not _has_alpha(img) or len(set(background)) == 1)
                if out_ch is None:
                    out_ch = 1 if gray else 3
                elif auto_channels and out_ch == 1 and not gray:
                    raise DatasetError(f"{item.name} is a colour image but the images before it are grayscale; "
                                       f"pass channels=3 (--channels 3) to make them all RGB, or channels=1")
                if out_res is None:
                    w, h = img.size
                    if transform is None and (w != h or not is_power_of_two(w, 4)):
                        raise DatasetError(f"{item.name} is {w}x{h}: pass a resolution (a power of two)")
                    out_res = w if transform is None else _pow2_floor(min(w, h))
                img = to_channels(img, out_ch, background)
                size = "{}x{}".format(*img.size)
                source_sizes[size] = source_sizes.get(size, 0) + 1
                img = (to_aspect(img, out_res, aspect) if aspect is not None
                       else to_square(img, out_res, transform, item.name))
                name = f"{written // 1000:05d}/img{written:08d}.png"
                writer.write(name, _encode_png(img))
                has = item.label is not None
                any_label = has if any_label is None else (any_label or has)
                all_labels = has if all_labels is None else (all_labels and has)
                labels.append([name, _json_label(item.label, item.name)])
                written += 1
                bar.update(1)
        if written == 0:
            raise DatasetError("no images were written" + (f" ({len(skipped)} unreadable)" if skipped else
                                                           ": the source has no images"))
        if any_label and not all_labels:
            missing = next(n for n, lab in labels if lab is None)
            raise DatasetError(f"the source labels some images but not all (none for the image written as {missing})")
        meta = {"labels": labels if all_labels else None}
        writer.write(LABELS_FILE, json.dumps(meta).encode())
        writer.commit()
    except BaseException:
        writer.abort()
        raise
    finally:
        if opened:
            source.close()
    label_dim = 0
    if all_labels:
        vals = [lab for _, lab in labels]
        label_dim = (max(vals) + 1) if all(isinstance(v, int) for v in vals) else len(vals[0])
    return ConvertSummary(dest=str(dest), written=written, resolution=out_res, channels=out_ch,
                          label_dim=label_dim, skipped=skipped, source_sizes=source_sizes,
                          size=None if aspect is None else (out_res * ASPECTS[aspect][1] // 4,
                                                            out_res * ASPECTS[aspect][0] // 4))


def _pow2_floor(n: int) -> int:
    return 1 << (max(n, 4).bit_length() - 1)


def _json_label(label: Any, name: str) -> Any:
    if label is None:
        return None
    try:
        return check_label(label)
    except ValueError as e:
        raise DatasetError(f"{name}: {e}") from None
