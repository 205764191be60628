"""Augmentations of D's inputs: a registered kind that composes with any GAN method.

An augmentation is applied to every image D sees (reals and fakes, in the D and G steps),
before any method-specific mixing, and must be differentiable in its input so that G's
gradient flows through it (DiffAugment's requirement). It may keep state that the trainer
checkpoints (ADA's probability ``p``) and adjust it after each D step through ``update``.

A run's variant name composes them with a method: ``adaptivemix+diffaugment`` is AdaptiveMix
with DiffAugment on every D input (see :mod:`adaptivemix.gan.variants`).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from adaptivemix.options import Configurable
from adaptivemix.registry import Registry

AUGMENTS: Registry = Registry("augmentation")


class Augmentation(Configurable):
    """Base class: the identity. Subclasses override ``__call__`` and maybe ``update``."""

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Augment a batch (B, C, H, W) in [-1, 1]; every random draw comes from ``generator``."""
        return x

    def update(
        self, D: nn.Module, real: torch.Tensor, step: int, generator: torch.Generator
    ) -> dict[str, float]:
        """Called after every D step with the step's real batch; returns values to log."""
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

    def update(self, D, real, step, generator) -> dict[str, float]:
        logs: dict[str, float] = {}
        for _, augmentation in self.named:
            logs.update(augmentation.update(D, real, step, generator))
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
