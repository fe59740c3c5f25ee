"""Linear separability (StyleGAN §4.2).

Generate images from random z, label each with binary attribute classifiers, keep the most confident half
per attribute, fit a linear SVM from the latent (z, or w) to each label on half of them, and measure how well
the SVM's side of the hyperplane predicts the label of the other half by the conditional entropy H(Y | X)
(Y the classifier's label, X the SVM's prediction, natural logarithm). The score is exp(Σ_attributes H(Y | X)): 1 when every attribute is
linearly separable in that space, larger when not (a useless latent gives about 2 per balanced attribute).

Labels come from one of two places (the result says which):

- ``classifiers``: callables mapping images in [−1, 1] (NCHW, 3 channels, box-downsampled to at most 256²) to
  one logit per image (N,) or (N, 1), or two-class logits (N, 2). The authors used 40 CelebA-HQ attribute
  networks, which are not available here; users supply their own (e.g. TorchScript files).
- a conditional generator's own class labels (``source="labels"``): c is drawn at random, attribute k is
  "c is class k", and every sample is kept (the labels are exact, so there is no confidence to rank by).
  This says how linearly the class is encoded in w; z carries no class information, so ``ls_z`` is about
  2^(number of classes) there by construction.

The SVM is a linear L2-regularized squared-hinge classifier (the LinearSVC default, C = 1) fitted with L-BFGS.

Formulas: docs/design.md §4.5.
"""
from __future__ import annotations

import numpy as np
import torch
from tqdm import tqdm

from stylegan.metrics.features import to_rgb
from stylegan.metrics.ppl import downsample_to_256
from stylegan.metrics.stats import _generator_device


def fit_linear_svm(x: np.ndarray, y: np.ndarray, c: float = 1.0, max_iter: int = 200) -> tuple[np.ndarray, float]:
    """Minimize ½‖w‖² + C Σ max(0, 1 − yᵢ(wᵀxᵢ + b))² (yᵢ ∈ {−1, +1}); returns (w, b)."""
    xt = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))
    yt = torch.from_numpy(np.where(np.asarray(y) > 0, 1.0, -1.0))
    n, d = xt.shape
    w = torch.zeros(d, dtype=torch.float64, requires_grad=True)
    b = torch.zeros((), dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([w, b], lr=1, max_iter=max_iter, tolerance_grad=1e-9, tolerance_change=1e-12,
                            history_size=20, line_search_fn="strong_wolfe")
    scale = 1.0 / (c * n)  # the objective divided by C·n: same minimizer, better conditioned

    def closure():
        opt.zero_grad()
        margin = (1 - yt * (xt @ w + b)).clamp(min=0)
        loss = 0.5 * scale * w.square().sum() + margin.square().mean()
        loss.backward()
        return loss

    with torch.enable_grad():
        opt.step(closure)
    return w.detach().numpy(), float(b.detach())


def conditional_entropy(y: np.ndarray, x: np.ndarray) -> float:
    """H(Y | X) in nats for binary arrays (empirical joint distribution)."""
    y = np.asarray(y).astype(bool)
    x = np.asarray(x).astype(bool)
    n = len(y)
    h = 0.0
    for xv in (False, True):
        sel = x == xv
        nx = sel.sum()
        if nx == 0:
            continue
        for yv in (False, True):
            nxy = np.logical_and(sel, y == yv).sum()
            if nxy > 0:
                h -= nxy / n * np.log(nxy / nx)
    return float(h)


def separability_from_labels(latents: dict[str, np.ndarray], probs: np.ndarray, num_keep: int | None = None
                             ) -> dict[str, object]:
    """Scores from latents ({"z": (N, d), "w": (N, d)}) and attribute probabilities (N, A) in [0, 1]: per
    attribute the ``num_keep`` most confident samples are kept (all when None), half of them to fit the SVM and
    half to score it."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim == 1:
        probs = probs[:, None]
    out: dict[str, object] = {}
    for space, lat in latents.items():
        entropies = []
        for a in range(probs.shape[1]):
            p = probs[:, a]
            keep = np.arange(len(p)) if num_keep is None else np.argsort(-np.abs(p - 0.5), kind="stable")[:num_keep]
            # Fitted on half of the kept samples, scored on the other half: scored on the samples it was fitted
            # to, a hyperplane in 512 dimensions separates 1,000 points perfectly whatever their labels.
            keep = np.random.default_rng(a).permutation(keep)
            fit, held = keep[: len(keep) // 2], keep[len(keep) // 2:]
            y_fit, y = p[fit] > 0.5, p[held] > 0.5
            if y.all() or not y.any():
                entropies.append(0.0)  # one class only: the label is known, nothing to separate
                continue
            if y_fit.all() or not y_fit.any():
                pred = np.full(len(held), bool(y_fit[0]) if len(y_fit) else False)
            else:
                w, b = fit_linear_svm(lat[fit], y_fit)
                pred = lat[held] @ w + b > 0
            entropies.append(conditional_entropy(y, pred))
        out[f"ls_{space}"] = float(np.exp(np.sum(entropies)))
        out[f"entropies_{space}"] = [float(e) for e in entropies]
    return out


def _probabilities(logits: torch.Tensor) -> torch.Tensor:
    logits = logits.detach().cpu().to(torch.float64)  # on the CPU: MPS has no float64
    if logits.ndim == 2 and logits.shape[1] == 2:
        return torch.softmax(logits, dim=1)[:, 1]
    return torch.sigmoid(logits.reshape(-1))


@torch.no_grad()
def linear_separability(G, classifiers=None, num_samples: int = 200_000, num_keep: int | None = 100_000,
                        batch_size: int = 16, seed: int = 0, progress: bool = True) -> dict[str, object]:
    """Linear separability of ``G``'s z and w spaces (see the module text). With ``classifiers`` None the
    generator must be conditional and its class labels are used."""
    device = _generator_device(G)
    use_labels = not classifiers
    if use_labels and G.c_dim == 0:
        raise ValueError("linear separability needs attribute classifiers, or a conditional generator whose "
                         "class labels serve as the attributes")
    g = torch.Generator().manual_seed(seed)
    zs, ws, probs = [], [], []
    bar = tqdm(total=num_samples, desc="ls", unit="img", disable=not progress, leave=False)
    done = 0
    while done < num_samples:
        n = min(batch_size, num_samples - done)
        z = torch.randn(n, G.z_dim, generator=g)
        c = None
        if G.c_dim:
            cls = torch.randint(G.c_dim, (n,), generator=g)
            c = torch.nn.functional.one_hot(cls, G.c_dim).to(torch.float32)
        w = G.mapping(z.to(device), c.to(device) if c is not None else None)
        if use_labels:
            probs.append(c.double())
        else:
            img = to_rgb(downsample_to_256(G.synthesis(w, noise_mode="const").to(torch.float32)))
            probs.append(torch.stack([_probabilities(clf(img)) for clf in classifiers], dim=1))
        zs.append(z.double())
        ws.append(w[:, 0].cpu().double())
        done += n
        bar.update(n)
    bar.close()
    latents = {"z": torch.cat(zs).numpy(), "w": torch.cat(ws).numpy()}
    result = separability_from_labels(latents, torch.cat(probs).numpy(), None if use_labels else num_keep)
    result["attributes_from"] = "generator class labels" if use_labels else f"{len(classifiers)} classifier(s)"
    return result
