"""The generator: mapping network + synthesis network, and style mixing at inference.
Formulas: docs/design.md §2.3."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from stylegan.config import GeneratorConfig
from stylegan.networks.mapping import MappingNetwork
from stylegan.networks.synthesis import SynthesisNetwork


def mix_styles(ws_list: Sequence[torch.Tensor], crossovers: Sequence[int]) -> torch.Tensor:
    """Style mixing: ws [N, num_ws, w_dim] from several latents, switched at the crossover indices.

    ``mix_styles([a, b, c], [4, 8])`` takes layers 0–3 from ``a``, 4–7 from ``b`` and 8+ from ``c``.
    """
    if len(ws_list) == 0 or len(crossovers) != len(ws_list) - 1:
        raise ValueError("style mixing needs k latents and k − 1 crossover indices")
    num_ws = ws_list[0].shape[1]
    if any(w.shape != ws_list[0].shape for w in ws_list):
        raise ValueError("style mixing needs ws of equal shapes")
    if list(crossovers) != sorted(crossovers) or any(not 0 <= k <= num_ws for k in crossovers):
        raise ValueError(f"crossover indices must be increasing and within [0, {num_ws}], got {list(crossovers)}")
    bounds = [0, *crossovers, num_ws]
    return torch.cat([w[:, bounds[i]:bounds[i + 1]] for i, w in enumerate(ws_list)], dim=1)


class Generator(nn.Module):
    """``G(z, c) → images`` in [−1, 1] (NCHW float32). ``G.mapping`` and ``G.synthesis`` are usable alone.

    The synthesis network is StyleGAN2's (:mod:`stylegan.networks.synthesis`, configs E/F) or, for ProGAN,
    StyleGAN and StyleGAN2 A–D, the progressive one (:mod:`stylegan.networks.progressive`). Without a
    mapping network (``map_depth`` 0) ``G.mapping`` only normalizes z, and there is no w_avg to truncate
    towards. A growing generator makes images of its current resolution (:attr:`current_resolution`).
    """

    def __init__(self, cfg: GeneratorConfig):
        super().__init__()
        cfg.validate()
        self.cfg = cfg
        self.z_dim, self.c_dim, self.w_dim = cfg.z_dim, cfg.c_dim, cfg.w_dim
        self.resolution, self.img_channels = cfg.resolution, cfg.img_channels
        #: (height, width) of the images; ``resolution`` is the longer side.
        self.img_shape = cfg.img_shape
        if cfg.progressive:
            from stylegan.networks.progressive import ProgressiveSynthesis

            self.synthesis = ProgressiveSynthesis(cfg)
        else:
            self.synthesis = SynthesisNetwork(cfg.w_dim, cfg.resolution, cfg.img_channels, cbase=cfg.cbase,
                                              cmax=cfg.cmax, architecture=cfg.arch, num_fp16_res=cfg.num_fp16_res,
                                              conv_clamp=cfg.conv_clamp, base_h=cfg.base_h, base_w=cfg.base_w)
        self.num_ws = self.synthesis.num_ws
        self.mapping = MappingNetwork(cfg.z_dim, cfg.c_dim, cfg.w_dim, num_ws=self.num_ws,
                                      num_layers=cfg.map_depth, lr_mul=cfg.map_lr_mul,
                                      w_avg_beta=cfg.w_avg_beta if cfg.map_depth > 0 else None)

    @property
    def current_resolution(self) -> int:
        """The size of the images G makes now: below :attr:`resolution` while a growing G is still growing."""
        return self.synthesis.current_resolution if self.cfg.growing else self.resolution

    @property
    def num_active_ws(self) -> int:
        """The ws that affect the image now: all of them, except for a growing G below its full resolution."""
        return self.synthesis.num_active_ws if self.cfg.progressive else self.num_ws

    def set_growth(self, resolution: int, alpha: float) -> None:
        """Progressive growing: the stage (resolution) and its fade-in α (see :mod:`stylegan.networks.progressive`)."""
        if not self.cfg.growing:
            raise ValueError("this generator does not grow progressively")
        self.synthesis.set_growth(resolution, alpha)

    def forward(
        self,
        z: torch.Tensor,
        c: torch.Tensor | None = None,
        truncation_psi: float = 1.0,
        truncation_cutoff: int | None = None,
        noise_mode: str = "const",
        update_w_avg: bool = False,
        truncation_class: bool = False,
        **synthesis_kwargs,
    ) -> torch.Tensor:
        """Images for latents ``z`` and, for a conditional network, one-hot labels ``c`` (required: nothing
        picks a class). Truncation pulls w towards the average w, or with ``truncation_class`` towards each
        label's own class average (see :class:`~stylegan.networks.mapping.MappingNetwork`)."""
        if truncation_psi != 1 and self.mapping.w_avg is None:
            raise ValueError("truncation needs the average w of a mapping network; this generator has none "
                             "(its latent enters the synthesis directly)")
        ws = self.mapping(z, c, truncation_psi=truncation_psi, truncation_cutoff=truncation_cutoff,
                          update_w_avg=update_w_avg, truncation_class=truncation_class)
        return self.synthesis(ws, noise_mode=noise_mode, **synthesis_kwargs)
