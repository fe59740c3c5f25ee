"""Keep freed CPU memory for reuse: large tensors then cost no page faults (a speed choice only).

glibc's malloc serves every block above its mmap threshold (at most 32 MB) with a fresh ``mmap`` and returns
it to the system when freed, so each new feature map of that size is faulted in page by page again, and
training allocates hundreds of such tensors per step (the measurements: docs/speed.md, "Speed choices in the
code").

:func:`keep_freed_memory` tells glibc to take every block from its heap and never give the heap back, so
that blocks are reused as a caching allocator would (what PyTorch does on GPUs). Resident memory then stays
at its peak instead of falling between steps. It is called by the trainer on the CPU, by the command line and
by the benchmarks; ``STYLEGAN_CPU_MALLOC=system`` leaves malloc as it is. Without glibc it does nothing.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

# mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_TOP_PAD, _M_MMAP_MAX = -1, -2, -4
_applied: bool | None = None


def keep_freed_memory() -> bool:
    """Configure glibc malloc as described above (once per process); True if it is in effect."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get("STYLEGAN_CPU_MALLOC", "").lower() == "system" or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to tune
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _applied = bool(mallopt(_M_MMAP_MAX, 0) and mallopt(_M_TRIM_THRESHOLD, 2 ** 31 - 1)
                    and mallopt(_M_TOP_PAD, 64 << 20))
    return _applied
