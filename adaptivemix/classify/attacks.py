"""Adversarial attacks (L∞) on pixels in [0, 1]: a registry the robustness evaluation uses.

Options come from ``classify.attacks.<name>``; ``eps`` and step sizes are in pixel units
(8/255 ≈ 0.031 is CIFAR's usual budget). The model is called in eval mode and normalises
inside, so the perturbation lives in pixel space as the threat model says.

- ``fgsm``: Goodfellow, Shlens, Szegedy, "Explaining and Harnessing Adversarial Examples",
  ICLR 2015, arXiv 1412.6572: ``x_adv = clamp(x + ε·sign(∇ₓ CE(f(x), y)), 0, 1)``.
- ``pgd``: Madry, Makelov, Schmidt, Tsipras, Vladu, "Towards Deep Learning Models Resistant to
  Adversarial Attacks", ICLR 2018, arXiv 1706.06083: a uniform start in the ε-ball (drawn
  from the run's generator), then ``steps`` signed-gradient ascent steps of CE, each
  projected back to the ε-ball around ``x`` and to [0, 1].

The AdaptiveMix code takes its attacks from torchattacks without stating ε; the defaults
here (ε = 8/255; PGD 10 steps of 2/255) are the common CIFAR setting. Attacks leave the
model's train/eval modes and its parameters' ``.grad`` as they found them.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from adaptivemix.options import Configurable
from adaptivemix.registry import Registry

#: name -> Attack subclass
ATTACKS: Registry = Registry("attack")
OPTIONS_SECTION = "classify.attacks"


class Attack(Configurable):
    def perturb(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        """Adversarial images: ``‖x_adv − x‖∞ ≤ eps`` and ``x_adv`` in [0, 1]."""
        raise NotImplementedError


def build_attack(name: str, options: dict | None = None) -> Attack:
    return ATTACKS.get(name, OPTIONS_SECTION).from_config(name, options, OPTIONS_SECTION)


@contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """Every submodule in eval mode for the body; each one's previous mode restored after."""
    modes = [(m, m.training) for m in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes:
            m.training = training


def input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """∇ₓ of the summed cross-entropy (per-sample gradients; parameters' .grad untouched)."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model(x), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, [x])
    return grad


def _check_eps(eps: float) -> None:
    if not 0 < eps <= 1:
        raise ValueError("eps: a number in (0, 1]")


@dataclass(frozen=True)
class FGSMOptions:
    eps: float = 8 / 255  # L∞ budget in pixel units

    def __post_init__(self):
        _check_eps(self.eps)


@ATTACKS.register("fgsm")
class FGSM(Attack):
    Options = FGSMOptions

    def perturb(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        with eval_mode(model):
            grad = input_gradient(model, x, y)
        return (x.detach() + self.options.eps * grad.sign()).clamp(0.0, 1.0)


@dataclass(frozen=True)
class PGDOptions:
    eps: float = 8 / 255  # L∞ budget in pixel units
    steps: int = 10  # ascent steps
    step_size: float = 2 / 255  # size of each signed-gradient step
    random_start: bool = True  # start uniformly in the ε-ball (else at x)

    def __post_init__(self):
        _check_eps(self.eps)
        if not self.steps >= 1:
            raise ValueError("steps: an integer ≥ 1")
        if not 0 < self.step_size <= self.eps:
            raise ValueError("step_size: a number in (0, eps]")


@ATTACKS.register("pgd")
class PGD(Attack):
    Options = PGDOptions

    def perturb(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator
    ) -> torch.Tensor:
        opt = self.options
        x = x.detach()
        lower, upper = (x - opt.eps).clamp_min(0.0), (x + opt.eps).clamp_max(1.0)
        x_adv = x
        if opt.random_start:
            u = torch.rand(x.shape, generator=generator, device=generator.device).to(x)
            x_adv = (x + (2.0 * u - 1.0) * opt.eps).clamp(0.0, 1.0)
        with eval_mode(model):
            for _ in range(opt.steps):
                grad = input_gradient(model, x_adv, y)
                x_adv = torch.minimum(
                    torch.maximum(x_adv + opt.step_size * grad.sign(), lower), upper
                )
        return x_adv


def _model_device(model: nn.Module, fallback: torch.device) -> torch.device:
    tensor = next(itertools.chain(model.parameters(), model.buffers()), None)
    return fallback if tensor is None else tensor.device


def robust_accuracy(
    model: nn.Module,
    attack: Attack | None,
    x: torch.Tensor,
    y: torch.Tensor,
    batch_size: int,
    generator: torch.Generator,
) -> float:
    """Top-1 accuracy on ``attack.perturb`` of each batch (clean accuracy when ``attack`` is None).

    ``x`` pixels in [0, 1], ``y`` labels; batches go to the model's device. Example::

        robust_accuracy(model, build_attack("pgd"), x_test, y_test, 256, generator)
    """
    device = _model_device(model, x.device)
    correct = 0
    with eval_mode(model):
        for start in range(0, x.shape[0], batch_size):
            xb = x[start : start + batch_size].to(device)
            yb = y[start : start + batch_size].to(device)
            if attack is not None:
                xb = attack.perturb(model, xb, yb, generator)
            with torch.no_grad():
                correct += int((model(xb).argmax(dim=1) == yb).sum())
    return correct / max(x.shape[0], 1)
