"""Augmentations of D's inputs: a registered kind that composes with any GAN method.

An augmentation is applied to every image D sees (reals and fakes, in the D and G steps),
before any method-specific mixing, and must be differentiable in its input so that G's
gradient flows through it (DiffAugment's requirement). It may keep state that the trainer
checkpoints (ADA's probability ``p``) and adjust it through ``update``, which the trainer
calls once per D step, after the step's G update, with a :class:`DStepReport`: the real
logits that the D loss itself computed (methods report them through
``StepContext.report_real_logits``), so no extra D pass is needed.

:class:`RealSignStatistic` and :class:`AdaptiveProbability` are ADA's overfitting heuristic
(Karras et al. 2020, arXiv 2006.06676, §3: ``r_t = E[sign(D(real))]``; stylegan2-ada-pytorch's
``Loss/signs/real`` statistic and the ``ada_interval`` adjustment of its training loop),
reusable by any augmentation or method that adapts a probability the same way (APA).

A run's variant name composes them with a method: ``adaptivemix+diffaugment`` is AdaptiveMix
with DiffAugment on every D input (see :mod:`adaptivemix.gan.variants`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import torch

from adaptivemix.gan.distributed import DistEnv
from adaptivemix.options import Configurable
from adaptivemix.registry import Registry

AUGMENTS: Registry = Registry("augmentation")


@dataclass(frozen=True)
class DStepReport:
    """What one D step tells the augmentations."""

    real_logits: Sequence[torch.Tensor]  # D's logits on reals in the step's loss (detached)
    batch_size: int  # the step's global number of real images
    dist: DistEnv = field(default_factory=DistEnv)
    device: str | torch.device = "cpu"  # where a cross-rank reduction runs


class RealSignStatistic:
    """Mean of ``sign(logit)`` over every real logit reported since the last :meth:`take`,
    over all ranks (upstream: ``training_stats.report('Loss/signs/real', ...)`` collected
    every ``ada_interval`` steps). The (sum, count) pair is reduced over ranks at each
    :meth:`add`, so every rank holds the same figures and a rank-0 checkpoint resumes exactly.
    """

    def __init__(self) -> None:
        self.totals = torch.zeros(2)  # (Σ sign, count), averaged over ranks

    def add(self, report: DStepReport) -> None:
        """Every rank must call it once per D step (it may all-reduce)."""
        local = torch.zeros(2, device=report.device)
        for logits in report.real_logits:
            signs = torch.sign(logits.detach().float()).to(local.device)
            local = local + torch.stack([signs.sum(), local.new_tensor(signs.numel())])
        self.totals = self.totals.to(local.device) + report.dist.mean(local)

    def take(self) -> float | None:
        """The mean sign since the last take (None if nothing was reported); resets."""
        total, count = self.totals.tolist()
        self.totals = torch.zeros_like(self.totals)
        return total / count if count > 0 else None

    def state_dict(self) -> dict:
        return {"totals": self.totals.tolist()}

    def load_state_dict(self, state: dict) -> None:
        if "totals" in state:
            self.totals = torch.tensor(state["totals"], dtype=torch.float32)


class AdaptiveProbability:
    """ADA's rule: every ``interval`` D steps, ``p ← max(p + sign(r_t − target) · batch ·
    interval / (kimg · 1000), 0)`` with ``r_t`` from :class:`RealSignStatistic`. No upper
    clamp (as upstream); an interval with no real logit leaves ``p`` unchanged.

        schedule = AdaptiveProbability(target=0.6, interval=4, kimg=500, p=0.0)
        schedule.observe(report)  # once per D step; True when p was adjusted
    """

    def __init__(self, target: float, interval: int, kimg: float, p: float = 0.0):
        self.target, self.interval, self.kimg = target, interval, kimg
        self.p, self.steps, self.last_rt = float(p), 0, 0.0
        self.signs = RealSignStatistic()

    def observe(self, report: DStepReport) -> bool:
        self.signs.add(report)
        self.steps += 1
        if self.steps < self.interval:
            return False
        self.steps = 0
        r_t = self.signs.take()
        if r_t is None:
            return False
        self.last_rt = r_t
        direction = (r_t > self.target) - (r_t < self.target)
        step = report.batch_size * self.interval / (self.kimg * 1000.0)
        self.p = max(self.p + direction * step, 0.0)
        return True

    def state_dict(self) -> dict:
        return {"p": self.p, "steps": self.steps, "last_rt": self.last_rt,
                **self.signs.state_dict()}  # fmt: skip

    def load_state_dict(self, state: dict) -> None:
        self.p = float(state.get("p", self.p))
        self.steps = int(state.get("steps", 0))
        self.last_rt = float(state.get("last_rt", 0.0))
        self.signs.load_state_dict(state)


class Augmentation(Configurable):
    """Base class: the identity. Subclasses override ``__call__`` and maybe ``update``."""

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment a batch (B, C, H, W) in [-1, 1]; every random draw comes from ``generator``."""
        return x

    def update(self, report: DStepReport) -> dict[str, float]:
        """Called once per D step (after the step's G update); returns values to log."""
        return {}

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class AugmentPipeline:
    """The run's augmentations, applied in the order the variant name lists them."""

    def __init__(self, named: Sequence[tuple[str, Augmentation]] = ()):
        self.named = list(named)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for _, augmentation in self.named:
            x = augmentation(x, generator)
        return x

    def update(self, report: DStepReport) -> dict[str, float]:
        logs: dict[str, float] = {}
        for _, augmentation in self.named:
            logs.update(augmentation.update(report))
        return logs

    def state_dict(self) -> dict:
        return {name: augmentation.state_dict() for name, augmentation in self.named}

    def load_state_dict(self, state: dict) -> None:
        for name, augmentation in self.named:
            augmentation.load_state_dict(state.get(name, {}))

    def describe(self) -> dict:
        return {name: augmentation.describe() for name, augmentation in self.named}


def build_augmentation(name: str, options: dict | None = None) -> Augmentation:
    return AUGMENTS.get(name, "gan.methods (augmentation part)").from_config(name, options)
