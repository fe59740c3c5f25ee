"""Feature-map memory layout (a speed choice only; results are the same within float32 rounding).

On the CPU the networks keep their feature maps channels-last (NHWC), where oneDNN runs convolutions,
transposed convolutions and depthwise FIR filters faster than in NCHW (docs/speed.md, "Speed choices in the
code"). On CUDA the layout stays NCHW.
:func:`reference_layout` switches the fast layout off, for tests that compare against the plain path.
"""
from __future__ import annotations

import contextlib
from typing import Iterator

import torch

_CPU_CHANNELS_LAST = True


def memory_format_for(device: torch.device) -> torch.memory_format:
    """The layout feature maps take on ``device``."""
    if device.type == "cpu" and _CPU_CHANNELS_LAST:
        return torch.channels_last
    return torch.contiguous_format


def to_preferred_layout(x: torch.Tensor) -> torch.Tensor:
    return x.contiguous(memory_format=memory_format_for(x.device))


@contextlib.contextmanager
def reference_layout() -> Iterator[None]:
    """Run the networks in plain NCHW inside the ``with`` block."""
    global _CPU_CHANNELS_LAST
    old, _CPU_CHANNELS_LAST = _CPU_CHANNELS_LAST, False
    try:
        yield
    finally:
        _CPU_CHANNELS_LAST = old
