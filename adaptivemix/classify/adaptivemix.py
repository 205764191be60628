"""AdaptiveMix for classification: mixup cross-entropy plus feature-space shrinkage.

Liu, Zhang, et al., "Improving GAN Training via Feature Space Shrinkage", CVPR 2023,
arXiv 2303.01559. Reference code: github.com/WentianZhang-ML/AdaptiveMix (``classification/``,
WRN-28-10 with the frozen orthogonal classifier); this is an independent implementation of
its semantics.

Followed from the official code (``classification/models.py``, ``adaptive_mix`` and
``_embedding``; ``classification/train.py``, ``train_clean``), per training batch ``x`` with
labels ``y``:
  ``perm`` a random permutation, then λ ~ Beta(α, α) (α = 1 upstream);
  ``x_mix = λx + (1−λ)x[perm]``; three forward passes in upstream's order,
  ``f_mix = features(x_mix)``, ``f_a = features(x)``, ``f_b = features(x[perm])``, each with
  its own BatchNorm batch statistics and its own running-statistics update (three per step);
  ``z = λ f_a + (1−λ) f_b``; ``z_noisy = z + N(0, σ²)``;
  loss = λ·CE(l, y) + (1−λ)·CE(l, y[perm]) with ``l = head(z) + head(f_mix)`` (``z`` without
  noise) + ``weight · MSE(f_mix, z_noisy.detach())`` (mean over all elements).
  With the orthogonal head ``features`` are L2-normalised, so the consistency term does not
  change when the trunk's features are rescaled.
Interpretation: upstream draws λ from NumPy's global RNG and the permutation and noise from
torch's; here all three come from the run's generator, in the order permutation, λ
(:func:`sample_beta`), noise.
Options that differ from upstream (off by default):
  - ``batched_pass: true``: ``x`` and ``x_mix`` go through ONE forward pass (concatenated,
    then split) and ``f_b`` is ``f_a[perm]``. In training mode BatchNorm's batch statistics
    then span both halves and the running statistics are updated once per step, so losses,
    gradients and running statistics differ from upstream's; it is faster (the README gives
    the measured factor).
Knobs: ``alpha``, ``noise_std`` (upstream ``--noise 0.05``), ``consistency_weight``
(upstream 1.0), ``distance`` (``mse`` as the classification code; ``cosine`` = 1 − cos,
batch mean, as the GAN code up to a constant), ``batched_pass`` (upstream: false).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from adaptivemix.classify.methods import CLS_METHODS, ClsBatch, ClsMethod
from adaptivemix.gan.random import sample_beta

DISTANCES = ("mse", "cosine")


@dataclass(frozen=True)
class ClsAdaptiveMixOptions:
    alpha: float = 1.0  # λ ~ Beta(alpha, alpha)
    noise_std: float = 0.05  # σ of the Gaussian noise on the detached target
    consistency_weight: float = 1.0  # weight of the consistency term
    distance: str = "mse"  # consistency distance: mse | cosine
    batched_pass: bool = False  # one pass over [x, x_mix] (ours) instead of upstream's three

    def __post_init__(self):
        if not self.alpha > 0:
            raise ValueError("alpha: a number > 0")
        if not self.noise_std >= 0:
            raise ValueError("noise_std: a number ≥ 0")
        if not self.consistency_weight >= 0:
            raise ValueError("consistency_weight: a number ≥ 0")
        if self.distance not in DISTANCES:
            raise ValueError(f"distance: one of {list(DISTANCES)}")
        if not isinstance(self.batched_pass, bool):
            raise ValueError("batched_pass: true or false")


def mixup_cross_entropy(
    logits: torch.Tensor, y: torch.Tensor, y_perm: torch.Tensor, lam: float
) -> torch.Tensor:
    """λ·CE(logits, y) + (1−λ)·CE(logits, y_perm), each a batch mean."""
    return lam * F.cross_entropy(logits, y) + (1.0 - lam) * F.cross_entropy(logits, y_perm)


def mixed_features(
    model: nn.Module, x: torch.Tensor, x_mix: torch.Tensor, perm: torch.Tensor, batched: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(f_a, f_b, f_mix): upstream's three passes (x_mix, x, x[perm]) or one batched pass."""
    if batched:
        f_a, f_mix = model.features(torch.cat([x, x_mix])).chunk(2)
        return f_a, f_a[perm], f_mix
    f_mix = model.features(x_mix)
    f_a = model.features(x)
    return f_a, model.features(x[perm]), f_mix


def feature_distance(f_mix: torch.Tensor, target: torch.Tensor, distance: str) -> torch.Tensor:
    """Consistency between the mix's features and the (detached) target."""
    target = target.detach()
    if distance == "mse":
        return F.mse_loss(f_mix, target)
    return 1.0 - F.cosine_similarity(f_mix, target, dim=1).mean()


@CLS_METHODS.register("adaptivemix")
class ClsAdaptiveMix(ClsMethod):
    Options = ClsAdaptiveMixOptions

    def loss(self, model: nn.Module, batch: ClsBatch) -> tuple[torch.Tensor, dict[str, float]]:
        opt, gen, x, y = self.options, batch.generator, batch.x, batch.y
        perm = torch.randperm(x.shape[0], generator=gen, device=gen.device).to(x.device)
        lam = sample_beta(opt.alpha, gen)
        x_mix = lam * x + (1.0 - lam) * x[perm]
        f_a, f_b, f_mix = mixed_features(model, x, x_mix, perm, opt.batched_pass)
        z = lam * f_a + (1.0 - lam) * f_b
        noise = torch.randn(z.shape, generator=gen, device=gen.device).to(z) * opt.noise_std
        logits = model.head(z) + model.head(f_mix)
        loss_ce = mixup_cross_entropy(logits, y, y[perm], lam)
        loss_consistency = feature_distance(f_mix, z + noise, opt.distance)
        loss = loss_ce + opt.consistency_weight * loss_consistency
        return loss, {
            "loss_ce": float(loss_ce.detach()),
            "loss_consistency": float(loss_consistency.detach()),
            "lam": lam,
        }
