"""What a snapshot shows besides the checkpoint: the image grids (fixed latents; with labels, row r is class
r mod c_dim) and the ``--metrics`` computed on G_ema."""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from stylegan.images import make_grid, save_png, to_uint8


@dataclass(frozen=True)
class MetricsAt:
    """What the ``--metrics`` of a snapshot read: the metric names, the network and data they score."""

    names: tuple[str, ...]    # the --metrics, in order (none: nothing is computed)
    G_ema: torch.nn.Module    # the network scored
    data_path: str            # the real images
    device: torch.device
    kimg: float               # images seen, for the records and the log


def snapshot_metrics(at: MetricsAt, snapshot: Path, run_dir: Path, log: Callable[[str], None]) -> None:
    """``--metrics`` on G_ema at a snapshot: one JSON line per metric in ``metric-<name>.jsonl``."""
    if not at.names:
        return
    from stylegan.metrics.registry import compute_metric

    for name in at.names:
        record = compute_metric(name, at.G_ema, at.data_path, at.device, progress=False)
        record = {**record, "snapshot": snapshot.name, "kimg": at.kimg}
        with open(run_dir / f"metric-{name}.jsonl", "a") as f:
            f.write(json.dumps(record, default=str) + "\n")
        log(f"{name} at kimg {at.kimg:g}: {record.get('results')} ({record.get('seconds', 0):.0f} s)")


def grid_shape(resolution: int) -> tuple[int, int]:
    """Columns and rows of the snapshot grids: about 1024 pixels wide, 4 to 8 cells."""
    cols = int(min(max(1024 // resolution, 4), 8))
    return cols, cols


@torch.no_grad()
def fake_grid(G, grid_z: torch.Tensor, grid_c: torch.Tensor | None, cols: int, batch: int = 16) -> np.ndarray:
    """G's images of the grid latents (const noise) as one uint8 grid image."""
    imgs = []
    for i in range(0, len(grid_z), batch):
        c = None if grid_c is None else grid_c[i:i + batch]
        imgs.append(to_uint8(G(grid_z[i:i + batch], c, noise_mode="const")))
    return make_grid(np.concatenate(imgs), cols=cols)


class SnapshotGrid:
    """The fixed latents and real images of a run's grids (reals.png, fakes*.png).

    Real images are spread over the whole dataset (its files are often sorted by class); with labels, row r
    shows class r mod c_dim, in the reals and in the fakes alike. Drawn from ``seed`` alone, so that a resumed
    run draws the same grid."""

    def __init__(self, dataset, resolution: int, z_dim: int, cond: bool, seed: int, device: torch.device):
        self.cols, rows = grid_shape(resolution)
        n_cells = self.cols * rows
        gen = torch.Generator().manual_seed(seed)
        self.z = torch.randn(n_cells, z_dim, generator=gen).to(device)
        self.c = None
        n = len(dataset)
        idx = torch.randperm(n, generator=gen)[:n_cells].tolist()
        self.idx = [idx[i % len(idx)] for i in range(n_cells)]
        if cond:
            labels = [int(dataset.get_label(i).argmax()) for i in range(n)]
            by_class: dict[int, list[int]] = {}
            for i in torch.randperm(n, generator=gen).tolist():
                by_class.setdefault(labels[i], []).append(i)
            members = [by_class[k] for k in sorted(by_class)]  # image indices of each class, shuffled
            self.idx = [(m := members[r % len(members)])[col % len(m)] for r in range(rows) for col in range(self.cols)]
            self.c = torch.stack([dataset.get_label(i) for i in self.idx]).to(device)
        self.dataset = dataset

    def save_reals(self, path: Path) -> None:
        reals = np.stack([self.dataset[i][0].permute(1, 2, 0).numpy() for i in self.idx])
        save_png(make_grid(reals, cols=self.cols), path)

    def save_fakes(self, G, path: Path) -> None:
        save_png(fake_grid(G, self.z, self.c, self.cols), path)


#: A snapshot file's name; its number is the kimg (:func:`snapshot_tag`).
SNAPSHOT_NAME = re.compile(r"^network-snapshot-(\d+(?:\.\d+)?)\.safetensors$")


def snapshot_tag(nimg: int) -> str:
    """What a snapshot's file names say of when it was taken (network-snapshot-TAG.safetensors, fakesTAG.png):
    the kimg as six digits, as the authors name them (000100), with the images past it as three decimals when
    the count is not a whole kimg (000000.200), so that no two snapshots of a run share a name at any --tick or
    --snap."""
    whole, rest = divmod(int(nimg), 1000)
    return f"{whole:06d}" if rest == 0 else f"{whole:06d}.{rest:03d}"


def run_snapshots(run_dir: str | os.PathLike) -> list[tuple[float, Path]]:
    """(kimg, path) of every snapshot in a run folder, by kimg: names of either form of :func:`snapshot_tag`."""
    found = [(float(m.group(1)), p) for p in Path(run_dir).glob("network-snapshot-*.safetensors")
             if (m := SNAPSHOT_NAME.match(p.name))]
    return sorted(found)
