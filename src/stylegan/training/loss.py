"""The training phases and their losses: G main (with style-mixing regularization in G's forward pass), G path
length, D main and D's regularization (R1 on reals, R2 on fakes), run by :class:`TrainingPhases` with the
adversarial loss as a strategy: the non-saturating logistic loss (:class:`NonSaturatingLoss`, StyleGAN and
StyleGAN2) and R3GAN's relativistic pairing loss (:class:`RpGANLoss`) here, ProGAN's WGAN-GP with drift in
:mod:`stylegan.training.wgan`. :func:`make_loss` picks one by name; :func:`cosine_gamma` is the schedule of
the R1/R2 weight.

Each function returns the per-sample loss to be averaged; callers scale it by the lazy interval (``gain``).

Formulas: docs/design.md §3.1–3.4, 3.9–3.11.
"""
from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
import torch.nn.functional as F

from stylegan.nn.conv import first_order


def nonsaturating_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """G: softplus(−D(G(z)))."""
    return F.softplus(-fake_logits)


def r1_penalty(real_img: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    """‖∇ₓD(x)‖² per sample on real images (``real_img`` must require grad); the loss is (γ/2) times it."""
    (grad,) = torch.autograd.grad(real_logits.sum(), real_img, create_graph=True, only_inputs=True)
    return grad.square().sum(dim=[1, 2, 3])


def r2_penalty(fake_img: torch.Tensor, fake_logits: torch.Tensor) -> torch.Tensor:
    """R2: R1's ‖∇ₓD(x)‖² per sample, on generated images (detached from G; ``fake_img`` must require grad)."""
    return r1_penalty(fake_img, fake_logits)


def cosine_gamma(start: float, end: float | None, kimg: float, total_kimg: float | None) -> float:
    """The R1 weight after ``kimg`` thousand images: cosine decay from ``start`` to ``end`` over ``total_kimg``,
    then constant, γ(t) = end + (start − end)·(1 + cos(π·min(t/T, 1)))/2; ``end`` None: ``start`` throughout."""
    if end is None:
        return start
    return end + (start - end) * (1 + math.cos(math.pi * min(kimg / total_kimg, 1.0))) / 2


def condition_strength(fade: tuple[float, float] | None, kimg: float) -> float:
    """λ of transitional conditional training (Shahbazi et al. 2022) after ``kimg`` thousand images: 0 before
    ``fade[0]``, rising linearly to 1 at ``fade[1]`` (a step there when they are equal), 1 after; ``fade`` None:
    1 throughout (conditional from the start)."""
    if fade is None:
        return 1.0
    start, end = fade
    if kimg >= end:
        return 1.0
    if kimg <= start:
        return 0.0
    return (kimg - start) / (end - start)


def saved_condition_strength(extra: dict) -> float:
    """λ at which a saved network was trained: from the options (or ``trained_with``) and kimg in a checkpoint's
    metadata; 1 for a network trained without ``--cond-fade`` or past its end."""
    def finite(v) -> bool:
        return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)

    held = extra.get("cond_strength")  # written by snapshots of this package since it holds λ in transfers
    if finite(held) and 0 <= held <= 1:
        return float(held)
    opts = extra.get("options") or extra.get("trained_with") or {}
    fade, kimg = opts.get("cond_fade") if isinstance(opts, dict) else None, extra.get("kimg")

    numbers = isinstance(fade, (list, tuple)) and len(fade) == 2 and all(map(finite, (*fade, kimg)))
    if not numbers or not 0 <= fade[0] <= fade[1]:  # no fade, or metadata this package did not write: as packaged
        return 1.0
    return condition_strength((float(fade[0]), float(fade[1])), float(kimg))


def set_condition_strength(strength: float, D: torch.nn.Module, *generators: torch.nn.Module) -> None:
    """Give D's class projection and the generators' class embeddings the weight λ = ``strength`` (see
    :func:`condition_strength`). D's own mapping network (c → cmap) is left alone: λ weighs its output."""
    D.epilogue.cond_strength = strength
    for G in generators:
        G.mapping.cond_strength = strength


def blur_sigma_at(start: float, fade_kimg: float, batch: int, kimg: float) -> float:
    """StyleGAN3-R's blur of D's input: σ falls linearly from ``start`` to 0 over ``fade_kimg · batch / 32``
    thousand images (0 when either is 0)."""
    fade = fade_kimg * batch / 32
    return start * max(1 - kimg / fade, 0.0) if start > 0 and fade > 0 else 0.0


def blur_images(img: torch.Tensor, sigma: float) -> torch.Tensor:
    """The Gaussian-like blur ``2^(−(x/σ)²)`` (separable, ⌊3σ⌋ taps each side, zero padding, same size)."""
    from stylegan.nn.filter_design import gaussian_taps
    from stylegan.nn.upfirdn import upfirdn2d

    f = gaussian_taps(sigma)
    if f is None:
        return img
    p = (f.numel() - 1) // 2
    return upfirdn2d(img, f.to(img.device), padding=(p, p, p, p))


def path_lengths(img: torch.Tensor, ws: torch.Tensor) -> torch.Tensor:
    """‖J_wᵀ y‖₂ per sample, y ~ N(0, I)/sqrt(H·W) an image-sized random direction; J_wᵀy is the gradient of
    Σ(G(w)·y) w.r.t. w, its squared norm averaged over the ws of the sample."""
    y = torch.randn_like(img) / math.sqrt(img.shape[2] * img.shape[3])
    (grad,) = torch.autograd.grad((img * y).sum(), ws, create_graph=True, only_inputs=True)
    return grad.square().sum(dim=2).mean(dim=1).sqrt()


def mixing_ws(G, z: torch.Tensor, c: torch.Tensor | None, prob: float, update_w_avg: bool = False) -> torch.Tensor:
    """Mapping with style-mixing regularization: with probability ``prob`` the batch switches, at a crossover
    drawn uniformly from [1, num_ws), to the ws of a second latent. A growing generator draws the crossover
    among the ws its current stage uses; one that takes a single w has nothing to mix."""
    ws = G.mapping(z, c, update_w_avg=update_w_avg)
    num_ws = G.num_active_ws
    if prob > 0 and num_ws > 1:
        cutoff = int(torch.randint(1, num_ws, ()).item())
        if torch.rand(()).item() < prob:
            ws2 = G.mapping(torch.randn_like(z), c)
            ws = torch.cat([ws[:, :cutoff], ws2[:, cutoff:]], dim=1)
    return ws


class NonSaturatingLoss:
    """The non-saturating logistic loss: G softplus(−D(G(z))); D softplus(D(G(z))) + softplus(−D(x))."""

    name = "nonsaturating"
    paired = False  # D's and G's losses take fakes and reals apart (see RpGANLoss)
    twice_in_main = False  # D's main loss is differentiated once (see WGANGPLoss)

    def g(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        return nonsaturating_g_loss(fake_logits)

    def d_fake(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(fake_logits)

    def d_real(self, real_logits: torch.Tensor) -> torch.Tensor:
        return F.softplus(-real_logits)

    def d_extra(self, phases: "TrainingPhases", real_img, fake_img, real_c, real_logits):
        """Terms of D's main loss beyond the two above (none here), per sample, with their statistics."""
        return None, {}


def rpgan_d_loss(fake_logits: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    """D: softplus(D(G(zᵢ)) − D(xᵢ)), each real paired with the fake of the same index."""
    return F.softplus(fake_logits - real_logits)


def rpgan_g_loss(fake_logits: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    """G: softplus(D(xᵢ) − D(G(zᵢ))); ``real_logits`` is a constant for G's gradient."""
    return F.softplus(real_logits.detach() - fake_logits)


class RpGANLoss:
    """R3GAN's relativistic pairing loss (Huang et al. 2024): each real xᵢ paired with the fake G(zᵢ) of the
    minibatch. ``paired``: D's loss takes both logits in one graph, and G's step runs D on the reals too."""

    name = "rpgan"
    paired = True
    twice_in_main = False

    def g(self, fake_logits: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
        return rpgan_g_loss(fake_logits, real_logits)

    def d(self, fake_logits: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
        return rpgan_d_loss(fake_logits, real_logits)


@dataclass
class TrainingPhases:
    """The four phases of StyleGAN2 training, with ``adversarial`` as the adversarial loss.

    r1_gamma: R1 weight γ. r2_gamma: R2 weight (0: off); the loop sets both each step (their schedule).
    pl_weight: path-length weight (2). pl_decay: decay of the running mean a (0.01).
    pl_batch_shrink: the PL batch is this many times smaller (2). style_mixing: mixing probability (0.9).
    blur_sigma: blur of every image D sees, before augmentation (StyleGAN3-R; the loop sets it each step).
    """

    G: torch.nn.Module
    D: torch.nn.Module
    r1_gamma: float = 10.0
    r2_gamma: float = 0.0
    pl_weight: float = 2.0
    pl_decay: float = 0.01
    pl_batch_shrink: int = 2
    style_mixing: float = 0.9
    augment: Callable[[torch.Tensor], torch.Tensor] | None = None  # applied to every image D sees
    blur_sigma: float = 0.0
    adversarial: Any = field(default_factory=NonSaturatingLoss)

    def __post_init__(self):
        device = next(self.G.parameters()).device
        self.pl_mean = torch.zeros([], device=device)

    def run_D(self, img, c):
        """D on (blurred, augmented) images; R1's and R2's gradients are taken w.r.t. the image before both."""
        if self.blur_sigma > 0:
            img = blur_images(img, self.blur_sigma)
        if self.augment is not None:
            img = self.augment(img)
        return self.D(img, c)

    def run_G(self, z, c, update_w_avg=False):
        ws = mixing_ws(self.G, z, c, self.style_mixing, update_w_avg=update_w_avg)
        if hasattr(self.G.synthesis, "set_magnitude_ema_beta"):  # alias-free: its magnitude averages too
            return self.G.synthesis(ws, update_emas=update_w_avg), ws
        return self.G.synthesis(ws, noise_mode="random"), ws

    def g_main(self, z, c, gain: float = 1.0, real_img=None, real_c=None) -> dict[str, torch.Tensor]:
        """G's adversarial loss; a paired loss takes the real batch too."""
        with first_order():
            img, _ = self.run_G(z, c, update_w_avg=True)
            logits = self.run_D(img, c)
            loss = self.adversarial.g(logits, self._g_real_logits(real_img, real_c))
            total = loss.mean()
            stats = {"Loss/G/loss": loss.detach(), "Loss/scores/fake": logits.detach()}
            (total * gain).backward()
        return stats

    def _g_real_logits(self, real_img, real_c) -> torch.Tensor | None:
        """D on the (augmented) reals in G's step, a constant for G's gradient: for paired losses only."""
        if not self.adversarial.paired:
            return None
        if real_img is None:
            raise ValueError(f"the {self.adversarial.name} loss needs the real batch in G's step")
        with torch.no_grad():
            return self.run_D(real_img.detach(), real_c)

    def g_pl(self, z, c, gain: float) -> dict[str, torch.Tensor]:
        n = max(z.shape[0] // self.pl_batch_shrink, 1)
        img, ws = self.run_G(z[:n], None if c is None else c[:n])
        lengths = path_lengths(img, ws)
        self.pl_mean.copy_(self.pl_mean.lerp(lengths.detach().mean(), self.pl_decay))
        penalty = (lengths - self.pl_mean).square()
        # `img[:, 0, 0, 0] * 0` keeps every synthesis parameter in the graph (a no-op for the gradient).
        ((img[:, 0, 0, 0] * 0 + penalty * self.pl_weight).mean() * gain).backward()
        return {"Loss/pl_penalty": penalty.detach(), "Loss/G/reg": (penalty * self.pl_weight).detach()}

    def d_main(self, real_img, real_c, z, c, gain: float = 1.0, r1: bool = False) -> dict[str, torch.Tensor]:
        """D on fakes, then on reals (two backward passes, so that one graph at a time is kept; a paired loss
        takes both in one); with ``r1`` also the penalties of positive weight, R1 and R2 (configurations
        without lazy regularization)."""
        with torch.no_grad():
            fake, _ = self.run_G(z, c)
        r1_gain, r2_gain = (gain if r1 and w > 0 else 0.0 for w in (self.r1_gamma, self.r2_gamma))
        once = r1_gain == 0 and r2_gain == 0 and not self.adversarial.twice_in_main
        with first_order() if once else contextlib.nullcontext():
            if self.adversarial.paired:
                return self._d_paired(real_img, real_c, fake, c, gain, r1_gain, r2_gain)
            stats = self._d_fake(fake, c, gain, main=True, r2_gain=r2_gain)
            stats.update(self._d_real(real_img, real_c, gain, main=True, r1_gain=r1_gain, fake=fake))
        stats["Loss/D/loss"] = stats.pop("_real_loss") + stats.pop("_fake_loss")
        return stats

    def d_r1(self, real_img, real_c, gain: float, z=None, c=None) -> dict[str, torch.Tensor]:
        """The lazy regularization phase of D: R1 on the reals; with ``z`` (and ``c``), R2 on fakes generated
        from them. Each only while its weight is positive."""
        stats = self._d_real(real_img, real_c, 0.0, main=False, r1_gain=gain) if self.r1_gamma > 0 else {}
        if z is not None and self.r2_gamma > 0:
            with torch.no_grad():
                fake, _ = self.run_G(z, c)
            stats.update(self._d_fake(fake, c, 0.0, main=False, r2_gain=gain))
        return stats

    def _d_fake(self, fake, c, gain, main: bool, r2_gain: float):
        """D's loss on fakes (``main``) and R2 on them (``r2_gain`` > 0), one backward pass."""
        y = fake.detach().requires_grad_(r2_gain > 0)
        logits = self.run_D(y, c)
        stats = {}
        if main:
            loss = self.adversarial.d_fake(logits)
            total = loss.mean() * gain
            stats["_fake_loss"], stats["Loss/scores/fake"] = loss.detach(), logits.detach()
        else:
            total = (logits * 0).mean()
        if r2_gain > 0:
            total = total + self._r2(y, logits, r2_gain, stats).mean()
        total.backward()
        return stats

    def _d_paired(self, real_img, real_c, fake, c, gain, r1_gain: float, r2_gain: float):
        """D's loss of a paired adversarial loss on reals and fakes together, with R1 and R2 when their gains are
        positive: one graph, one backward pass."""
        x = real_img.detach().requires_grad_(r1_gain > 0)
        y = fake.detach().requires_grad_(r2_gain > 0)
        real_logits, fake_logits = self.run_D(x, real_c), self.run_D(y, c)
        loss = self.adversarial.d(fake_logits, real_logits)
        stats = {"Loss/D/loss": loss.detach(), "Loss/scores/real": real_logits.detach(),
                 "Loss/scores/fake": fake_logits.detach()}
        total = loss.mean() * gain
        if r1_gain > 0:
            total = total + self._r1(x, real_logits, r1_gain, stats).mean()
        if r2_gain > 0:
            total = total + self._r2(y, fake_logits, r2_gain, stats).mean()
        total.backward()
        return stats

    def _r1(self, x, logits, r1_gain: float, stats) -> torch.Tensor:
        """(γ/2)·R1 per sample [N, 1] times ``r1_gain``, with its statistics."""
        penalty = r1_penalty(x, logits)
        stats["Loss/r1_penalty"] = penalty.detach()
        stats.setdefault("Loss/D/reg", (penalty * self.r1_gamma / 2).detach())
        return penalty.unsqueeze(1) * (self.r1_gamma / 2) * r1_gain

    def _r2(self, y, logits, r2_gain: float, stats) -> torch.Tensor:
        """(γ₂/2)·R2 per sample [N, 1] times ``r2_gain``, with its statistics."""
        penalty = r2_penalty(y, logits)
        stats["Loss/r2_penalty"] = penalty.detach()
        return penalty.unsqueeze(1) * (self.r2_gamma / 2) * r2_gain

    def _d_real(self, real_img, real_c, gain, main: bool, r1_gain: float, fake=None):
        x = real_img.detach().requires_grad_(r1_gain > 0)
        logits = self.run_D(x, real_c)
        stats = {}
        if main:
            real_loss = self.adversarial.d_real(logits)
            extra, extra_stats = self.adversarial.d_extra(self, real_img, fake, real_c, logits)
            if extra is not None:
                real_loss = real_loss + extra
            loss = real_loss * gain
            stats["_real_loss"] = real_loss.detach()
            stats["Loss/scores/real"] = logits.detach()
            stats.update(extra_stats)
        else:
            loss = logits * 0
        if r1_gain > 0:
            loss = loss + self._r1(x, logits, r1_gain, stats)
        loss.mean().backward()
        return stats


def make_loss(kind: str, G: torch.nn.Module, D: torch.nn.Module, **kwargs) -> TrainingPhases:
    """The training phases with the adversarial loss ``kind``: ``nonsaturating``, ``wgangp`` or ``rpgan``."""
    if kind == "nonsaturating":
        return TrainingPhases(G, D, adversarial=NonSaturatingLoss(), **kwargs)
    if kind == "rpgan":
        return TrainingPhases(G, D, adversarial=RpGANLoss(), **kwargs)
    if kind == "wgangp":
        from stylegan.training.wgan import WGANGPLoss

        return TrainingPhases(G, D, adversarial=WGANGPLoss(), **kwargs)
    raise ValueError(f"unknown loss {kind!r}; expected nonsaturating, wgangp or rpgan")
