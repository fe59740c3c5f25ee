"""Converting network outputs to pictures: uint8 arrays, PIL images, grids."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch
from PIL import Image


def to_uint8(img: torch.Tensor) -> np.ndarray:
    """NCHW float in [−1, 1] → NHWC uint8 (values outside the range are clipped)."""
    if img.ndim != 4:
        raise ValueError(f"expected NCHW images, got shape {tuple(img.shape)}")
    x = (img.detach().to(torch.float32) * 127.5 + 128).clamp(0, 255).to(torch.uint8)
    return x.permute(0, 2, 3, 1).cpu().numpy()


def array_to_pil(arr: np.ndarray) -> Image.Image:
    """HWC uint8 (C = 1 or 3) → PIL image."""
    if arr.shape[-1] == 1:
        return Image.fromarray(arr[..., 0], "L")
    return Image.fromarray(arr, "RGB")


def to_pil(img: torch.Tensor) -> list[Image.Image]:
    """NCHW float in [−1, 1] → one PIL image per sample (grayscale for 1 channel)."""
    return [array_to_pil(a) for a in to_uint8(img)]


def make_grid(images: np.ndarray, cols: int | None = None, pad: int = 0, fill: int = 0) -> np.ndarray:
    """NHWC uint8 → one HWC grid, ``cols`` images per row (about square by default)."""
    n, h, w, c = images.shape
    cols = cols or max(1, int(np.ceil(np.sqrt(n))))
    rows = int(np.ceil(n / cols))
    grid = np.full((rows * h + (rows - 1) * pad, cols * w + (cols - 1) * pad, c), fill, dtype=np.uint8)
    for i in range(n):
        r, q = divmod(i, cols)
        grid[r * (h + pad):r * (h + pad) + h, q * (w + pad):q * (w + pad) + w] = images[i]
    return grid


def save_png(arr: np.ndarray, path: str | os.PathLike) -> Path:
    """Write an HWC uint8 array as PNG (parent folders created), atomically: a temporary file renamed once
    complete, so that a failed write (a full disk) leaves no partial file. Its error names ``path``."""
    from stylegan.files import atomic_write_bytes

    path = Path(path)
    try:
        return atomic_write_bytes(path, lambda tmp: array_to_pil(arr).save(tmp, format="PNG"))
    except OSError as e:
        if e.filename is not None and Path(e.filename).parent != path.parent:
            raise  # a folder that cannot be made: its error already names it
        raise OSError(e.errno, e.strerror or str(e), str(path)) from None
