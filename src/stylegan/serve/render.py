"""What the service computes: single images, style mixes and interpolation strips, as PNG bytes; the single
images of a StyleGAN3 network also translated and rotated.

These functions run on the inference worker's thread only. Every input has been validated by the web layer;
the checks here are the last line (they raise ValueError, which the web layer reports as a 422).
"""
from __future__ import annotations

import io
from typing import Sequence

import numpy as np
import torch

from stylegan.images import array_to_pil, to_uint8
from stylegan.networks.generator import mix_styles
from stylegan.networks.stylegan3 import has_input_transform, set_input_transform
from stylegan.nn.noise import check_noise_mode
from stylegan.tools.directions import move_ws
from stylegan.tools.generate import z_from_seed

#: Images per synthesis pass. 1 keeps every image bit-identical to the same image requested alone (a batched
#: convolution rounds differently) and the memory of a request that of one image.
CHUNK = 1


def png_bytes(arr: np.ndarray) -> bytes:
    """HWC uint8 → PNG bytes (deterministic for equal pixels)."""
    buf = io.BytesIO()
    array_to_pil(arr).save(buf, format="PNG")
    return buf.getvalue()


class Renderer:
    """Wraps a generator (eval mode, no grads) with the three operations the service offers."""

    def __init__(self, G, directions=None):
        self.G = G
        self.directions = directions  # latent directions of the page's edit sliders (None: no edits)
        self.movable = has_input_transform(G)  # StyleGAN3: every synthesis sets the input transform it wants
        try:
            self.device = next(G.parameters()).device
        except (AttributeError, StopIteration):
            self.device = torch.device("cpu")

    def _labels(self, class_idx: int | None, n: int) -> torch.Tensor | None:
        c_dim = self.G.c_dim
        if c_dim == 0:
            if class_idx is not None:
                raise ValueError("this network is unconditional: 'class' is not accepted")
            return None
        if class_idx is None or not 0 <= class_idx < c_dim:
            raise ValueError(f"this network is conditional: 'class' must be in [0, {c_dim})")
        c = torch.zeros(n, c_dim, device=self.device)
        c[:, class_idx] = 1
        return c

    def class_averages(self) -> torch.Tensor:
        """Every class's average w (computed once and kept on the network), for class-aware truncation."""
        return self.G.mapping.class_w_avg(torch.eye(self.G.c_dim, device=self.device))

    def _ws(self, seeds: Sequence[int], psi: float, class_idx: int | None, to_class: bool = False) -> torch.Tensor:
        """ws [len(seeds), num_ws, w_dim], one mapping pass per seed (see CHUNK); ``to_class``: truncated
        towards the class's own average w."""
        c = self._labels(class_idx, 1)
        return torch.cat([self.G.mapping(z_from_seed(int(s), self.G.z_dim).to(self.device), c, truncation_psi=psi,
                                         truncation_class=to_class) for s in seeds])

    def _synth(self, ws: torch.Tensor, noise: str, translate: tuple[float, float] = (0.0, 0.0),
               rotate: float = 0.0) -> np.ndarray:
        """HWC uint8 images of ``ws``; a movable network's input transform set to ``translate``, ``rotate``
        first (the identity unless given), a ValueError for any other network given a move."""
        check_noise_mode(noise)
        if self.movable or any(translate) or rotate:
            set_input_transform(self.G, translate, rotate)
        out = [to_uint8(self.G.synthesis(ws[i:i + CHUNK], noise_mode=noise)) for i in range(0, len(ws), CHUNK)]
        return np.concatenate(out)

    @torch.inference_mode()
    def image(self, seed: int, psi: float = 1.0, noise: str = "const", class_idx: int | None = None,
              edit: Sequence[float] = (), to_class: bool = False, translate: tuple[float, float] = (0.0, 0.0),
              rotate: float = 0.0) -> bytes:
        """The image of ``seed``; ``edit``: amounts along the first directions (in units of each direction's
        spread), all 0 or none for the unedited image; ``translate`` (image widths, x right, y down) and
        ``rotate`` (degrees, counterclockwise): a StyleGAN3 network's output moved."""
        ws = self._ws([seed], psi, class_idx, to_class)
        if any(edit):
            if self.directions is None or len(edit) > len(self.directions.directions):
                raise ValueError(f"at most {0 if self.directions is None else len(self.directions.directions)} "
                                 "edit amounts are accepted")
            ws = move_ws(self.G, ws, self.directions, edit)
        return png_bytes(self._synth(ws, noise, translate, rotate)[0])

    @torch.inference_mode()
    def mix(self, seed_a: int, seed_b: int, crossover: int, psi: float = 1.0, noise: str = "const",
            class_idx: int | None = None, to_class: bool = False) -> bytes:
        """Style layers [0, crossover) from seed A (coarse), [crossover, num_ws) from seed B (fine)."""
        ws = self._ws([seed_a, seed_b], psi, class_idx, to_class)
        mixed = mix_styles([ws[:1], ws[1:]], [crossover])
        return png_bytes(self._synth(mixed, noise)[0])

    @torch.inference_mode()
    def interp(self, seed_a: int, seed_b: int, steps: int, psi: float = 1.0, noise: str = "const",
               class_idx: int | None = None, to_class: bool = False) -> bytes:
        """``steps`` images from seed A to seed B (linear in W, endpoints included and exact), side by side."""
        if steps < 2:
            raise ValueError("steps must be at least 2")
        ws = self._ws([seed_a, seed_b], psi, class_idx, to_class)
        t = torch.linspace(0, 1, steps, device=ws.device).view(-1, 1, 1)
        ws = torch.lerp(ws[:1].expand(steps, -1, -1), ws[1:].expand(steps, -1, -1), t)
        images = self._synth(ws, noise)  # [steps, H, W, C]
        return png_bytes(np.concatenate(list(images), axis=1))
