"""Minibatch standard deviation: a feature channel with the standard deviation of the features
within small groups of the batch, so that the discriminator can see a lack of variety.
Formulas: docs/design.md §1.4."""
from __future__ import annotations

import torch
from torch import nn


class MinibatchStd(nn.Module):
    """Appends ``num_channels`` channels to [N, C, H, W].

    Samples ``n`` and ``n + N/G`` (…) form a group of size ``G = min(group_size, N)`` (reduced to the largest
    divisor of N if N is not a multiple). The channels are split into ``num_channels`` parts; for each part,
    the std over the group per feature and pixel is averaged over features and pixels, multiplied by ``gain``
    (1 in the papers) and broadcast.
    """

    def __init__(self, group_size: int | None = 4, num_channels: int = 1, gain: float = 1.0):
        super().__init__()
        self.group_size, self.num_channels, self.gain = group_size, num_channels, gain

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        g = min(self.group_size or n, n)
        while n % g:
            g -= 1
        f = self.num_channels
        y = x.reshape(g, -1, f, c // f, h, w)
        y = y - y.mean(dim=0)
        y = (y.square().mean(dim=0) + 1e-8).sqrt()  # [N/G, F, c, H, W]
        y = y.mean(dim=[2, 3, 4]).reshape(-1, f, 1, 1)  # [N/G, F, 1, 1]
        if self.gain != 1:
            y = y * self.gain
        y = y.repeat(g, 1, h, w)  # sample n gets group n mod N/G
        return torch.cat([x, y], dim=1)

    def extra_repr(self) -> str:
        return f"group_size={self.group_size}, num_channels={self.num_channels}, gain={self.gain:g}"
