"""Latent directions in W and editing along them.

- **SeFa** (Shen & Zhou 2021, closed-form factorization): the style affine layers map w to each layer's styles,
  s = A·w + b. Directions that change the styles most are the top eigenvectors of AᵀA, with A the weights of the
  chosen layers stacked (each row normalized to unit length). No sampling: a property of the weights.
- **GANSpace** (Härkönen et al. 2020): principal components of w = mapping(z) over many samples; each comes with
  the standard deviation of w along it, so that edits can be measured in σ.
- **Labels** (InterFaceGAN, Shen et al. 2020): the normal of a linear SVM in W that separates samples with a label
  from those without, fitted on half of the samples and scored on the other half (its held-out accuracy is kept
  with the direction). The label is the requested class of a conditional network, or for an unconditional digit
  generator the class the package's digit classifier reads in the image.

An edit moves w by ``strength · σ_k · n_k`` on the chosen style layers (all by default) and renders the result;
strength 0 gives the original image exactly. Directions are saved as ``.npz`` (plain arrays, read without
pickle): ``directions`` [K, w_dim], ``sigma`` [K], ``method``, ``layers``.

Formulas: docs/design.md §5.2.
"""
from __future__ import annotations

import math
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from stylegan.tools.generate import class_labels, z_from_seed

METHODS = ("sefa", "ganspace", "labels")


@dataclass
class Directions:
    """Unit directions in W [K, w_dim], largest first; ``sigma``: the spread of w along each (1 for SeFa, whose
    directions come from the weights alone); ``layers``: the style layers they were computed for (None: all)."""

    directions: np.ndarray
    sigma: np.ndarray
    method: str
    layers: list[int] | None = None
    accuracy: float | None = None  # labels: the boundary's accuracy on held-out samples

    def save(self, path: str | os.PathLike) -> Path:
        from stylegan.files import atomic_write_npz

        return atomic_write_npz(path, directions=self.directions.astype(np.float32),
                                sigma=self.sigma.astype(np.float32), method=np.array(self.method),
                                layers=np.array(self.layers if self.layers is not None else [], np.int64),
                                accuracy=np.array(np.nan if self.accuracy is None else self.accuracy, np.float64))

    @classmethod
    def load(cls, path: str | os.PathLike) -> "Directions":
        """Read a directions file (plain arrays only: a pickled object in it is refused)."""
        try:
            with np.load(path, allow_pickle=False) as f:
                d = f["directions"].astype(np.float32)
                sigma = f["sigma"].astype(np.float32)
                method = str(f["method"])
                layers = [int(v) for v in f["layers"]]
                accuracy = float(f["accuracy"]) if "accuracy" in f.files else float("nan")
        except (OSError, KeyError, ValueError, TypeError, AttributeError, EOFError, zipfile.BadZipFile) as e:
            # a .npy, an empty or truncated file, or any other file too
            raise ValueError(f"{path}: not a directions file ({str(e)[:80] or type(e).__name__})") from None
        if d.ndim != 2 or sigma.shape != (d.shape[0],):
            raise ValueError(f"{path}: directions must be [K, w_dim] with one sigma each")
        if not (np.isfinite(d).all() and np.isfinite(sigma).all()):
            raise ValueError(f"{path}: directions and sigma must be finite")
        return cls(d, sigma, method, layers or None, None if math.isnan(accuracy) else accuracy)


def style_layers(G) -> list[tuple[int, torch.nn.Module]]:
    """(ws index, affine layer) of every style layer, coarse to fine: a StyleGAN3 synthesis network's own list
    (``style_affines``); of a StyleGAN2 one, a block's convolutions take consecutive ws, its toRGB shares the
    next block's first."""
    if hasattr(G.synthesis, "style_affines"):
        return G.synthesis.style_affines()
    if not hasattr(G.synthesis, "block_ws"):
        raise ValueError("SeFa needs a StyleGAN2 or StyleGAN3 synthesis network (modulated convolutions); this "
                         "network has none: use ganspace")
    out, idx = [], 0
    for block in G.synthesis.blocks.values():
        convs = [m for m in (block.conv0, block.conv1) if m is not None]
        for i, conv in enumerate(convs):
            out.append((idx + i, conv.affine))
        if block.torgb is not None:
            out.append((idx + len(convs), block.torgb.affine))
        idx += len(convs)
    return out


def sefa(G, num: int = 10, layers: Sequence[int] | None = None) -> Directions:
    """The top ``num`` eigenvectors of AᵀA, A the stacked (row-normalized) affine weights of ``layers`` (ws
    indices; all when None)."""
    if layers is not None and not all(0 <= i < G.num_ws for i in layers):  # as move_ws, which would refuse the file
        raise ValueError(f"layers must be in [0, {G.num_ws}), got {list(layers)}")
    chosen = [aff for i, aff in style_layers(G) if layers is None or i in set(layers)]
    if not chosen:
        raise ValueError(f"no style layer among {list(layers or [])}; this network has ws 0..{G.num_ws - 1}")
    A = torch.cat([aff.weight.detach().cpu().double() for aff in chosen])  # [sum of channels, w_dim]
    A = A / A.norm(dim=1, keepdim=True).clamp_min(1e-12)
    eigvals, eigvecs = torch.linalg.eigh(A.T @ A)  # ascending
    order = torch.argsort(eigvals, descending=True)[:num]
    d = eigvecs[:, order].T.float().numpy()
    return Directions(d, np.ones(len(d), np.float32), "sefa", list(layers) if layers is not None else None)


@torch.no_grad()
def ganspace(G, num: int = 10, samples: int = 10_000, seed: int = 0, batch: int = 1000) -> Directions:
    """Principal components of w = mapping(z) over ``samples`` latents (random classes for a conditional G)."""
    device = next(G.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    ws = []
    for i in range(0, samples, batch):
        n = min(batch, samples - i)
        z = torch.randn(n, G.z_dim, generator=gen).to(device)
        c = None
        if G.c_dim:
            c = torch.eye(G.c_dim)[torch.randint(G.c_dim, (n,), generator=gen)].to(device)
        ws.append(G.mapping(z, c)[:, 0].cpu().double())  # float64 on the CPU (MPS has none)
    w = torch.cat(ws)
    w = w - w.mean(dim=0)
    eigvals, eigvecs = torch.linalg.eigh(w.T @ w / max(len(w) - 1, 1))
    order = torch.argsort(eigvals, descending=True)[:num]
    d = eigvecs[:, order].T
    return Directions(d.float().numpy(), eigvals[order].clamp_min(0).sqrt().float().numpy(), "ganspace")


@torch.no_grad()
def label_direction(G, label: int, samples: int = 2000, seed: int = 0, classifier=None) -> Directions:
    """The unit normal of a linear SVM in W separating samples with ``label`` from the rest (see the module
    docstring), with σ the spread of w along it and the boundary's held-out accuracy."""
    from stylegan.metrics.separability import fit_linear_svm

    device = next(G.parameters()).device
    gen = torch.Generator().manual_seed(seed)
    ws, ys = [], []
    net = None
    if not G.c_dim:
        from stylegan.metrics.digits import NUM_CLASSES, load_classifier

        if classifier is None and getattr(G, "img_channels", 1) != 1:
            raise ValueError(f"labels on an unconditional network: the label is the digit classifier's reading, and "
                             f"this network draws {G.img_channels}-channel images, not digits; give a conditional "
                             "network or --method sefa/ganspace")
        net = classifier if classifier is not None else load_classifier(device=device)
        if not 0 <= label < NUM_CLASSES:
            raise ValueError(f"label must be a digit class in [0, {NUM_CLASSES}), got {label}")
    elif not 0 <= label < G.c_dim:
        raise ValueError(f"label must be a class in [0, {G.c_dim}), got {label}")
    for i in range(0, samples, 250):
        n = min(250, samples - i)
        z = torch.randn(n, G.z_dim, generator=gen).to(device)
        if G.c_dim:
            cls = torch.randint(G.c_dim, (n,), generator=gen)
            w = G.mapping(z, torch.eye(G.c_dim)[cls].to(device))
            ys.append(cls == label)
        else:
            w = G.mapping(z, None)
            img = G.synthesis(w, noise_mode="const")
            ys.append(net(img.float().to(next(net.parameters()).device)).argmax(dim=1).cpu() == label)
        ws.append(w[:, 0].cpu().double())
    w, y = torch.cat(ws).numpy(), torch.cat(ys).numpy()
    half = len(w) // 2
    if y[:half].all() or not y[:half].any() or y[half:].all() or not y[half:].any():
        raise ValueError(f"label {label} appears in {int(y.sum())} of {len(y)} samples: both halves need samples "
                         "with and without it")
    normal, b = fit_linear_svm(w[:half], y[:half])
    accuracy = float(((w[half:] @ normal + b > 0) == y[half:]).mean())
    d = normal / max(np.linalg.norm(normal), 1e-12)
    sigma = float((w @ d).std())
    return Directions(d[None].astype(np.float32), np.array([sigma], np.float32), "labels", None, accuracy)


def compute_directions(G, method: str, num: int = 10, layers: Sequence[int] | None = None,
                       samples: int = 10_000, seed: int = 0, label: int | None = None) -> Directions:
    if method == "sefa":
        return sefa(G, num, layers)
    if method == "ganspace":
        return ganspace(G, num, samples, seed)
    if method == "labels":
        if label is None:
            raise ValueError("the labels method needs the label (class) to separate")
        return label_direction(G, label, samples, seed)
    raise ValueError(f"unknown method {method!r}; expected one of {', '.join(METHODS)}")


@torch.no_grad()
def edit(G, seed: int, directions: Directions, index: int, strengths: Sequence[float],
         layers: Sequence[int] | None = None, truncation_psi: float = 1.0, class_idx: int | None = None,
         noise_mode: str = "const", truncation_class: bool = False) -> torch.Tensor:
    """Images [len(strengths), C, H, W] of ``seed`` moved by ``strength · σ · n`` along direction ``index`` on
    ``layers`` (ws indices; the directions' own layers, else all). A conditional network needs ``class_idx``;
    ``truncation_class`` truncates towards that class's own average w."""
    device = next(G.parameters()).device
    z = z_from_seed(seed, G.z_dim).to(device)
    ws = G.mapping(z, class_labels(G, class_idx, 1, device), truncation_psi=truncation_psi,
                   truncation_class=truncation_class)
    return edit_ws(G, ws, directions, index, strengths, layers, noise_mode)


@torch.no_grad()
def edit_ws(G, ws: torch.Tensor, directions: Directions, index: int, strengths: Sequence[float],
            layers: Sequence[int] | None = None, noise_mode: str = "const") -> torch.Tensor:
    """:func:`edit` of given ws [1, num_ws, w_dim], e.g. a projection of a real image (``projected_w.npz``)."""
    if not 0 <= index < len(directions.directions):
        raise ValueError(f"direction index must be in [0, {len(directions.directions)}), got {index}")
    device = next(G.parameters()).device
    ws = ws.to(device)
    out = []
    for s in strengths:
        amounts = [0.0] * len(directions.directions)
        amounts[index] = float(s)
        out.append(G.synthesis(move_ws(G, ws, directions, amounts, layers), noise_mode=noise_mode))
    return torch.cat(out)


def move_ws(G, ws: torch.Tensor, directions: Directions, amounts: Sequence[float],
            layers: Sequence[int] | None = None) -> torch.Tensor:
    """ws [N, num_ws, w_dim] moved by Σ_k amounts[k] · σ_k · n_k on ``layers`` (ws indices; the directions' own
    layers, else all). All amounts 0 (or none given): the original ws, bit for bit."""
    if len(amounts) > len(directions.directions):
        raise ValueError(f"{len(amounts)} amounts for {len(directions.directions)} directions")
    if directions.directions.shape[1] != G.w_dim:
        raise ValueError(f"the directions are {directions.directions.shape[1]}-dimensional, this network's w is "
                         f"{G.w_dim}-dimensional")
    layers = layers if layers is not None else directions.layers
    if layers is not None and not all(0 <= i < G.num_ws for i in layers):
        raise ValueError(f"layers must be in [0, {G.num_ws}), got {list(layers)}")
    if not any(amounts):
        return ws
    k = len(amounts)
    steps = torch.from_numpy(directions.directions[:k] * directions.sigma[:k, None]).to(ws.device, ws.dtype)
    step = torch.as_tensor([float(a) for a in amounts], dtype=ws.dtype, device=ws.device) @ steps  # [w_dim]
    mask = torch.zeros(G.num_ws, 1, device=ws.device, dtype=ws.dtype)
    mask[list(layers) if layers is not None else slice(None)] = 1
    return ws + mask * step


def parse_strengths(spec: str) -> list[float]:
    """``"-3:3:7"`` (start:stop:count, inclusive) or ``"-2,0,2"``."""
    try:
        if ":" in spec:
            a, b, n = spec.split(":")
            n = int(n)
            if not 1 <= n <= 100:
                raise ValueError
            values = [float(a) + (float(b) - float(a)) * i / max(n - 1, 1) for i in range(n)]
        else:
            values = [float(v) for v in spec.split(",") if v.strip()]
        if not values or len(values) > 100:
            raise ValueError
    except ValueError:
        values = None
    if values is None or not all(math.isfinite(v) and abs(v) <= 1000 for v in values):
        raise ValueError(f"strengths must be START:STOP:COUNT (COUNT 1-100) or a list such as -2,0,2, finite and "
                         f"within ±1000; got {spec!r}")
    return values
