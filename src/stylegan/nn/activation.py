"""Bias + activation with gain and optional clamp (SPEC §1 "Activation")."""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F

#: Default gain of each activation: leaky ReLU keeps unit variance with sqrt(2).
DEFAULT_GAIN = {"linear": 1.0, "lrelu": math.sqrt(2.0)}
LRELU_SLOPE = 0.2


def bias_act(
    x: torch.Tensor,
    b: torch.Tensor | None = None,
    act: str = "linear",
    gain: float | None = None,
    clamp: float | None = None,
    dim: int = 1,
) -> torch.Tensor:
    """``clamp(act(x + b) * gain)``, with ``b`` broadcast along ``dim``.

    ``gain`` defaults to the activation's own gain (sqrt(2) for ``lrelu``, 1 for ``linear``); ``clamp``
    limits the output to ``[-clamp, clamp]`` (used with float16 to avoid overflow).
    """
    if act not in DEFAULT_GAIN:
        raise ValueError(f"unknown activation {act!r}; expected one of {sorted(DEFAULT_GAIN)}")
    if b is not None:
        shape = [1] * x.ndim
        shape[dim] = -1
        x = x + b.to(x.dtype).reshape(shape)
    if act == "lrelu":
        x = F.leaky_relu(x, LRELU_SLOPE)
    gain = DEFAULT_GAIN[act] if gain is None else float(gain)
    if gain != 1:
        x = x * gain
    if clamp is not None and clamp >= 0:
        x = x.clamp(-clamp, clamp)
    return x
