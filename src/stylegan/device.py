"""The device a command runs on, chosen in one place for generation, the tools, the metrics and training:
``--device auto|cpu|cuda|cuda:N|mps``.

``auto`` is CUDA when PyTorch sees a GPU, else the CPU; Apple's MPS (Metal) is used when asked for by name
(``--device mps``), since PyTorch's MPS backend lacks some operations and float64. Asking for a device this
machine does not have is one line saying so. Code that would compute in float64 on the network's device asks
:func:`wide_float` for the type, which is float32 on MPS.
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # PyTorch is imported where a device is chosen, not by the command line's option parsing
    import torch

#: The accepted ``--device`` values, for help texts and messages, and as a pattern.
DEVICE_CHOICES = "auto, cpu, cuda, cuda:N or mps"
DEVICE_PATTERN = r"auto|cpu|cuda(:\d+)?|mps"


class DeviceError(ValueError):
    """A ``--device`` value that is malformed or names a device this machine does not have."""


def mps_available() -> bool:
    """True when this PyTorch has the MPS backend and the machine can use it."""
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def check_device_name(name: str) -> None:
    """Refuse a ``--device`` value that is none of :data:`DEVICE_CHOICES` (without looking at the hardware)."""
    if not isinstance(name, str) or not re.fullmatch(DEVICE_PATTERN, name):
        raise DeviceError(f"--device {name!r}: expected {DEVICE_CHOICES}")


def choose_device(name: str = "auto") -> torch.device:
    """The ``torch.device`` for a ``--device`` value, or a :class:`DeviceError` when it is malformed or not
    available here."""
    import torch

    check_device_name(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise DeviceError(f"--device {name}: CUDA is not available on this machine")
    if name == "mps" and not mps_available():
        built = getattr(getattr(torch.backends, "mps", None), "is_built", lambda: False)()
        why = "this machine has no MPS device (a Mac with macOS 12.3 or later)" if built else \
            "this PyTorch was built without it"
        raise DeviceError(f"--device mps: Apple's MPS is not available ({why}); use --device cpu")
    return torch.device(name)


def wide_float(device: str | torch.device) -> torch.dtype:
    """float64 for sums and statistics on ``device``; float32 on MPS, which has no float64."""
    import torch

    return torch.float32 if torch.device(device).type == "mps" else torch.float64


__all__ = ["DEVICE_CHOICES", "DEVICE_PATTERN", "DeviceError", "check_device_name", "choose_device", "mps_available",
           "wide_float"]
