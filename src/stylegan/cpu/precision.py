"""bfloat16 on the CPU by default where it is native and pays.

A network's reduced-precision layers (the highest resolutions, float16 on CUDA) run in bfloat16 on a CPU when
``cpu_half_dtype`` of its synthesis network or discriminator says so. :func:`auto_cpu_bf16` decides it for
training and generation: on, when the CPU computes bfloat16 natively (AVX512-BF16 or AMX) and the widest
reduced-precision layer has at least :data:`BF16_MIN_CHANNELS` channels; below that the casts cost more than
the faster arithmetic gains (the threshold's measurements, and how far the images move from float32:
docs/speed.md, "Speed choices in the code"). ``--fp32`` keeps float32.
"""
from __future__ import annotations

import functools
from pathlib import Path

import torch

#: Reduced-precision layers at least this wide run in bfloat16 by default on a CPU with native bfloat16.
BF16_MIN_CHANNELS = 256


@functools.lru_cache(maxsize=None)
def native_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (Linux: the avx512_bf16 or amx_bf16 flag)."""
    try:
        return cpuinfo_has_bf16(Path("/proc/cpuinfo").read_text(errors="replace"))
    except OSError:
        return False


def cpuinfo_has_bf16(text: str) -> bool:
    """Whether the first ``flags`` line of a /proc/cpuinfo text names avx512_bf16 or amx_bf16."""
    for line in text.splitlines():
        if line.startswith("flags"):
            return bool({"avx512_bf16", "amx_bf16"} & set(line.split(":", 1)[-1].split()))
    return False


def reduced_precision_width(net: torch.nn.Module) -> int:
    """The widest channel count among the reduced-precision blocks of a synthesis network or a
    discriminator (0 when it has none)."""
    blocks = getattr(net, "blocks", {})
    widths = [max((p.shape[0] for p in b.parameters() if p.ndim == 4), default=0)
              for b in blocks.values() if getattr(b, "use_fp16", False)]
    return max(widths, default=0)


def auto_cpu_bf16(device: torch.device, *nets: torch.nn.Module, force: bool = False) -> bool:
    """Set ``cpu_half_dtype = bfloat16`` on ``nets`` (synthesis networks, discriminators) when on the CPU the
    default says so (or ``force``). Returns whether bfloat16 is now in use."""
    if torch.device(device).type != "cpu":
        return False
    on = force or (native_bf16() and max((reduced_precision_width(n) for n in nets), default=0) >= BF16_MIN_CHANNELS)
    if on:
        for n in nets:
            n.cpu_half_dtype = torch.bfloat16
    return on
