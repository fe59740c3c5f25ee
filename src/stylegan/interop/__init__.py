"""Importers for the weights people already have, and an exporter.

- the authors' PyTorch pickles (stylegan2-ada-pytorch, stylegan3: their StyleGAN2 networks),
- the authors' TensorFlow StyleGAN2 pickles (read without TensorFlow),
- rosinality's stylegan2-pytorch checkpoints (and export to their layout).

Nothing here executes code from a file: pickles are interpreted by :mod:`stylegan.interop.torch_files`,
which admits an explicit allow-list of globals only. Every failure is an :class:`InteropError` (a
:class:`~stylegan.checkpoint.CheckpointError`).
"""
from stylegan.interop.errors import InteropError
from stylegan.interop.formats import ImportedNetworks, convert, read_foreign

__all__ = ["ImportedNetworks", "InteropError", "convert", "read_foreign"]
