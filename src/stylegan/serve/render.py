"""What the service computes: single images, style mixes and interpolation strips, as PNG bytes; the single
images of a StyleGAN3 network also translated and rotated.

These functions run on the inference worker's thread only. Every input has been validated by the web layer;
the checks here are the last line (they raise ValueError, which the web layer reports as a 422).
"""
from __future__ import annotations

import io
import logging
from typing import Sequence

import numpy as np
import torch

from stylegan.images import array_to_pil, to_uint8
from stylegan.networks.generator import mix_styles
from stylegan.networks.stylegan3 import has_input_transform, set_input_transform
from stylegan.nn.noise import check_noise_mode
from stylegan.tools.directions import move_ws
from stylegan.tools.generate import z_from_seed

log = logging.getLogger("stylegan.serve")

#: Images per synthesis pass. 1 keeps every image bit-identical to the same image requested alone (a batched
#: convolution rounds differently) and the memory of a request that of one image.
CHUNK = 1

#: How the service computes its images (``stylegan serve --synthesis``): ``eager``, PyTorch's float32 modules as
#: they stand (the reference); ``compiled``, the synthesis network compiled by ``torch.compile`` for one image
#: (static shapes); ``onnx``, the synthesis network exported to ONNX for one image and run by onnxruntime. Both
#: are float32 and are used for noise ``const`` (the page's default, and every mix and strip it asks for) of a
#: network without an input transform; noise ``random`` and ``none`` and StyleGAN3 networks stay eager. Every
#: path is deterministic: an image is computed the same way whatever else is queued.
SYNTHESIS_PATHS = ("eager", "compiled", "onnx")
#: The largest difference (image units, [-1, 1]) a faster path may have from eager float32; checked on one image
#: at start-up, where a larger one (or any failure to build the path) keeps eager. Measured on the packaged 32x32
#: networks over 100 seeds: compiled 4e-6, onnx 2e-5 at most; uint8 pixels at most 1 level apart, in a few
#: values per image (docs/speed.md, "Serving speed").
FAST_TOLERANCE = 1e-4


def png_bytes(arr: np.ndarray) -> bytes:
    """HWC uint8 → PNG bytes (deterministic for equal pixels)."""
    buf = io.BytesIO()
    array_to_pil(arr).save(buf, format="PNG")
    return buf.getvalue()


def _one_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:200]}" if text else type(e).__name__


class _FastSynthesis:
    """``G.synthesis`` at noise ``const`` for one image on a faster path, checked against eager float32 on one
    image when built; ``ok`` is False (with :attr:`reason`, warned in one line) where the path is unavailable,
    fails or differs by more than ``tolerance``: the caller then stays eager."""

    name = "fast"

    def __init__(self, G, ws: torch.Tensor, tolerance: float = FAST_TOLERANCE):
        self.G, self.tolerance = G, tolerance
        self.ok, self.reason, self.max_abs_diff = False, None, None
        ws = ws[:1].contiguous()
        try:
            self._build(ws)
            with torch.inference_mode():
                out = self._run(ws)
                ref = G.synthesis(ws, noise_mode="const")
            diff = float((out.float() - ref.float()).abs().max())
        except Exception as e:  # noqa: BLE001 - no compiler, no onnxruntime, an unsupported operation, ...
            self._give_up(f"the {self.name} synthesis is unavailable ({_one_line(e)})")
            return
        self.max_abs_diff = diff
        if not diff <= tolerance:
            self._give_up(f"the {self.name} synthesis differs from eager by {diff:.2e} > {tolerance:.0e}")
            return
        self.ok = True

    def _give_up(self, reason: str) -> None:
        self.reason = reason
        log.warning("%s; serving eager float32", reason)

    def _build(self, ws: torch.Tensor) -> None:
        raise NotImplementedError

    def _run(self, ws: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def __call__(self, ws: torch.Tensor) -> torch.Tensor:
        """Images [1, C, H, W] of ``ws`` [1, num_ws, w_dim] at noise ``const``."""
        return self._run(ws.contiguous())


class CompiledSynthesis(_FastSynthesis):
    """The synthesis network compiled by ``torch.compile`` (static shapes, the thread count of the time: the
    generated kernels keep it). A call that would need compiling again (a guard that no longer holds) is computed
    eager instead of recompiled, so that the same inputs always take the same path."""

    name = "compiled"

    def __init__(self, G, ws: torch.Tensor, tolerance: float = FAST_TOLERANCE):
        self.fallbacks = 0  # calls computed eager after compiling
        super().__init__(G, ws, tolerance)
        if self.ok and self.fallbacks:  # the image it was checked on did not run compiled
            self.ok = False
            self._give_up("the compiled synthesis did not run the image it was checked on")

    def _build(self, ws: torch.Tensor) -> None:
        if not hasattr(torch.compiler, "set_stance"):
            raise RuntimeError(f"torch {torch.__version__} has no torch.compiler.set_stance (torch 2.6 or later)")
        self._fn = torch.compile(self.G.synthesis, dynamic=False)
        with torch.inference_mode(), torch.compiler.set_stance("default"):
            self._fn(ws, noise_mode="const")  # compiles

    def _run(self, ws: torch.Tensor) -> torch.Tensor:
        try:
            with torch.compiler.set_stance("fail_on_recompile"):
                return self._fn(ws, noise_mode="const")
        except Exception as e:  # noqa: BLE001 - a guard that failed: this input is computed eager, always
            if self.fallbacks == 0:
                log.warning("compiled synthesis not used for an input (%s); such inputs are computed eager",
                            _one_line(e))
            self.fallbacks += 1
            return self.G.synthesis(ws, noise_mode="const")


class _SynthesisConst(torch.nn.Module):
    def __init__(self, synthesis):
        super().__init__()
        self.synthesis = synthesis

    def forward(self, ws):
        return self.synthesis(ws, noise_mode="const")


class OnnxSynthesis(_FastSynthesis):
    """The synthesis network exported to ONNX for one image (ws [1, num_ws, w_dim] → img; the stored noise
    images are constants of the graph) and run by onnxruntime on the CPU with torch's thread count. Needs
    onnx, onnxscript and onnxruntime (``pip install onnx onnxscript onnxruntime``)."""

    name = "onnx"

    def _build(self, ws: torch.Tensor) -> None:
        import tempfile
        from pathlib import Path

        from stylegan.tools.export import quiet_exporter

        import onnxruntime

        if ws.device.type != "cpu":
            raise ValueError("onnxruntime runs here on the CPU; the network is on " + str(ws.device))
        with tempfile.TemporaryDirectory() as tmp, torch.no_grad(), quiet_exporter():
            path = Path(tmp) / "synthesis.onnx"
            torch.onnx.export(_SynthesisConst(self.G.synthesis).eval(), (ws.clone(),), str(path),
                              input_names=["ws"], output_names=["img"], dynamo=True, external_data=False,
                              verbose=False)
            model = path.read_bytes()
        opts = onnxruntime.SessionOptions()
        opts.intra_op_num_threads, opts.inter_op_num_threads = torch.get_num_threads(), 1
        self._session = onnxruntime.InferenceSession(model, opts, providers=["CPUExecutionProvider"])

    def _run(self, ws: torch.Tensor) -> torch.Tensor:
        return torch.from_numpy(self._session.run(["img"], {"ws": ws.detach().float().cpu().numpy()})[0])


FAST_PATHS = {"compiled": CompiledSynthesis, "onnx": OnnxSynthesis}


class Renderer:
    """Wraps a generator (eval mode, no grads) with the three operations the service offers. ``synthesis``:
    one of :data:`SYNTHESIS_PATHS`; :attr:`synthesis` is the path in use (``compiled`` and ``onnx`` fall back
    to ``eager`` where they cannot be used, with a one-line warning)."""

    def __init__(self, G, directions=None, synthesis: str = "eager"):
        if synthesis not in SYNTHESIS_PATHS:
            raise ValueError(f"synthesis must be one of {', '.join(SYNTHESIS_PATHS)}, got {synthesis!r}")
        self.G = G
        self.directions = directions  # latent directions of the page's edit sliders (None: no edits)
        self.movable = has_input_transform(G)  # StyleGAN3: every synthesis sets the input transform it wants
        try:
            self.device = next(G.parameters()).device
        except (AttributeError, StopIteration):
            self.device = torch.device("cpu")
        self.fast: _FastSynthesis | None = None  # the faster path for noise const, None: eager only
        self.synthesis = "eager"
        if synthesis != "eager":
            if self.movable:
                log.warning("the %s synthesis is not used for a network with an input transform (StyleGAN3); "
                            "serving eager float32", synthesis)
            else:
                with torch.inference_mode():
                    ws = self._ws([0], 1.0, 0 if self.G.c_dim else None)
                fast = FAST_PATHS[synthesis](G, ws)
                if fast.ok:
                    self.fast, self.synthesis = fast, synthesis

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
        if self.fast is not None and noise == "const":
            synth = self.fast
        else:
            def synth(w):
                return self.G.synthesis(w, noise_mode=noise)
        out = [to_uint8(synth(ws[i:i + CHUNK])) for i in range(0, len(ws), CHUNK)]
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
