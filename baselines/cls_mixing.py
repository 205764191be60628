"""Mixup and CutMix for classifiers, through timm's implementation.

Papers: Zhang, Cisse, Dauphin, Lopez-Paz, "mixup: Beyond Empirical Risk Minimization",
ICLR 2018, arXiv 1710.09412; Yun, Han, Oh, Chun, Choe, Yoo, "CutMix: Regularization Strategy
to Train Strong Classifiers with Localizable Features", ICCV 2019, arXiv 1905.04899.
Implementation: ``timm.data.Mixup`` (Ross Wightman's pytorch-image-models) with one λ per
batch (``mode="batch"``), applied to every batch (``prob=1``), CutMix's λ corrected to the
clipped box area (``correct_lam=True``), and ``timm.loss.SoftTargetCrossEntropy`` on the mixed
soft targets.
Confirmed (papers): Mixup trains on ``λx_i + (1−λ)x_j`` with targets ``λy_i + (1−λ)y_j``,
λ ~ Beta(α, α); CutMix pastes a box of area fraction ≈ 1−λ from ``x_j`` into ``x_i``, the
target weighted by the pasted area; α = 1 for both on CIFAR.
As timm does it (not a choice of ours): the partner of sample i is sample N−1−i (the batch
flipped), not a random permutation, so the batch must be even (an odd batch raises).
Reproducibility: timm draws λ and the box from NumPy's GLOBAL generator. Each call draws one
seed from the run's ``batch.generator``, runs timm under a temporary global NumPy state seeded
by it and restores the previous state afterwards, so the result is a function of the run's
seed alone and nothing else that uses ``np.random`` is disturbed.
Knobs: ``alpha``, ``label_smoothing`` (timm's default is 0.1; ours 0, as the papers).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from adaptivemix.classify.methods import CLS_METHODS, ClsBatch, ClsMethod


@contextmanager
def numpy_global_seed(seed: int) -> Iterator[None]:
    """Run the body with ``np.random`` seeded by ``seed``; restore the previous state after."""
    saved = np.random.get_state()
    np.random.seed(seed)
    try:
        yield
    finally:
        np.random.set_state(saved)


@dataclass(frozen=True)
class TimmMixOptions:
    alpha: float = 1.0  # λ ~ Beta(alpha, alpha)
    label_smoothing: float = 0.0  # smoothing of the mixed one-hot targets (timm's option)

    def __post_init__(self):
        if not self.alpha > 0:
            raise ValueError("alpha: a number > 0")
        if not 0 <= self.label_smoothing < 1:
            raise ValueError("label_smoothing: a number in [0, 1)")


class TimmMixing(ClsMethod):
    """One of timm's batch mixings; subclasses say which of mixup / cutmix is on."""

    Options = TimmMixOptions
    kind = ""  # "mixup" | "cutmix"

    def mix(self, batch: ClsBatch) -> tuple[torch.Tensor, torch.Tensor]:
        """(mixed images, soft targets (N, num_classes)); ``batch.x`` is left unchanged."""
        n = batch.x.shape[0]
        if n % 2:
            raise ValueError(f"{self.kind} (timm) pairs sample i with N−1−i: batch size {n} is odd")
        from timm.data import Mixup  # at use: importing timm costs seconds of every job's start

        gen, opt = batch.generator, self.options
        mixer = Mixup(
            mixup_alpha=opt.alpha if self.kind == "mixup" else 0.0,
            cutmix_alpha=opt.alpha if self.kind == "cutmix" else 0.0,
            prob=1.0,
            mode="batch",
            correct_lam=True,
            label_smoothing=opt.label_smoothing,
            num_classes=batch.num_classes,
        )
        seed = int(torch.randint(0, 2**32, (1,), generator=gen, device=gen.device))
        with numpy_global_seed(seed):
            return mixer(batch.x.clone(), batch.y)  # timm mixes in place: give it a copy

    def loss(self, model: nn.Module, batch: ClsBatch) -> tuple[torch.Tensor, dict[str, float]]:
        from timm.loss import SoftTargetCrossEntropy

        x, target = self.mix(batch)
        loss = SoftTargetCrossEntropy()(model(x), target)
        return loss, {"loss_ce": float(loss.detach())}


@CLS_METHODS.register("mixup")
class ClsMixup(TimmMixing):
    kind = "mixup"


@CLS_METHODS.register("cutmix")
class ClsCutMix(TimmMixing):
    kind = "cutmix"
