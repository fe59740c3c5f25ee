"""Class coverage of a digit generator, as stacked-MNIST evaluations of mode collapse measure it.

The shipped digit classifier (:mod:`stylegan.metrics.digits`) reads N generated images. Reported:

- ``classes_covered``: how many of the 10 classes it assigns at least one image to;
- ``class_kl``: KL(p ‖ uniform) of the predicted class histogram p, in nats (0 for a perfectly even spread,
  log 10 = 2.30 when every image is one class);
- ``confident``: the share of images the classifier reads with probability ≥ 0.9 (real held-out digits: 0.96).
  Collapsed or noisy generators can still spread over many classes, because a classifier has no "not a digit"
  answer; a low share of confident readings is what gives them away;
- ``within_class_std``: per-pixel standard deviation of the images within each predicted class (pixels in
  [−1, 1], the generators' range), averaged over pixels and over the classes with at least two images; real
  mnist5k digits give 0.23;
- for a conditional generator, asked for each class in turn: ``class_accuracy`` (how often the classifier reads
  the requested class), ``min_class_accuracy`` and the per-class accuracies.

Formulas: docs/design.md §4.6.
"""
from __future__ import annotations

import math

import numpy as np
import torch

from stylegan.metrics.digits import NUM_CLASSES, load_classifier, to_classifier_input


def class_histogram(pred: np.ndarray | torch.Tensor, num_classes: int = NUM_CLASSES) -> np.ndarray:
    pred = np.asarray(pred, dtype=np.int64).reshape(-1)
    return np.bincount(pred, minlength=num_classes)[:num_classes]


def kl_from_uniform(hist: np.ndarray) -> float:
    """KL(p ‖ uniform) in nats of the distribution given by counts ``hist``."""
    p = np.asarray(hist, dtype=np.float64)
    p = p / p.sum()
    nz = p > 0
    return float((p[nz] * np.log(p[nz] * len(p))).sum())


def within_class_std(images: torch.Tensor, pred: torch.Tensor) -> float:
    """Mean over classes (with ≥ 2 images) of the per-pixel std within the class (images in [−1, 1])."""
    x = images.float()
    stds = [x[pred == k].std(dim=0).mean().item() for k in pred.unique().tolist() if int((pred == k).sum()) >= 2]
    return float(np.mean(stds)) if stds else 0.0


CONFIDENT = 0.9


def coverage_from_predictions(pred, images: torch.Tensor | None = None, requested=None, probs=None) -> dict:
    """The coverage figures from classifier predictions (and the images, for the within-class spread; the
    predicted class's probabilities, for the share of confident readings)."""
    pred_t = torch.as_tensor(np.asarray(pred), dtype=torch.long)
    hist = class_histogram(pred_t.numpy())
    out = {"classes_covered": int((hist > 0).sum()), "class_kl": kl_from_uniform(hist),
           "class_histogram": hist.tolist()}
    if probs is not None:
        out["confident"] = float((torch.as_tensor(np.asarray(probs)) >= CONFIDENT).float().mean())
    if images is not None:
        out["within_class_std"] = within_class_std(images, pred_t)
    if requested is not None:
        req = torch.as_tensor(np.asarray(requested), dtype=torch.long)
        per = [float((pred_t[req == k] == k).float().mean()) if bool((req == k).any()) else math.nan
               for k in range(NUM_CLASSES)]
        out["class_accuracy"] = float((pred_t == req).float().mean())
        out["min_class_accuracy"] = float(np.nanmin(per))
        out["per_class_accuracy"] = per
    return out


@torch.no_grad()
def class_coverage(G, num: int = 1000, batch_size: int = 100, seed: int = 0, truncation_psi: float = 1.0,
                   noise_mode: str = "random", classifier=None, progress: bool = False) -> dict:
    """Generate ``num`` images and report their class coverage (see the module docstring). A conditional
    generator (10 classes) is asked for each class equally often, in turn."""
    from tqdm import tqdm

    from stylegan.metrics.stats import _generator_device

    device = _generator_device(G)
    net = classifier if classifier is not None else load_classifier(device=device)
    c_dim = getattr(G, "c_dim", 0)
    if c_dim not in (0, NUM_CLASSES):
        raise ValueError(f"class coverage reads digits: the generator has {c_dim} classes, not 0 or {NUM_CLASSES}")
    gen = torch.Generator().manual_seed(seed)
    preds, images, requested, probs = [], [], [], []
    with torch.random.fork_rng(devices=[]):  # random noise inputs from a seeded stream; the caller's RNG untouched
        torch.manual_seed(seed)
        for i in tqdm(range(0, num, batch_size), desc="coverage", disable=not progress):
            _coverage_batch(G, net, gen, i, min(batch_size, num - i), c_dim, device, truncation_psi, noise_mode,
                            preds, images, requested, probs)
    return {**coverage_from_predictions(torch.cat(preds), torch.cat(images),
                                        torch.cat(requested) if requested else None, torch.cat(probs)),
            "num_gen": num, "classifier_held_out_accuracy": getattr(net, "held_out_accuracy", None)}


def _coverage_batch(G, net, gen, i, n, c_dim, device, truncation_psi, noise_mode, preds, images, requested, probs):
    """Images i..i+n: conditional generators are asked for class i mod 10, in turn."""
    z = torch.randn(n, G.z_dim, generator=gen).to(device)
    c = None
    if c_dim:
        req = torch.arange(i, i + n) % NUM_CLASSES
        requested.append(req)
        c = torch.nn.functional.one_hot(req, NUM_CLASSES).float().to(device)
    img = G(z, c, truncation_psi=truncation_psi, noise_mode=noise_mode).float()
    p = net(img.to(next(net.parameters()).device)).softmax(dim=1).cpu()
    top, cls = p.max(dim=1)
    preds.append(cls)
    probs.append(top)
    images.append(to_classifier_input(img.cpu()))
