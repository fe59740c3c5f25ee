"""glibc malloc keeps freed memory for reuse after keep_freed_memory() (stylegan.cpu.memory)."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = r"""
import ctypes, sys, torch
from stylegan.cpu.memory import keep_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks",
                 "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = MallInfo2
applied = keep_freed_memory()
before = libc.mallinfo2()
x = torch.empty(64 << 20, dtype=torch.uint8)  # 64 MB: above glibc's largest mmap threshold
during = libc.mallinfo2()
del x
after = libc.mallinfo2()
print(int(applied), during.hblkhd - before.hblkhd, during.arena - before.arena, after.arena - before.arena)
"""


def _probe(env_extra: dict[str, str]) -> list[int]:
    env = {**os.environ, **env_extra}
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, capture_output=True, text=True, check=True)
    return [int(v) for v in out.stdout.split()]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc only")
def test_large_blocks_come_from_the_heap_and_stay_there():
    try:
        applied, mmapped, heap_during, heap_after = _probe({"STYLEGAN_CPU_MALLOC": ""})
    except subprocess.CalledProcessError as e:  # no mallinfo2: not glibc >= 2.33
        pytest.skip(f"no glibc mallinfo2: {e.stderr[-200:]}")
    assert applied == 1
    assert mmapped == 0  # not a fresh mmap ...
    assert heap_during >= 64 << 20  # ... but heap memory
    assert heap_after >= 64 << 20  # kept after the tensor is freed, for the next one


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc malloc only")
def test_system_malloc_is_left_alone_on_request():
    try:
        applied, mmapped, _, heap_after = _probe({"STYLEGAN_CPU_MALLOC": "system"})
    except subprocess.CalledProcessError as e:
        pytest.skip(f"no glibc mallinfo2: {e.stderr[-200:]}")
    assert applied == 0
    assert mmapped >= 64 << 20  # glibc's default: a block this large is mmapped
    assert heap_after < 64 << 20
