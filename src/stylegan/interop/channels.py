"""Inverting the channel table of foreign networks: cbase and cmax such that min(cbase / r, cmax) gives the
channels found at every resolution r."""
from __future__ import annotations

from stylegan.interop.errors import InteropError


def channels_to_cbase(channels: dict[int, int], what: str) -> tuple[int, int]:
    """cbase, cmax with ``min(cbase // r, cmax) == channels[r]`` for every resolution r, or an error."""
    cmax = max(channels.values())
    below = [r * c for r, c in channels.items() if c < cmax]
    cbase = min(below) if below else cmax * max(channels)
    for r, c in channels.items():
        if min(cbase // r, cmax) != c:
            raise InteropError(f"{what}: channel counts {dict(sorted(channels.items()))} do not follow "
                               "min(cbase / resolution, cmax); our networks cannot express them")
    return cbase, cmax
