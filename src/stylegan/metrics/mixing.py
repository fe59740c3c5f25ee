"""The style-mixing stress test (StyleGAN Table 2): every generated image takes its styles from k random
latents, switched at k − 1 random crossover points, and is then scored like any generator's (FID). Networks
trained with mixing regularization tolerate it much better.
"""
from __future__ import annotations

import torch
from torch import nn


def random_crossovers(n: int, k: int, num_ws: int, generator: torch.Generator | None = None,
                      device: torch.device | str = "cpu") -> torch.Tensor:
    """[n, k − 1] crossover indices per sample: distinct, increasing, uniform over [1, num_ws)."""
    if not 1 <= k <= num_ws:
        raise ValueError(f"mixing {k} latents needs at least {k} style inputs, the generator has {num_ws}")
    order = torch.rand(n, num_ws - 1, generator=generator).argsort(dim=1)
    return (order[:, :k - 1] + 1).sort(dim=1).values.to(device)


def mix_at(ws: torch.Tensor, crossovers: torch.Tensor) -> torch.Tensor:
    """``ws`` [k, N, num_ws, w_dim] (one set per latent) → [N, num_ws, w_dim]: layer j of sample n from latent
    ``#{crossovers[n] <= j}``."""
    k, n, num_ws, _ = ws.shape
    layers = torch.arange(num_ws, device=ws.device)
    source = (crossovers.unsqueeze(2) <= layers.reshape(1, 1, -1)).sum(dim=1)  # [N, num_ws] in [0, k)
    return ws.gather(0, source.reshape(1, n, num_ws, 1).expand(1, n, num_ws, ws.shape[3]))[0]


class MixedLatentGenerator(nn.Module):
    """``G`` whose every image mixes ``k`` latents: the given z and k − 1 more drawn from the global RNG, at
    random crossovers per image (among the ws the network uses now). ``k = 1`` is ``G`` itself."""

    def __init__(self, G: nn.Module, k: int):
        super().__init__()
        if k > G.num_active_ws:
            raise ValueError(f"mixing {k} latents needs a generator with at least {k} style inputs; this one has "
                             f"{G.num_active_ws}")
        self.G, self.k = G, k
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = G.z_dim, G.c_dim, G.w_dim, G.num_ws
        self.resolution, self.img_channels, self.img_shape = G.resolution, G.img_channels, G.img_shape

    def forward(self, z: torch.Tensor, c: torch.Tensor | None = None, truncation_psi: float = 1.0,
                truncation_cutoff: int | None = None, noise_mode: str = "random", **synthesis_kwargs) -> torch.Tensor:
        latents = [z] + [torch.randn_like(z) for _ in range(self.k - 1)]
        ws = torch.stack([self.G.mapping(zi, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff)
                          for zi in latents])
        crossovers = random_crossovers(z.shape[0], self.k, self.G.num_active_ws, device=z.device)
        return self.G.synthesis(mix_at(ws, crossovers), noise_mode=noise_mode, **synthesis_kwargs)
