"""The ADA controller (:class:`AdaController`): adapts an :class:`~stylegan.training.augment.pipeline.AugmentPipe`'s
strength ``p`` from the discriminator's overfitting, by the r_t heuristic.

Feed it D's logits on (augmented) real images every minibatch; every ``interval`` (4) minibatches it computes
r_t = E[sign(D(real))] over the images seen (summed over processes when given a reduce function) and moves p
by sign(r_t − target) · N / (ada_kimg · 1000), N the number of images (= batch · interval), clamped to [0, 1];
target 0.6 and ada_kimg 500 by default, so p can go from 0 to 1 in 500k images.

Formulas: docs/design.md §3.8.
"""
from __future__ import annotations

from typing import Callable

import torch

from stylegan.training.augment.pipeline import AugmentPipe

__all__ = ["AdaController"]


class AdaController:
    """Adjusts an :class:`AugmentPipe`'s strength from the sign of D's outputs on real images.

    Usage in the training loop (every minibatch, after D's main step on augmented reals)::

        ada = AdaController(augment_pipe, target=0.6, interval=4, ada_kimg=500,
                            reduce_fn=lambda t: all_reduce_sum(t, dist_info))
        ...
        ada.update(real_logits)            # = ada.accumulate(real_logits); ada.step()

    ``accumulate(logits)`` adds Σ sign(logits) and the number of logits to per-process sums (on the logits'
    device, no host synchronisation); ``step()`` counts one minibatch and, every ``interval`` minibatches, sums
    the accumulators over processes with ``reduce_fn`` (a callable that sums a tensor across processes in
    place and/or returns the sum; all processes must call ``step`` in lockstep), computes
    r_t = Σ sign / N and moves p by sign(r_t − target) · N / (ada_kimg · 1000), N the number of images
    accumulated (the global batch times ``interval``), clamped to [0, 1], and writes p into the pipe. A
    minibatch split into several rounds calls ``accumulate`` per round and ``step`` once.

    ``state_dict()`` is JSON-able (p, r_t, pending sums, minibatch counter); ``load_state_dict`` restores it
    exactly and writes p into the pipe. The pending sums are this process's own; in multi-process training
    save rank 0's state right after an adjustment (``batches_pending == 0``) or accept that rank 0's pending
    signs (fewer than ``interval`` minibatches' worth) are counted for every process after a resume.
    """

    def __init__(self, pipe: AugmentPipe | None = None, target: float = 0.6, interval: int = 4,
                 ada_kimg: float = 500, p: float | None = None,
                 reduce_fn: Callable[[torch.Tensor], torch.Tensor | None] | None = None):
        if interval < 1:
            raise ValueError("interval must be >= 1")
        self.pipe = pipe
        self.target = float(target)
        self.interval = int(interval)
        self.ada_kimg = float(ada_kimg)
        self.reduce_fn = reduce_fn
        self.p = float(p if p is not None else (float(pipe.p) if pipe is not None else 0.0))
        self.rt: float | None = None
        self.batches_pending = 0
        self._acc: torch.Tensor | None = None  # [Σ sign, count]
        self._write_p()

    def _write_p(self) -> None:
        if self.pipe is not None:
            self.pipe.set_p(self.p)

    @torch.no_grad()
    def accumulate(self, real_logits: torch.Tensor) -> None:
        """Add D's logits on real images (any shape; one value per image)."""
        t = real_logits.detach().float()
        s = torch.stack([torch.sign(t).sum(), torch.tensor(float(t.numel()), device=t.device)])
        self._acc = s if self._acc is None else self._acc.to(s.device) + s

    @torch.no_grad()
    def step(self) -> bool:
        """Count one minibatch; every ``interval`` minibatches adjust p. Returns True when p was adjusted."""
        self.batches_pending += 1
        if self.batches_pending < self.interval:
            return False
        return self.flush()

    @torch.no_grad()
    def flush(self) -> bool:
        """Adjust p now from whatever has been accumulated (a collective call with ``reduce_fn``)."""
        acc = self._acc if self._acc is not None else torch.zeros(2)
        if self.reduce_fn is not None:
            acc = acc.clone()
            out = self.reduce_fn(acc)
            acc = out if isinstance(out, torch.Tensor) else acc
        total, count = (float(v) for v in acc.cpu().tolist())
        self._acc = None
        self.batches_pending = 0
        if count <= 0:
            return False
        self.rt = total / count
        sign = (self.rt > self.target) - (self.rt < self.target)
        self.p = min(max(self.p + sign * count / (self.ada_kimg * 1000), 0.0), 1.0)
        self._write_p()
        return True

    def update(self, real_logits: torch.Tensor) -> bool:
        """``accumulate(real_logits)`` then ``step()``."""
        self.accumulate(real_logits)
        return self.step()

    def state_dict(self) -> dict:
        acc = [0.0, 0.0] if self._acc is None else [float(v) for v in self._acc.cpu().tolist()]
        return {"p": self.p, "rt": self.rt, "sign_sum": acc[0], "count": acc[1],
                "batches_pending": self.batches_pending, "target": self.target, "interval": self.interval,
                "ada_kimg": self.ada_kimg}

    def load_state_dict(self, state: dict) -> None:
        """Restore p, r_t and the pending sums (the target / interval / ada_kimg of this controller are kept)."""
        self.p = float(state["p"])
        self.rt = None if state.get("rt") is None else float(state["rt"])
        self.batches_pending = int(state.get("batches_pending", 0))
        count = float(state.get("count", 0.0))
        self._acc = None if count == 0 and not state.get("sign_sum") else \
            torch.tensor([float(state.get("sign_sum", 0.0)), count])
        self._write_p()
