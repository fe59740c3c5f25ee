"""Mapping network (StyleGAN, StyleGAN2): z (+ class embedding) → w, with the running average of w that
the truncation trick pulls towards. Formulas: docs/design.md §2.2."""
from __future__ import annotations

import torch
from torch import nn

from stylegan.nn.equalized import EqualizedLinear
from stylegan.nn.normalize import normalize_2nd_moment


#: Latents per class averaged for class-aware truncation (:meth:`MappingNetwork.class_w_avg`), and the seed
#: of the generator that draws them (the same averages on every run and device).
CLASS_AVG_SAMPLES, CLASS_AVG_SEED = 1024, 0


def check_cutoff(cutoff: int | None, num_ws: int | None) -> None:
    """Refuse a truncation cutoff outside [0, num_ws]: a larger one would silently mean "all"."""
    if cutoff is not None and num_ws is not None and not 0 <= cutoff <= num_ws:
        raise ValueError(f"truncation cutoff {cutoff} is outside [0, {num_ws}]: this network has {num_ws} ws")


def truncate(ws: torch.Tensor, w_avg: torch.Tensor, psi: float, cutoff: int | None = None) -> torch.Tensor:
    """The truncation trick: ``w' = w_avg + psi · (w − w_avg)`` on the first ``cutoff`` ws (all if None).
    ``w_avg`` is one centre [w_dim] or one per sample [N, w_dim] (class-aware truncation)."""
    if psi == 1:
        return ws
    w_avg = w_avg.to(device=ws.device, dtype=ws.dtype)
    if w_avg.ndim == 2 and ws.ndim == 3:
        w_avg = w_avg.unsqueeze(1)
    if ws.ndim == 2 or cutoff is None:
        return w_avg.lerp(ws, psi)
    ws = ws.clone()
    ws[:, :cutoff] = w_avg.lerp(ws[:, :cutoff], psi)
    return ws


class MappingNetwork(nn.Module):
    """``num_layers`` fully connected layers with leaky ReLU and learning-rate multiplier ``lr_mul``.

    z is normalized by its second moment; a class label c (if ``c_dim > 0``) is embedded, normalized, and
    concatenated. ``num_ws=None`` returns [N, w_dim]; otherwise w is broadcast to [N, num_ws, w_dim].
    ``w_avg`` tracks the mean of w with decay ``w_avg_beta`` whenever ``update_w_avg=True``. For a conditional
    network, ``truncation_class=True`` truncates towards each label's own class average instead
    (:meth:`class_w_avg`), so that a strong truncation keeps the class. ``cond_strength`` (λ, 1 unless
    transitional training sets it; not saved) multiplies the normalized class embedding: 0 makes w ignore c.
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
        self._class_avgs: dict[int, torch.Tensor] = {}
        self._class_avgs_key: tuple = ()
        self.cond_strength = 1.0

    def forward(
        self,
        z: torch.Tensor | None,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        update_w_avg: bool = False,
        truncation_class: bool = False,
    ) -> torch.Tensor:
        check_cutoff(truncation_cutoff, self.num_ws)
        x = self._w(z, c)
        if update_w_avg and self.w_avg is not None:
            self.w_avg.copy_(x.detach().mean(dim=0).lerp(self.w_avg, self.w_avg_beta))
        if self.num_ws is not None:
            x = x.unsqueeze(1).repeat(1, self.num_ws, 1)
        if truncation_psi != 1:
            if self.w_avg is None:
                raise ValueError("truncation needs w_avg, which this mapping network does not track")
            centre = self.class_w_avg(c) if truncation_class else self.w_avg
            x = truncate(x, centre, truncation_psi, truncation_cutoff)
        return x

    @torch.no_grad()
    def class_w_avg(self, c: torch.Tensor) -> torch.Tensor:
        """The truncation centre of each one-hot label in ``c`` [N, c_dim]: its class's average w [N, w_dim],
        the mean of w over :data:`CLASS_AVG_SAMPLES` latents drawn with a fixed seed. Each class's average is
        computed once and kept on the network until its weights change."""
        if self.c_dim == 0:
            raise ValueError("class-aware truncation needs a conditional network; this one is unconditional")
        if c is None or c.ndim != 2 or c.shape[1] != self.c_dim or not bool(((c == 0) | (c == 1)).all()) \
                or not bool((c.sum(dim=1) == 1).all()):
            raise ValueError(f"class-aware truncation needs one-hot labels c of shape [N, {self.c_dim}]")
        key = (self.cond_strength, *((p.data_ptr(), p._version) for p in self.parameters()))
        if key != self._class_avgs_key:  # new weights (training, load_state_dict): averages of the old ones
            self._class_avgs, self._class_avgs_key = {}, key
        classes = c.argmax(dim=1).tolist()
        for k in sorted(set(classes) - set(self._class_avgs)):
            self._class_avgs[k] = self._class_average(k)
        return torch.stack([self._class_avgs[k] for k in classes]).to(c.device)

    def _class_average(self, k: int) -> torch.Tensor:
        device = self.layers[0].weight.device if len(self.layers) else torch.device("cpu")
        gen = torch.Generator().manual_seed(CLASS_AVG_SEED + k)
        z = torch.randn(CLASS_AVG_SAMPLES, self.z_dim, generator=gen).to(device)
        c = torch.zeros(CLASS_AVG_SAMPLES, self.c_dim, device=device)
        c[:, k] = 1
        return torch.cat([self._w(z[i:i + 256], c[i:i + 256]) for i in range(0, len(z), 256)]).mean(dim=0)

    def _w(self, z: torch.Tensor | None, c: torch.Tensor | None) -> torch.Tensor:
        """w [N, w_dim] of latents ``z`` and labels ``c`` (checked: shapes, and a label for a conditional
        network)."""
        x = None
        if self.z_dim > 0:
            if z is None or z.ndim != 2 or z.shape[1] != self.z_dim:
                raise ValueError(f"z must have shape [N, {self.z_dim}], got "
                                 f"{None if z is None else tuple(z.shape)}")
            x = normalize_2nd_moment(z.to(torch.float32))
        if self.c_dim > 0:
            if c is None:
                raise ValueError(f"this network is conditional ({self.c_dim} classes): give c, one-hot labels "
                                 f"[N, {self.c_dim}] (e.g. torch.eye({self.c_dim})[[3] * N] for class 3); nothing "
                                 "picks a class for you")
            if c.ndim != 2 or c.shape[1] != self.c_dim:
                raise ValueError(f"this network is conditional: c must have shape [N, {self.c_dim}], got "
                                 f"{tuple(c.shape)}")
            y = normalize_2nd_moment(self.embed(c.to(torch.float32)))
            if self.cond_strength != 1:
                y = y * self.cond_strength
            x = torch.cat([x, y], dim=1) if x is not None else y
        for layer in self.layers:
            x = layer(x)
        return x
