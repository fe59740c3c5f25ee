"""Images from seeds: the seed-to-latent convention, batching, truncation, class labels."""
from __future__ import annotations

import re
from typing import Iterable, Sequence

import numpy as np
import torch
from tqdm import tqdm

from stylegan.images import to_uint8
from stylegan.nn.noise import check_noise_mode


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


def z_from_seed(seed: int, z_dim: int) -> torch.Tensor:
    """The latent of a seed, as the authors' tools draw it (NumPy RandomState(seed).randn), so that a seed
    names the same image across implementations for an imported network. Shape [1, z_dim]."""
    if not 0 <= seed < 2 ** 32:
        raise ValueError(f"seed must be in [0, 2^32), got {seed}")
    return torch.from_numpy(np.random.RandomState(seed).randn(1, z_dim)).to(torch.float32)


def class_labels(G, class_idx: int | None, n: int, device) -> torch.Tensor | None:
    """One-hot labels for a conditional G; None for an unconditional one. Errors say what is wrong."""
    if G.c_dim == 0:
        if class_idx is not None:
            raise ValueError("this network is unconditional: --class is not used")
        return None
    if class_idx is None:
        raise ValueError(f"this network is conditional ({G.c_dim} classes): give a class index")
    if not 0 <= class_idx < G.c_dim:
        raise ValueError(f"class index must be in [0, {G.c_dim}), got {class_idx}")
    c = torch.zeros(n, G.c_dim, device=device)
    c[:, class_idx] = 1
    return c


@torch.no_grad()
def generate_images(
    G,
    seeds: Sequence[int],
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
    noise_mode: str = "const",
    class_idx: int | None = None,
    batch_size: int = 8,
    progress: bool = False,
) -> np.ndarray:
    """One image per seed as NHWC uint8. Deterministic for ``noise_mode`` ``const`` or ``none``."""
    check_noise_mode(noise_mode)
    device = next(G.parameters()).device
    out = []
    batches: Iterable = range(0, len(seeds), batch_size)
    if progress:
        batches = tqdm(batches, desc="generate", unit="batch")
    for i in batches:
        chunk = seeds[i:i + batch_size]
        z = torch.cat([z_from_seed(s, G.z_dim) for s in chunk]).to(device)
        c = class_labels(G, class_idx, len(chunk), device)
        img = G(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff, noise_mode=noise_mode)
        out.append(to_uint8(img))
    return np.concatenate(out)
