"""The one error class of the importers."""
from __future__ import annotations

from stylegan.checkpoint import CheckpointError


class InteropError(CheckpointError):
    """A foreign network file cannot be read safely, or uses a feature or layout we cannot map.

    It is a :class:`~stylegan.checkpoint.CheckpointError` (and so a ``ValueError``): code that handles
    unusable checkpoints handles foreign files too. The message names the file and the problem."""
