"""The named configurations as a table: what each adds to the row before, its parameter counts at a
resolution, and the paper row it reproduces (``stylegan configs``)."""
from __future__ import annotations

from dataclasses import dataclass

from stylegan.presets import ALIASES, PRESETS, make_config
from stylegan.networks import parameter_counts


@dataclass(frozen=True)
class ConfigRow:
    name: str
    family: str
    adds: str
    paper: str
    params: dict[int, dict[str, int]]  # resolution -> {"G": count, "D": count}
    aliases: tuple[str, ...] = ()


def lineage(resolutions: tuple[int, ...] = (1024,)) -> list[ConfigRow]:
    """One row per named configuration (aliases folded into the row they name), in lineage order."""
    rows = []
    for name, preset in PRESETS.items():
        if name in ALIASES:
            continue
        params = {res: parameter_counts(make_config(name, resolution=res)) for res in resolutions}
        rows.append(ConfigRow(name, preset.build().family, preset.adds, preset.paper, params,
                              tuple(a for a, target in ALIASES.items() if target == name)))
    return rows
