"""Adversarial losses as named objects, the R1 penalty and WGAN-GP's gradient penalty.

Each loss maps D's logits to per-sample losses for the three phases: D on reals, D on
fakes, and G on fakes. Methods never hard-code a loss: they call the one in the context.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from adaptivemix.registry import Registry

ADV_LOSSES: Registry = Registry("adversarial loss")


@dataclass(frozen=True)
class AdversarialLoss:
    name: str

    def d_real(self, logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def d_fake(self, logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def g_fake(self, logits: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


@ADV_LOSSES.register("nonsaturating")
class NonSaturating(AdversarialLoss):
    """Goodfellow et al. 2014, non-saturating G loss; StyleGAN2's default (softplus form)."""

    def d_real(self, logits):
        return F.softplus(-logits)

    def d_fake(self, logits):
        return F.softplus(logits)

    def g_fake(self, logits):
        return F.softplus(-logits)


@ADV_LOSSES.register("hinge")
class Hinge(AdversarialLoss):
    """Lim & Ye 2017 / Miyato et al. 2018 hinge loss."""

    def d_real(self, logits):
        return F.relu(1.0 - logits)

    def d_fake(self, logits):
        return F.relu(1.0 + logits)

    def g_fake(self, logits):
        return -logits


def build_adv_loss(name: str) -> AdversarialLoss:
    return ADV_LOSSES.get(name, "gan.adv_loss")(name)


def r1_penalty(logits: torch.Tensor, real: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ‖∇_x D(x)‖² (Mescheder et al. 2018); ``real`` requires grad."""
    (grad,) = torch.autograd.grad(logits.sum(), real, create_graph=True)
    return grad.square().flatten(1).sum(1).mean()


@ADV_LOSSES.register("wasserstein")
class Wasserstein(AdversarialLoss):
    """Arjovsky et al. 2017 / Gulrajani et al. 2017 (WGAN-GP): D is a critic with raw scores.

    Per sample: −D(x) on reals and D(G(z)) on fakes for the critic, −D(G(z)) for G.
    """

    def d_real(self, logits):
        return -logits

    def d_fake(self, logits):
        return logits

    def g_fake(self, logits):
        return -logits


def gradient_penalty(
    discriminate: Callable[[torch.Tensor], torch.Tensor],
    real: torch.Tensor,
    fake: torch.Tensor,
    generator: torch.Generator,
) -> torch.Tensor:
    """WGAN-GP's penalty (Gulrajani et al. 2017, arXiv 1704.00028, Algorithm 1).

    Mean over the batch of (‖∇_x̂ D(x̂)‖₂ − 1)² with x̂ = ε·real + (1−ε)·fake and one
    ε ~ U(0, 1) per sample, drawn from ``generator`` on its own device (then moved to the
    images'), so the stream depends on the seed alone. ``real`` and ``fake`` are detached:
    the penalty trains D only. The graph is kept (``create_graph``), so the result can be
    back-propagated into D's parameters. ``discriminate`` maps images to logits (N,).
    """
    shape = (real.shape[0],) + (1,) * (real.dim() - 1)
    eps = torch.rand(shape, generator=generator, device=generator.device).to(real)
    x_hat = (eps * real.detach() + (1.0 - eps) * fake.detach()).requires_grad_(True)
    (grad,) = torch.autograd.grad(discriminate(x_hat).sum(), x_hat, create_graph=True)
    return (grad.flatten(1).norm(dim=1) - 1.0).square().mean()
