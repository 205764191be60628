"""Mixup on the discriminator's inputs (real with fake), a sample-mixing GAN baseline.

Paper: Takamoto & Morishita, "An Empirical Study of the Effects of Sample-Mixing Methods for
Efficient Training of Generative Adversarial Networks", MIPR 2021, arXiv 2104.03535.
Confirmed (abstract only): Mixup, CutMix and the new SRMix are applied to D; a formalism for
losses without a clear real/fake label; LSUN and CelebA, FID; Mixup and SRMix improve FID in
most cases, SRMix most often best.
No official code for the GAN paper was found. The blend is Zhang et al.'s (ICLR 2018;
facebookresearch/mixup-cifar10 ``train.py`` ``mixup_data``: ``λ·x + (1−λ)·x[perm]``,
λ ~ Beta(α, α); ``mixup_criterion``: the λ-weighted loss of the two targets).
Interpreted (the body was not available): each D step, the augmented real batch and the
augmented, detached fake batch are mixed sample by sample, ``x_i = λ_i·real_i + (1−λ_i)·fake_i``
with λ_i ~ Beta(α, α) per sample, and D's loss on ``x_i`` is the λ-weighted mixture of its real
and fake losses (see :mod:`baselines._mixing` for the step, logs and R1).
Knobs: ``alpha``, ``prob`` (chance a step mixes), ``loss_form`` (mixture | label),
``mode`` (replace | add the plain loss).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from adaptivemix.gan.methods import METHODS
from baselines._mixing import MixOptions, SampleMixing


@dataclass(frozen=True)
class MixupOptions(MixOptions):
    method_name = "mixup"


@METHODS.register("mixup")
class Mixup(SampleMixing):
    Options = MixupOptions

    def mask(
        self, lam: torch.Tensor, height: int, width: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # a constant mask per sample: every pixel is the same λ-blend
        return lam[:, None, None, None], lam
