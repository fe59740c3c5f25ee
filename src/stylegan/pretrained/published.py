"""The authors' published networks, by name: where each pickle is, what it was trained on, and under which
licence, as listed in the READMEs of NVlabs/stylegan3 (its StyleGAN3 and StyleGAN2 models on NVIDIA NGC) and
NVlabs/stylegan2-ada-pytorch (its ``pretrained/`` folder). ``--network NAME`` and ``stylegan.load(NAME)``
download such a file on first use (:mod:`stylegan.pretrained.download`) and read it from the cache afterwards.

The READMEs publish no digests, so ``sha256`` is empty: the files are checked for being complete and for
being network files, and read by the safe unpickler.
"""
from __future__ import annotations

from dataclasses import dataclass

SG3_README = "NVlabs/stylegan3 README (StyleGAN3 pre-trained models)"
SG2_README = "NVlabs/stylegan3 README (StyleGAN2 pre-trained models compatible with it)"
ADA_README = "NVlabs/stylegan2-ada-pytorch README (data repository, pretrained/)"
SG3_BASE = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan3/versions/1/files/"
SG2_BASE = "https://api.ngc.nvidia.com/v2/models/nvidia/research/stylegan2/versions/1/files/"
ADA_BASE = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/"
NVIDIA_LICENCE = "NVIDIA Source Code License (non-commercial)"

#: What the dataset part of a published file name means.
DATASETS: dict[str, str] = {
    "ffhq": "FFHQ (aligned faces)", "ffhqu": "FFHQ-U (unaligned faces)", "metfaces": "MetFaces (aligned)",
    "metfacesu": "MetFaces-U (unaligned)", "afhqv2": "AFHQv2 (cats, dogs, wild animals)", "afhqcat": "AFHQ Cat",
    "afhqdog": "AFHQ Dog", "afhqwild": "AFHQ Wild", "brecahad": "BreCaHAD (histopathology)",
    "cifar10": "CIFAR-10 (10 classes)", "celebahq": "CelebA-HQ", "lsundog": "LSUN Dog",
}


@dataclass(frozen=True)
class Published:
    """One published network: its name here, the address of its pickle, and what it is."""

    name: str
    url: str
    resolution: int
    config: str          # StyleGAN3-T, StyleGAN3-R, StyleGAN2, StyleGAN2-ADA
    dataset: str
    licence: str
    source: str          # the README that lists it
    sha256: str = ""     # empty: no published digest

    def describe(self) -> str:
        """One line: config, dataset, resolution, licence."""
        return f"{self.config}, {self.dataset}, {self.resolution}x{self.resolution}; {self.licence}"


def _ngc(stem: str, config: str, base: str, source: str) -> Published:
    """An NGC entry named by its file stem (``stylegan3-t-ffhq-1024x1024``)."""
    dataset, res = stem.rsplit("-", 2)[1:]
    return Published(stem, f"{base}{stem}.pkl", int(res.split("x")[0]), config, DATASETS[dataset],
                     NVIDIA_LICENCE, source)


def _ada(file: str, dataset: str, resolution: int, how: str) -> Published:
    """A stylegan2-ada-pytorch entry, named ``stylegan2-ada-DATASET-RESxRES`` after its ``pretrained/FILE``."""
    return Published(f"stylegan2-ada-{dataset}-{resolution}x{resolution}", f"{ADA_BASE}{file}", resolution,
                     f"StyleGAN2-ADA ({how})", DATASETS[dataset], NVIDIA_LICENCE, ADA_README)


_SG3 = ["t-ffhq-1024x1024", "t-ffhqu-1024x1024", "t-ffhqu-256x256", "r-ffhq-1024x1024", "r-ffhqu-1024x1024",
        "r-ffhqu-256x256", "t-metfaces-1024x1024", "t-metfacesu-1024x1024", "r-metfaces-1024x1024",
        "r-metfacesu-1024x1024", "t-afhqv2-512x512", "r-afhqv2-512x512"]
_SG2 = ["ffhq-1024x1024", "ffhq-512x512", "ffhq-256x256", "ffhqu-1024x1024", "ffhqu-256x256", "metfaces-1024x1024",
        "metfacesu-1024x1024", "afhqv2-512x512", "afhqcat-512x512", "afhqdog-512x512", "afhqwild-512x512",
        "brecahad-512x512", "cifar10-32x32", "celebahq-256x256", "lsundog-256x256"]

#: Name → published network.
PUBLISHED: dict[str, Published] = {p.name: p for p in [
    *(_ngc(f"stylegan3-{s}", f"StyleGAN3-{s[0].upper()}", SG3_BASE, SG3_README) for s in _SG3),
    *(_ngc(f"stylegan2-{s}", "StyleGAN2", SG2_BASE, SG2_README) for s in _SG2),
    _ada("ffhq.pkl", "ffhq", 1024, "trained using original StyleGAN2"),
    _ada("metfaces.pkl", "metfaces", 1024, "transfer learning from FFHQ using ADA"),
    _ada("afhqcat.pkl", "afhqcat", 512, "trained from scratch using ADA"),
    _ada("afhqdog.pkl", "afhqdog", 512, "trained from scratch using ADA"),
    _ada("afhqwild.pkl", "afhqwild", 512, "trained from scratch using ADA"),
    _ada("cifar10.pkl", "cifar10", 32, "class-conditional"),
    _ada("brecahad.pkl", "brecahad", 512, "trained from scratch using ADA"),
]}

__all__ = ["PUBLISHED", "Published"]
