"""Lists of numbers as the command line writes them (seeds, layers): ``0-7,12``. Plain Python, so that an option
is parsed and checked before any network library is loaded."""
from __future__ import annotations

import re


#: The longest list :func:`parse_range` expands (a million seeds is already hours of images).
MAX_LIST = 1_000_000


def parse_range(spec: str) -> list[int]:
    """``"0-7,12"`` → [0, 1, …, 7, 12]. Ranges are inclusive; order is kept."""
    out: list[int] = []
    for part in str(spec).split(","):
        part = part.strip()
        if not part:
            continue
        m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
        if m:
            a, b = int(m.group(1)), int(m.group(2))
            if b < a:
                raise ValueError(f"range {part!r} runs backwards")
            if len(out) + b - a + 1 > MAX_LIST:
                raise ValueError(f"{spec!r} names more than {MAX_LIST:,} items")
            out.extend(range(a, b + 1))
        elif re.fullmatch(r"\d+", part):
            out.append(int(part))
        else:
            raise ValueError(f"cannot parse {part!r}: expected a list such as '0-7,12'")
    if not out:
        raise ValueError("empty list")
    return out
