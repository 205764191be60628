"""CutMix on the discriminator's inputs (a fake box pasted into a real), a GAN baseline.

Paper: Takamoto & Morishita, "An Empirical Study of the Effects of Sample-Mixing Methods for
Efficient Training of Generative Adversarial Networks", MIPR 2021, arXiv 2104.03535.
Confirmed (abstract only): Mixup, CutMix and the new SRMix are applied to D; a formalism for
losses without a clear real/fake label; LSUN and CelebA, FID; Mixup and SRMix improve FID in
most cases, SRMix most often best.
Interpreted (the body was not available): per sample, λ ~ Beta(α, α), a box of side
⌊√(1−λ)·size⌋ per axis around a uniform integer centre (as Yun et al., ICCV 2019,
clovaai/CutMix-PyTorch ``train.py`` ``rand_bbox`` and the λ recomputed after it) is taken from
fake[i] into real[i]; after clipping to the image, λ_i = 1 − box_area/image_area, the fraction
of real pixels, and D's loss on the mix is the λ-weighted mixture of its real and fake losses
(see :mod:`baselines._mixing` for the step, logs and R1, and ``box_extent`` for the box).
Differences from ``rand_bbox``: one box and λ per sample (upstream: per batch); an odd side is
kept whole (upstream's box spans centre ± ⌊side/2⌋, one pixel short); rows and columns use
their own side (upstream's naming swaps H and W, which only matters for non-square images).
Knobs: ``alpha``, ``prob`` (chance a step mixes), ``loss_form`` (mixture | label),
``mode`` (replace | add the plain loss).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from adaptivemix.gan.methods import METHODS
from baselines._mixing import MixOptions, SampleMixing, draw_box_indicators, region_mask


@dataclass(frozen=True)
class CutMixOptions(MixOptions):
    method_name = "cutmix"


@METHODS.register("cutmix")
class CutMix(SampleMixing):
    Options = CutMixOptions

    def mask(
        self, lam: torch.Tensor, height: int, width: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        rows, cols = draw_box_indicators(lam, height, width, generator)
        # λ from the clipped box: the box's area is its row count times its column count
        return region_mask(rows, cols), 1.0 - rows.mean(1) * cols.mean(1)
