"""Mapping network (StyleGAN, StyleGAN2): z (+ class embedding) → w, with the running average of w that
the truncation trick pulls towards. Formulas: docs/design.md §2.2."""
from __future__ import annotations

import torch
from torch import nn

from stylegan.nn.equalized import EqualizedLinear
from stylegan.nn.normalize import normalize_2nd_moment


def truncate(ws: torch.Tensor, w_avg: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
    """The truncation trick: ``w' = w_avg + psi · (w − w_avg)`` on the first ``cutoff`` ws (all if None)."""
    if psi == 1:
        return ws
    w_avg = w_avg.to(ws.dtype)
    if ws.ndim == 2 or cutoff is None:
        return w_avg.lerp(ws, psi)
    ws = ws.clone()
    ws[:, :cutoff] = w_avg.lerp(ws[:, :cutoff], psi)
    return ws


class MappingNetwork(nn.Module):
    """``num_layers`` fully connected layers with leaky ReLU and learning-rate multiplier ``lr_mul``.

    z is normalized by its second moment; a class label c (if ``c_dim > 0``) is embedded, normalized, and
    concatenated. ``num_ws=None`` returns [N, w_dim]; otherwise w is broadcast to [N, num_ws, w_dim].
    ``w_avg`` tracks the mean of w with decay ``w_avg_beta`` whenever ``update_w_avg=True``.
    """

    def __init__(
        self,
        z_dim: int,
        c_dim: int,
        w_dim: int,
        num_ws: int | None,
        num_layers: int = 8,
        lr_mul: float = 0.01,
        w_avg_beta: float | None = 0.995,
        embed_features: int | None = None,
        layer_features: int | None = None,
    ):
        super().__init__()
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = z_dim, c_dim, w_dim, num_ws
        self.num_layers, self.w_avg_beta = num_layers, w_avg_beta
        if embed_features is None:
            embed_features = w_dim
        if c_dim == 0:
            embed_features = 0
        if layer_features is None:
            layer_features = w_dim
        features = [z_dim + embed_features] + [layer_features] * (num_layers - 1) + [w_dim]
        self.embed = EqualizedLinear(c_dim, embed_features) if c_dim > 0 else None
        self.layers = nn.ModuleList(
            EqualizedLinear(features[i], features[i + 1], activation="lrelu", lr_mul=lr_mul)
            for i in range(num_layers)
        )
        if num_ws is not None and w_avg_beta is not None:
            self.register_buffer("w_avg", torch.zeros(w_dim))
        else:
            self.w_avg = None

    def forward(
        self,
        z: torch.Tensor | None,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_w_avg: bool = False,
    ) -> torch.Tensor:
        x = None
        if self.z_dim > 0:
            if z is None or z.ndim != 2 or z.shape[1] != self.z_dim:
                raise ValueError(f"z must have shape [N, {self.z_dim}], got "
                                 f"{None if z is None else tuple(z.shape)}")
            x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            if c is None or c.ndim != 2 or c.shape[1] != self.c_dim:
                raise ValueError(f"this network is conditional: c must have shape [N, {self.c_dim}], got "
                                 f"{None if c is None else tuple(c.shape)}")
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            x = torch.cat([x, y], dim=1) if x is not None else y
        for layer in self.layers:
            x = layer(x)
        if update_w_avg and self.w_avg is not None:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            if self.w_avg is None:
                raise ValueError("truncation needs w_avg, which this mapping network does not track")
            x = truncate(x, self.w_avg, truncation_psi, truncation_cutoff)
        return x
