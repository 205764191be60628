"""AdaptiveMix for GAN discriminators.

Liu, Zhang, et al., "Improving GAN Training via Feature Space Shrinkage", CVPR 2023,
arXiv 2303.01559. Reference code: github.com/WentianZhang-ML/AdaptiveMix (``generation/``,
built on stylegan2-ada-pytorch); this is an independent implementation of its semantics.

Followed from the official code (commit 163e5d5):
- ``generation/training/networks.py``, ``Discriminator.adaptive_mix`` with ``embedding`` (every
  block before the 4×4 epilogue: our ``D.features``) and ``classifier`` (the epilogue: our
  ``D.head``). For a batch ``x``: λ ~ Beta(α, α) once per call (α = 1.0, the function's
  default, never overridden), ``perm`` a random permutation, ``x_mix = λx + (1−λ)x[perm]``;
  ``f_a = features(x)``, ``f_b = features(x[perm])``, ``f_mix = features(x_mix)``;
  ``z = λ f_a + (1−λ) f_b``; logits ``head(z) + head(f_mix)`` (``z`` without noise); target
  ``z + N(0, σ²)``.
- ``generation/training/loss.py``, ``StyleGAN2Loss.run_D`` (the augmentation pipeline, when
  on, is applied before mixing) and ``accumulate_gradients``: in each of Gmain (G on fakes),
  Dgen (D on fakes) and Dreal (D on reals) the mixed logits replace D(x) in the softplus
  loss, plus ``−cos(flatten(f_mix), flatten(target).detach())`` per sample; R1 is taken on
  the mixed logits, its gradient w.r.t. the un-mixed reals ``x``; per-sample terms are then
  averaged over the batch. σ = ``--noise_std`` (0.05 in the README and run settings).
Interpretation: upstream draws λ from NumPy's global RNG and the permutation and noise from
torch's; here all three come from the run's generator (λ, then ``perm``, then the noise, in
each phase). Upstream's lazy R1 phase (Dreg) makes its own ``adaptive_mix`` pass with fresh
draws; the harness adds R1 to the D loss of that step instead (see
:mod:`adaptivemix.gan.regularizers`), so R1 uses the Dreal pass's mixed logits, as
upstream's Dboth phase does. ``tests/test_conformance_adaptivemix.py`` replays the upstream
functions above on StyleGAN2 and checks losses and gradients.
Our differences, which leave every value unchanged (up to float summation order): when D's
features are per-sample (``D.per_sample_features``), ``f_b`` is ``f_a[perm]`` (two passes
instead of three); on an accelerator ``x`` and ``x_mix`` then share one batched pass, on the
CPU they take one pass each (batch B rather than 2B keeps each layer's activations in cache:
measured faster at the default size). Rows are permuted with ``index_select`` (its backward
is a cheap ``index_add``) and the detached target is built outside autograd.
Knobs: ``alpha`` (upstream hard-codes 1.0), ``noise_std`` (upstream ``--noise_std=0.05``),
``distance`` (``cosine`` as the GAN code, ``mse`` as the classification code), ``phases``
(which phases get the consistency term; upstream: all three), ``weight`` of that term
(upstream 1.0).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from adaptivemix.errors import ConfigError
from adaptivemix.gan.methods import METHODS, PHASES, Discrimination, GanMethod, StepContext
from adaptivemix.gan.random import sample_beta

DISTANCES = ("cosine", "mse")


@dataclass(frozen=True)
class AdaptiveMixOptions:
    alpha: float = 1.0  # λ ~ Beta(alpha, alpha)
    noise_std: float = 0.05  # σ of the Gaussian noise on the detached target
    distance: str = "cosine"  # consistency distance: cosine | mse
    phases: tuple[str, ...] = PHASES  # phases that add the consistency term
    weight: float = 1.0  # weight of the consistency term

    def __post_init__(self):
        key = "gan.method_options.adaptivemix"
        if self.alpha <= 0:
            raise ConfigError(f"{key}.alpha", self.alpha, "a number > 0")
        if self.noise_std < 0:
            raise ConfigError(f"{key}.noise_std", self.noise_std, "a number ≥ 0")
        if self.distance not in DISTANCES:
            raise ConfigError(f"{key}.distance", self.distance, f"one of {list(DISTANCES)}")
        bad = [p for p in self.phases if p not in PHASES]
        if bad:
            raise ConfigError(f"{key}.phases", list(self.phases), f"a subset of {list(PHASES)}")
        object.__setattr__(self, "phases", tuple(self.phases))


def one_batched_pass(x: torch.Tensor) -> bool:
    """Whether ``x`` and ``x_mix`` share one forward pass (accelerators) or take one each
    (CPU: smaller working sets; same values, since the features are per-sample)."""
    return x.device.type != "cpu"


def mixed_features(
    D: nn.Module, x: torch.Tensor, lam: float, perm: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(f_a, f_b, f_mix) for the batch, its permutation and their λ-mix."""
    x_mix = lam * x + (1.0 - lam) * x.index_select(0, perm)
    if not getattr(D, "per_sample_features", False):
        return D.features(x), D.features(x.index_select(0, perm)), D.features(x_mix)
    if one_batched_pass(x):
        f_a, f_mix = D.features(torch.cat([x, x_mix])).chunk(2)
    else:
        f_a, f_mix = D.features(x), D.features(x_mix)
    return f_a, f_a.index_select(0, perm), f_mix


def noisy_target(z: torch.Tensor, std: float, gen: torch.Generator) -> torch.Tensor:
    """``(z + N(0, σ²)).detach()``, the noise drawn from ``gen`` in ``z``'s shape and dtype."""
    noise = torch.randn(z.shape, generator=gen, device=gen.device).to(z)
    return noise.mul_(std).add_(z.detach())  # in place, outside autograd: n·σ + z == z + n·σ


def consistency(f_mix: torch.Tensor, target: torch.Tensor, distance: str) -> torch.Tensor:
    """Batch mean of the distance between D's features of the mix and the (detached) target."""
    a, b = f_mix.flatten(1), target.detach().flatten(1)
    if distance == "cosine":
        return -F.cosine_similarity(a, b, dim=1).mean()
    return (a - b).square().mean()


@METHODS.register("adaptivemix")
class AdaptiveMix(GanMethod):
    Options = AdaptiveMixOptions

    def discriminate(
        self, D: nn.Module, x: torch.Tensor, phase: str, ctx: StepContext
    ) -> Discrimination:
        opt = self.options
        gen = ctx.generator
        lam = sample_beta(opt.alpha, gen)
        perm = torch.randperm(x.shape[0], generator=gen, device=gen.device).to(x.device)
        f_a, f_b, f_mix = mixed_features(D, x, lam, perm)
        z = lam * f_a + (1.0 - lam) * f_b
        target = noisy_target(z, opt.noise_std, gen)
        logits = D.head(z) + D.head(f_mix)
        if phase not in opt.phases:
            return Discrimination(logits)
        term = consistency(f_mix, target, opt.distance)
        return Discrimination(
            logits, opt.weight * term, {f"consistency_{phase}": float(term.detach())}
        )
