"""Interpolation videos: a grid of cells, each looping through its own seeds, interpolating in W (lerp) or
in Z (slerp, then mapped), with truncation; for a StyleGAN3 network also turning and travelling through the
loop (its Fourier input's transform, :func:`camera`). MP4 through imageio-ffmpeg (which ships its own ffmpeg
binary), GIF through Pillow as a fallback."""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from stylegan.images import make_grid, to_uint8
from stylegan.tools.generate import class_labels, z_from_seed


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation of vectors along the last dimension (norm interpolated linearly)."""
    na, nb = a.norm(dim=-1, keepdim=True), b.norm(dim=-1, keepdim=True)
    ua, ub = a / na, b / nb
    omega = torch.acos((ua * ub).sum(-1, keepdim=True).clamp(-1 + 1e-7, 1 - 1e-7))
    so = torch.sin(omega)
    u = (torch.sin((1 - t) * omega) / so) * ua + (torch.sin(t * omega) / so) * ub
    return u * (na + t * (nb - na))


def keyframe_latents(seeds: Sequence[int], cells: int, z_dim: int) -> torch.Tensor:
    """[cells, keyframes, z_dim]: seeds dealt to the grid cells in order (len(seeds) divisible by cells)."""
    if len(seeds) % cells:
        raise ValueError(f"{len(seeds)} seeds cannot be split evenly over {cells} grid cells")
    z = torch.cat([z_from_seed(s, z_dim) for s in seeds])
    return z.reshape(len(seeds) // cells, cells, z_dim).transpose(0, 1)


def num_frames(num_seeds: int, cells: int, w_frames: int) -> int:
    """Frames of a loop: every keyframe of a cell is followed by ``w_frames`` frames towards the next."""
    return (num_seeds // cells) * w_frames


def camera(t: float, rotate_turns: float = 0.0, translate_circle: float = 0.0) -> tuple[tuple[float, float], float]:
    """(translate, rotate) of the image at ``t`` ∈ [0, 1) of a loop: ``rotate_turns`` whole turns
    counterclockwise, and once around a circle of radius ``translate_circle`` image widths that starts and ends
    at the image's own place: ``(r·sin 2πt, r·(1 − cos 2πt))`` (x right, y down). Whole turns loop seamlessly."""
    a = 2 * math.pi * t
    return (translate_circle * math.sin(a), translate_circle * (1 - math.cos(a))), 360.0 * rotate_turns * t


@torch.no_grad()
def interpolation_frames(
    G,
    seeds: Sequence[int],
    grid: tuple[int, int] = (1, 1),
    w_frames: int = 60,
    space: str = "w",
    truncation_psi: float = 1.0,
    noise_mode: str = "const",
    class_idx: int | None = None,
    progress: bool = False,
    rotate_turns: float = 0.0,
    translate_circle: float = 0.0,
) -> Iterator[np.ndarray]:
    """Yield HWC uint8 frames of a seamless loop (the frame after the last is the first). ``rotate_turns``,
    ``translate_circle``: the :func:`camera` path over the loop, for a StyleGAN3 network (a ValueError for
    others); its input transform is restored afterwards."""
    if space not in ("w", "z"):
        raise ValueError(f"space must be 'w' or 'z', got {space!r}")
    if w_frames < 1:
        raise ValueError("w_frames must be >= 1")
    if not (rotate_turns or translate_circle):
        yield from _frames(G, seeds, grid, w_frames, space, truncation_psi, noise_mode, class_idx, progress)
        return
    from stylegan.networks.stylegan3 import set_input_transform

    set_input_transform(G)  # refuses a network without a Fourier input, before any frame
    transform = G.synthesis.input.transform.clone()
    moves = lambda t: set_input_transform(G, *camera(t, rotate_turns, translate_circle))  # noqa: E731
    try:
        yield from _frames(G, seeds, grid, w_frames, space, truncation_psi, noise_mode, class_idx, progress, moves)
    finally:
        G.synthesis.input.transform.copy_(transform)


def _frames(G, seeds, grid, w_frames, space, truncation_psi, noise_mode, class_idx, progress,
            moves=None) -> Iterator[np.ndarray]:
    """The frames of :func:`interpolation_frames`; ``moves(t)`` sets the camera of loop time ``t`` first."""
    cols, rows = grid
    cells = cols * rows
    device = next(G.parameters()).device
    zk = keyframe_latents(seeds, cells, G.z_dim).to(device)  # [cells, K, z]
    k = zk.shape[1]
    c = class_labels(G, class_idx, cells, device)
    wk = None
    if space == "w":
        wk = torch.stack([G.mapping(zk[:, i], c, truncation_psi=truncation_psi) for i in range(k)], dim=1)
    total = k * w_frames
    frames = range(total)
    if progress:
        frames = tqdm(frames, desc="video", unit="frame")
    for f in frames:
        if moves is not None:
            moves(f / total)
        i, t = divmod(f, w_frames)
        t /= w_frames
        j = (i + 1) % k
        if space == "w":
            ws = wk[:, i].lerp(wk[:, j], t)
        else:
            ws = G.mapping(slerp(zk[:, i], zk[:, j], t), c, truncation_psi=truncation_psi)
        img = to_uint8(G.synthesis(ws, noise_mode=noise_mode))
        frame = make_grid(img, cols=cols)
        yield np.repeat(frame, 3, axis=2) if frame.shape[2] == 1 else frame


def scale_frames(frames: Iterable[np.ndarray], scale: int) -> Iterator[np.ndarray]:
    """Frames enlarged ``scale`` times by nearest neighbour (each pixel a ``scale`` × ``scale`` block)."""
    if scale < 1:
        raise ValueError(f"scale must be a whole number >= 1, got {scale}")
    for f in frames:
        yield f if scale == 1 else np.repeat(np.repeat(f, scale, axis=0), scale, axis=1)


def write_video(frames: Iterable[np.ndarray], output: str | os.PathLike, fps: int = 30) -> Path:
    """Write frames to ``.mp4`` (H.264 via imageio-ffmpeg) or ``.gif`` (Pillow), atomically: into a temporary
    file renamed once complete, so that a failed write leaves no partial video."""
    from stylegan.files import atomic_write_bytes

    output = Path(output)
    suffix = output.suffix.lower()
    if suffix not in (".gif", ".mp4"):
        raise ValueError(f"unsupported video format {suffix!r}: use .mp4 or .gif")
    write = _write_gif if suffix == ".gif" else _write_mp4
    return atomic_write_bytes(output, lambda tmp: write(frames, tmp, fps))


def _write_gif(frames: Iterable[np.ndarray], path: str, fps: int) -> None:
    images = [Image.fromarray(f) for f in frames]
    if not images:
        raise ValueError("no frames")
    images[0].save(path, format="GIF", save_all=True, append_images=images[1:], duration=round(1000 / fps), loop=0)


def _write_mp4(frames: Iterable[np.ndarray], path: str, fps: int) -> None:
    from stylegan.extras import MissingExtra, require

    try:
        imageio_ffmpeg = require("imageio_ffmpeg")
    except MissingExtra as e:
        raise MissingExtra(f"{e}; or write a .gif") from None
    writer = None
    try:
        for f in frames:
            if writer is None:
                h, w = f.shape[:2]
                writer = imageio_ffmpeg.write_frames(path, (w, h), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                                                     quality=8, macro_block_size=1, output_params=["-f", "mp4"])
                writer.send(None)
            writer.send(np.ascontiguousarray(f))
    finally:
        if writer is not None:
            writer.close()
    if writer is None:
        raise ValueError("no frames")
