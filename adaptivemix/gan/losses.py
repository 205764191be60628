"""Adversarial losses as named objects, and the R1 penalty.

Each loss maps D's logits to per-sample losses for the three phases: D on reals, D on
fakes, and G on fakes. Methods never hard-code a loss: they call the one in the context.
"""

from __future__ import annotations

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
