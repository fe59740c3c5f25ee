"""The digit classifier behind the class-coverage metric: a small convolutional network trained by this package on
the built-in ``mnist5k`` labels and shipped as ``stylegan/pretrained/digits-classifier.safetensors``.

It reads 32×32 grayscale images in [−1, 1] (the generators' range) and returns 10 logits. It is trained on 4,000
of the 5,000 digits (with random shifts of up to 2 pixels, so that it does not rely on exact centring) and its
accuracy on the other 1,000 is stored in the file and checked by the tests. Rebuild it with::

    python -m stylegan.metrics.digits --out src/stylegan/pretrained/digits-classifier.safetensors
"""
from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

NUM_CLASSES = 10
RESOLUTION = 32
SHIPPED = Path(__file__).resolve().parent.parent / "pretrained" / "digits-classifier.safetensors"
HELD_OUT = 1000  # digits kept out of training; which ones is fixed by HOLDOUT_SEED
HOLDOUT_SEED = 2024


class DigitClassifier(nn.Module):
    """Three 3×3 conv + ReLU + 2×2 max-pool stages (32, 64, 128 channels), then a linear layer: 94k parameters."""

    def __init__(self):
        super().__init__()
        self.convs = nn.ModuleList([nn.Conv2d(1, 32, 3, padding=1), nn.Conv2d(32, 64, 3, padding=1),
                                    nn.Conv2d(64, 128, 3, padding=1)])
        self.fc = nn.Linear(128 * 4 * 4, NUM_CLASSES)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """The 2,048 features the last layer reads (the study's digit Fréchet distance uses them)."""
        x = to_classifier_input(x)
        for conv in self.convs:
            x = F.max_pool2d(F.relu(conv(x)), 2)
        return x.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def to_classifier_input(img: torch.Tensor) -> torch.Tensor:
    """N×C×H×W images in [−1, 1] → N×1×32×32: colour averaged to gray, resized by area (down) or bilinearly."""
    if img.ndim != 4:
        raise ValueError(f"the digit classifier takes N x C x H x W images, got shape {tuple(img.shape)}")
    x = img.float()
    if x.shape[1] != 1:
        x = x.mean(dim=1, keepdim=True)
    if x.shape[2:] != (RESOLUTION, RESOLUTION):
        mode = "area" if x.shape[2] > RESOLUTION else "bilinear"
        x = F.interpolate(x, size=(RESOLUTION, RESOLUTION), mode=mode,
                          **({} if mode == "area" else {"align_corners": False}))
    return x.clamp(-1, 1)


def mnist5k_split() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The built-in digits as N×1×32×32 float images in [−1, 1] and labels: (train x, train y, held-out x, y)."""
    from stylegan.data.builtin import load_mnist5k

    images, labels = load_mnist5k()
    x = torch.from_numpy(np.pad(images, ((0, 0), (2, 2), (2, 2)))).float().unsqueeze(1) / 127.5 - 1
    y = torch.from_numpy(labels).long()
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(HOLDOUT_SEED))
    test, train = perm[:HELD_OUT], perm[HELD_OUT:]
    return x[train], y[train], x[test], y[test]


def random_shift(x: torch.Tensor, max_shift: int, gen: torch.Generator) -> torch.Tensor:
    """Each image moved by a random integer offset in [−max_shift, max_shift]², filled with the background (−1)."""
    n, _, h, w = x.shape
    padded = F.pad(x, [max_shift] * 4, value=-1.0)
    dx = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    dy = torch.randint(0, 2 * max_shift + 1, (n,), generator=gen)
    rows = (dy[:, None] + torch.arange(h)[None])[:, :, None].expand(n, h, w)
    cols = (dx[:, None] + torch.arange(w)[None])[:, None, :].expand(n, h, w)
    idx = (rows * padded.shape[3] + cols).reshape(n, 1, h * w)
    return padded.flatten(2).gather(2, idx).reshape(n, 1, h, w)


@torch.no_grad()
def accuracy(net: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 500) -> float:
    net.eval()
    correct = sum(int((net(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum()) for i in range(0, len(x), batch))
    return correct / len(x)


def train_digit_classifier(epochs: int = 12, batch: int = 64, lr: float = 2e-3, seed: int = 0,
                           progress: bool = True) -> tuple[DigitClassifier, float]:
    """Train on the 4,000 training digits; returns the network and its held-out accuracy."""
    from tqdm import tqdm

    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    x, y, xt, yt = mnist5k_split()
    net = DigitClassifier()
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    steps = epochs * ((len(x) + batch - 1) // batch)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps)
    bar = tqdm(total=steps, desc="digit classifier", disable=not progress)
    for _ in range(epochs):
        net.train()
        perm = torch.randperm(len(x), generator=gen)
        for i in range(0, len(x), batch):
            idx = perm[i:i + batch]
            loss = F.cross_entropy(net(random_shift(x[idx], 2, gen)), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
            bar.update(1)
    bar.close()
    net.eval()
    return net, accuracy(net, xt, yt)


def save_classifier(net: DigitClassifier, path: str | os.PathLike, held_out_accuracy: float) -> Path:
    from safetensors.torch import save_file

    from stylegan.files import atomic_write_bytes

    meta = {"format": "stylegan-digit-classifier", "version": "1",
            "held_out_accuracy": json.dumps(held_out_accuracy),
            "trained_on": "builtin:mnist5k, 4,000 digits (held out: 1,000 chosen by seed 2024)"}
    state = {k: v.detach().contiguous() for k, v in net.state_dict().items()}
    return atomic_write_bytes(path, lambda tmp: save_file(state, tmp, metadata=meta))


class ClassifierError(ValueError):
    """The classifier file is missing or is not one of ours."""


def load_classifier(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> DigitClassifier:
    """The shipped classifier (or the file at ``path``), in eval mode. Reads tensors only; every name and shape
    must match the network exactly."""
    from safetensors import safe_open

    path = Path(path) if path is not None else SHIPPED
    if not path.is_file():
        raise ClassifierError(f"{path}: digit classifier file not found")
    net = DigitClassifier()
    expected = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            if meta.get("format") != "stylegan-digit-classifier":
                raise ClassifierError(f"{path}: not a digit classifier file of this package")
            names = set(f.keys())
            if names != set(expected):
                raise ClassifierError(f"{path}: tensor names differ from the classifier's")
            state = {}
            for k in expected:
                t = f.get_slice(k)
                if tuple(t.get_shape()) != expected[k]:
                    raise ClassifierError(f"{path}: tensor {k} has shape {t.get_shape()}, expected {expected[k]}")
                state[k] = f.get_tensor(k)
    except ClassifierError:
        raise
    except Exception as e:  # a damaged or foreign file
        raise ClassifierError(f"{path}: cannot read the digit classifier ({e})") from None
    net.load_state_dict(state)
    net.held_out_accuracy = float(json.loads(meta.get("held_out_accuracy", "nan")))
    return net.to(device).eval()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Train the digit classifier of the class-coverage metric.")
    parser.add_argument("--out", required=True, help="output .safetensors file")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--force", action="store_true", help="overwrite an existing file")
    args = parser.parse_args(argv)
    if Path(args.out).exists() and not args.force:
        raise SystemExit(f"{args.out} exists; pass --force to overwrite it")
    net, acc = train_digit_classifier(epochs=args.epochs, seed=args.seed)
    save_classifier(net, args.out, acc)
    print(f"held-out accuracy {acc:.4f} on {HELD_OUT} digits; wrote {args.out}")


if __name__ == "__main__":
    main()
