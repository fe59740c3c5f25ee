"""Run the generator anywhere: export it as one ONNX graph, z (and the class) and ψ in, the image out.

The graph is the mapping network, the truncation w_avg + ψ·(w − w_avg) on every w (ψ is an input), and the
synthesis network with the noise inputs ``const`` (each layer's stored noise image: the same image as
``stylegan generate`` draws for a seed), ``none``, or ``random``: the noise images are then an input ``noise``
[N, Σ h·w] (standard normal values, each layer's h × w image in turn, coarse to fine; see
:func:`noise_layout`), so that the caller draws them. A StyleGAN3 network's graph may also take its Fourier
input's 3×3 matrix as an input ``transform`` (``movable``: the caller translates and rotates the image, see
:func:`stylegan.networks.stylegan3.input_transform`). The batch size is free. :func:`check_onnx` runs the file
with onnxruntime on random latents and returns the largest difference from PyTorch, relative to the largest
pixel value.
"""
from __future__ import annotations

import contextlib
import logging
import os
import warnings
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from stylegan.files import atomic_write_bytes

ONNX_NOISE_MODES = ("const", "none", "random")


class _Exported(torch.nn.Module):
    """The generator as the exported graph computes it (truncation written as tensor arithmetic, so that ψ can
    be an input)."""

    def __init__(self, G, noise_mode: str):
        super().__init__()
        self.G, self.noise_mode = G, noise_mode

    def forward(self, z: torch.Tensor, psi: torch.Tensor, c: torch.Tensor | None = None,
                noise: torch.Tensor | None = None, transform: torch.Tensor | None = None) -> torch.Tensor:
        ws = self.G.mapping(z, c)
        w_avg = self.G.mapping.w_avg
        ws = w_avg + psi * (ws - w_avg)
        if transform is not None:
            return self.G.synthesis(ws, noise_mode=self.noise_mode, transform=transform)
        if noise is None:
            return self.G.synthesis(ws, noise_mode=self.noise_mode)
        images, start = {}, 0
        for name, (h, w) in noise_layout(self.G):
            images[name] = noise[:, start:start + h * w].reshape(-1, 1, h, w)
            start += h * w
        return self.G.synthesis(ws, noise=images)


def noise_layout(G) -> list[tuple[str, tuple[int, int]]]:
    """The layers that take noise, coarse to fine, with the (height, width) of their noise images: the order of
    the ``noise`` input of a graph exported with random noise."""
    layers = getattr(G.synthesis, "noise_shapes", None)
    if layers is None:
        raise ValueError("this generator's synthesis network takes no explicit noise images; export it with "
                         "--noise const or none")
    return list(layers().items())


def _inputs(G, n: int, seed: int = 0, noise_mode: str = "const", movable: bool = False) -> dict[str, torch.Tensor]:
    from stylegan.networks.stylegan3 import input_transform

    gen = torch.Generator().manual_seed(seed)
    x = {"z": torch.randn(n, G.z_dim, generator=gen), "psi": torch.tensor(0.7)}
    if G.c_dim:
        x["c"] = torch.nn.functional.one_hot(torch.arange(n) % G.c_dim, G.c_dim).float()
    if noise_mode == "random":
        x["noise"] = torch.randn(n, sum(h * w for _, (h, w) in noise_layout(G)), generator=gen)
    if movable:
        x["transform"] = input_transform((0.125, -0.0625), 20.0 + seed)
    return x


def export_onnx(G, path: str | Path, noise_mode: str = "const", movable: bool = False) -> Path:
    """Write ``G`` (a generator with a mapping network, eval mode) as a self-contained ONNX file: inputs ``z``
    [N, z_dim], ``psi`` (a scalar), for conditional networks ``c`` [N, c_dim] (one-hot), with ``noise_mode``
    random ``noise`` [N, Σ h·w], and with ``movable`` (StyleGAN3 networks) ``transform`` [3, 3]; output ``img``
    [N, C, H, W] in [−1, 1]."""
    from stylegan.networks.stylegan3 import has_input_transform

    if noise_mode not in ONNX_NOISE_MODES:
        raise ValueError(f"noise mode must be one of {', '.join(ONNX_NOISE_MODES)} for export, got {noise_mode!r}")
    if getattr(G.mapping, "w_avg", None) is None:
        raise ValueError("this generator has no mapping network (ProGAN, StyleGAN A/B); export needs one")
    if noise_mode == "random" and not noise_layout(G):
        raise ValueError("this network has no noise inputs (StyleGAN3): export it with --noise const")
    if movable and not has_input_transform(G):
        raise ValueError("a transform input needs a StyleGAN3 (alias-free) network; this one has no Fourier input")
    if str(path).endswith(("/", os.sep)):
        raise ValueError(f"{path} names a folder: give the file to write (e.g. {Path(path) / 'model.onnx'})")
    path = Path(path)
    model = _Exported(G, noise_mode).eval()
    example = _inputs(G, 2, noise_mode=noise_mode, movable=movable)
    n = torch.export.Dim("n", min=1, max=4096)
    shapes = {"z": {0: n}, "psi": {}} | ({"c": {0: n}} if G.c_dim else {}) | (
        {"noise": {0: n}} if "noise" in example else {}) | ({"transform": {}} if movable else {})

    def write(tmp: str) -> None:
        with torch.no_grad(), quiet_exporter():
            torch.onnx.export(model, (), tmp, kwargs=example, input_names=list(example), output_names=["img"],
                              dynamo=True, dynamic_shapes=shapes, external_data=False, verbose=False)

    return atomic_write_bytes(path, write)  # an interrupted export never leaves half a file at ``path``


@contextlib.contextmanager
def quiet_exporter():
    """Silence what PyTorch's ONNX exporter says on its own (notes on torchvision operators, deprecation and
    dynamic-shape warnings), so that a command's own lines are all it prints."""
    logger = logging.getLogger("torch.onnx")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)


def export_and_check(G, path: str | Path, noise_mode: str = "const", progress: bool = False,
                     movable: bool = False) -> tuple[Path, float]:
    """:func:`export_onnx`, then :func:`check_onnx`, with a progress bar over the two stages; the file and its
    largest relative difference from PyTorch."""
    bar = tqdm(total=2, disable=not progress, bar_format="{desc} [{n_fmt}/{total_fmt} stages, {elapsed}]")
    try:
        bar.set_description_str("export: tracing the generator into one ONNX graph")
        path = export_onnx(G, path, noise_mode, movable)
        bar.update()
        bar.set_description_str("export: running it with onnxruntime")
        err = check_onnx(G, path, noise_mode=noise_mode, movable=movable)
        bar.update()
    finally:
        bar.close()
    return path, err


def check_onnx(G, path: str | Path, n: int = 3, noise_mode: str = "const", seed: int = 1,
               movable: bool = False) -> float:
    """Largest |ONNX − PyTorch| over the images of ``n`` random latents (onnxruntime, CPU; ``movable``: under a
    translation and rotation), relative to the largest |pixel|."""
    from stylegan.extras import require

    onnxruntime = require("onnxruntime")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = _inputs(G, n, seed, noise_mode, movable)
    with torch.no_grad():
        ref = _Exported(G, noise_mode).eval()(**x).numpy()
    out = session.run(["img"], {k: v.numpy() for k, v in x.items()})[0]
    return float(np.abs(out - ref).max() / max(np.abs(ref).max(), 1e-12))
