"""ProGAN's loss: WGAN-GP with the drift term.

    D: D(G(z)) − D(x) + λ·(‖∇ D(x̂)‖₂ − 1)² + ε·D(x)²,  with x̂ = x + u·(G(z) − x), u ~ U(0, 1) per sample;
    G: −D(G(z)).

λ = 10, ε = 0.001. Per-sample losses, averaged by the caller; the phases that use them are
:class:`stylegan.training.loss.TrainingPhases`.

Formulas: docs/design.md §3.6.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

WGAN_LAMBDA = 10.0
WGAN_TARGET = 1.0
DRIFT_EPSILON = 0.001


def wgan_g_loss(fake_logits: torch.Tensor) -> torch.Tensor:
    """G: −D(G(z))."""
    return -fake_logits


def wgan_d_loss(fake_logits: torch.Tensor, real_logits: torch.Tensor) -> torch.Tensor:
    """D, the critic's Wasserstein estimate: D(G(z)) − D(x)."""
    return fake_logits - real_logits


def interpolate(real: torch.Tensor, fake: torch.Tensor, u: torch.Tensor | None = None) -> torch.Tensor:
    """x̂ = x + u·(G(z) − x) with one u ~ U(0, 1) per sample (or the given ``u`` [N])."""
    if u is None:
        u = torch.rand(real.shape[0], device=real.device, dtype=real.dtype)
    return torch.lerp(real, fake, u.to(real.dtype).reshape(-1, *([1] * (real.ndim - 1))))


def gradient_penalty(mixed: torch.Tensor, mixed_logits: torch.Tensor, target: float = WGAN_TARGET) -> torch.Tensor:
    """(‖∇ₓ̂ D(x̂)‖₂ − target)² per sample (``mixed`` must require grad); the loss is λ times it."""
    (grad,) = torch.autograd.grad(mixed_logits.sum(), mixed, create_graph=True, only_inputs=True)
    return (grad.flatten(1).norm(dim=1) - target).square()


def drift(real_logits: torch.Tensor) -> torch.Tensor:
    """D(x)² per sample, which keeps the critic's output near zero; the loss is ε times it."""
    return real_logits.square()


@dataclass
class WGANGPLoss:
    """WGAN-GP + drift as the adversarial loss of :class:`stylegan.training.loss.TrainingPhases` (R1 and path
    length stay available there; both are off in ProGAN's recipe).

    wgan_lambda: gradient-penalty weight λ (10). wgan_target: the gradient norm it pulls towards (1).
    drift_epsilon: drift weight ε (0.001).
    """

    wgan_lambda: float = WGAN_LAMBDA
    wgan_target: float = WGAN_TARGET
    drift_epsilon: float = DRIFT_EPSILON
    name = "wgangp"
    paired = False
    twice_in_main = True  # the gradient penalty differentiates D twice in its main step

    def g(self, fake_logits: torch.Tensor, real_logits: torch.Tensor | None = None) -> torch.Tensor:
        return wgan_g_loss(fake_logits)

    def d_fake(self, fake_logits: torch.Tensor) -> torch.Tensor:
        return fake_logits

    def d_real(self, real_logits: torch.Tensor) -> torch.Tensor:
        return -real_logits

    def d_extra(self, phases, real_img, fake_img, real_c, real_logits):
        """λ·(‖∇D(x̂)‖ − 1)² on interpolates x̂ (real's class) and ε·D(x)², per sample."""
        mixed = interpolate(real_img.detach(), fake_img.detach()).requires_grad_(True)
        gp = gradient_penalty(mixed, phases.run_D(mixed, real_c), self.wgan_target)
        reg = gp.unsqueeze(1) * self.wgan_lambda + drift(real_logits) * self.drift_epsilon
        return reg, {"Loss/gp_penalty": gp.detach(), "Loss/D/reg": reg.detach()}
