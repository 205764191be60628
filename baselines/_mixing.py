"""Shared plumbing of the sample-mixing baselines for GAN discriminators (Mixup, CutMix, SRMix).

Takamoto & Morishita, "An Empirical Study of the Effects of Sample-Mixing Methods for
Efficient Training of Generative Adversarial Networks", MIPR 2021, arXiv 2104.03535.
Only the abstract was available and no official code for it was found; everything below the
confirmed points is OUR interpretation (see each public module for its method, and the knobs
for alternatives). Borrowed from the classification originals, not from the GAN paper: the
λ-weighted loss of ``mixup_criterion`` (facebookresearch/mixup-cifar10 ``train.py``) and
CutMix's box (clovaai/CutMix-PyTorch ``train.py`` ``rand_bbox``; see :mod:`baselines.cutmix`).
Ours: real[i] is mixed with fake[i] (not a batch with its own permutation) and λ is drawn per
sample (upstream: one λ per batch). ``tests/test_conformance_mixing.py`` checks D and G losses
and gradients on StyleGAN2 against a loop-based reference of this definition.

One D step of a mixing method, in this order of draws from ``ctx.generator``:
  1. the coin ``u < prob`` (drawn only when ``0 < prob < 1``: with prob 0 or 1 the outcome is
     certain, and skipping the draw makes ``prob=0`` vanilla bit for bit, random stream
     included); a step that does not mix is the base class's plain D loss;
  2. ``ctx.augment`` on the reals, then on the detached fakes (augment BEFORE mixing, so
     augmentations compose with any method);
  3. per-sample λ ~ Beta(α, α) (B values), then the method's own draws (box centres);
  4. ``x = M⊙real + (1−M)⊙fake`` with real[i] paired with fake[i], λ_i = mean(M_i) the
     fraction of real in sample i; one batched D pass over ``x``;
  5. per-sample loss ``λ·adv.d_real(l) + (1−λ)·adv.d_fake(l)`` (``loss_form="mixture"``,
     valid for losses without a real/fake label such as hinge), or
     ``BCE-with-logits(l, target=λ)`` (``loss_form="label"``, which always uses the
     softplus/BCE loss whatever ``gan.adv_loss`` is, on mixed batches only; for the
     non-saturating loss both forms are equal).
``mode="replace"`` (default): the mixed loss replaces the plain one, as mixed samples replace
the originals in classification mixup; R1 (γ > 0) is then taken on an extra plain pass over the
un-mixed reals, w.r.t. the un-augmented reals (gradient through ``ctx.augment``).
``mode="add"``: the base class's plain loss (with its R1) plus the mixed loss.
Real logits reported for adaptive augmentation (``ctx.report_real_logits``, ADA's r_t): those
of the plain real passes only (the base loss's; in ``replace`` mode the R1 pass, so a step
without R1 reports none), not the mixed batch's.
Scale: a mixed sample's two weights sum to 1, so the mixed loss is about half the plain
``mean real + mean fake`` loss; we keep the formula as stated (Adam is nearly scale-free,
but R1's weight relative to the adversarial term is in effect doubled in ``replace`` mode).
``discriminate`` sees the mixed batch with phase ``"d_mix"`` (not one of ``PHASES``).

Logs, the same keys on every step: ``d_adv_real``/``d_adv_fake`` (the real and fake branches
of the adversarial loss actually optimised: for a mixed batch the means of λ·L_real and
(1−λ)·L_fake; in ``add`` mode plain + mixed), so ``loss = d_adv_real + d_adv_fake (+ γ/2·r1)
(+ λ_gp·gp)``;
``d_real_logit``/``d_fake_logit`` (plain means; for a replaced batch the λ- and (1−λ)-weighted
means of the mixed logits, which reduce to the plain means when λ ∈ {0, 1}); ``mix_lambda``
(mean λ of the mixed batch; 0.5 on a step that does not mix, the mean label of a plain batch
of B reals at λ=1 and B fakes at λ=0); ``mix_applied`` (1.0 or 0.0); ``r1`` when γ > 0;
``gp`` when λ_gp > 0.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import torch
import torch.nn.functional as F

from adaptivemix.errors import ConfigError
from adaptivemix.gan.losses import AdversarialLoss
from adaptivemix.gan.methods import GanMethod, StepContext
from adaptivemix.gan.random import sample_betas

LOSS_FORMS = ("mixture", "label")
MODES = ("replace", "add")
PLAIN_LAMBDA = 0.5  # mean label of a plain step: B reals (λ=1) and B fakes (λ=0)
MIX_PHASE = "d_mix"  # phase name passed to ``discriminate`` for the mixed batch


@dataclass(frozen=True)
class MixOptions:
    """Options shared by the three methods; ``method_name`` builds the config key."""

    method_name: ClassVar[str] = "mixing"  # each method's subclass sets its registered name
    alpha: float = 1.0  # λ ~ Beta(alpha, alpha), one per sample
    prob: float = 1.0  # probability that a step's D loss uses the mixed batch
    loss_form: str = "mixture"  # mixture | label
    mode: str = "replace"  # replace: mixed loss only | add: plain loss + mixed loss

    def __post_init__(self) -> None:
        key = f"gan.method_options.{self.method_name}"
        if not (math.isfinite(self.alpha) and self.alpha > 0):
            raise ConfigError(f"{key}.alpha", self.alpha, "a finite number > 0")
        if not 0.0 <= self.prob <= 1.0:
            raise ConfigError(f"{key}.prob", self.prob, "a number in [0, 1]")
        if self.loss_form not in LOSS_FORMS:
            raise ConfigError(f"{key}.loss_form", self.loss_form, f"one of {list(LOSS_FORMS)}")
        if self.mode not in MODES:
            raise ConfigError(f"{key}.mode", self.mode, f"one of {list(MODES)}")


def box_extent(
    lam: torch.Tensor, size: int, centre: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Clipped [start, stop) along one axis of a box of side ⌊size·√(1−λ)⌋ around ``centre``.

    Yun et al. 2019 take ``centre ± ⌊side/2⌋`` (a box one pixel short when the side is odd);
    we take ``start = centre − ⌊side/2⌋, stop = start + side`` so an unclipped box has the
    full side. Clipping to the image only shrinks the box, so the recomputed λ ≥ the drawn λ.
    """
    side = torch.floor(size * torch.sqrt(1.0 - lam)).long()
    start = centre - side // 2
    return start.clamp(0, size), (start + side).clamp(0, size)


def box_indicators(
    lam: torch.Tensor, height: int, width: int, centre_y: torch.Tensor, centre_x: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Row (B, H) and column (B, W) indicators of each sample's box: box = rows ⊗ cols."""
    top, bottom = box_extent(lam, height, centre_y)
    left, right = box_extent(lam, width, centre_x)
    ys = torch.arange(height, device=lam.device)
    xs = torch.arange(width, device=lam.device)
    rows = (ys >= top[:, None]) & (ys < bottom[:, None])
    cols = (xs >= left[:, None]) & (xs < right[:, None])
    return rows.float(), cols.float()


def draw_box_indicators(
    lam: torch.Tensor, height: int, width: int, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Box indicators with uniform integer centres (rows drawn first, then columns)."""
    n, device = lam.shape[0], generator.device
    centre_y = torch.randint(height, (n,), generator=generator, device=device)
    centre_x = torch.randint(width, (n,), generator=generator, device=device)
    return box_indicators(lam.to(device), height, width, centre_y, centre_x)


def region_mask(rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """M = 1 − rows ⊗ cols, shape (B, 1, H, W): 1 where the real image is kept."""
    return (1.0 - rows[:, :, None] * cols[:, None, :])[:, None]


def mix_pixels(real: torch.Tensor, fake: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``M⊙real + (1−M)⊙fake``; ``mask`` (B, 1, H, W) or (B, 1, 1, 1) broadcasts over channels."""
    return mask * real + (1.0 - mask) * fake


def branch_losses(
    logits: torch.Tensor, lam: torch.Tensor, adv: AdversarialLoss, loss_form: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample (λ·L_real, (1−λ)·L_fake); their sum is the per-sample mixed loss.

    ``label`` uses BCE against 1 and 0 as branches, whose λ-weighted sum is exactly
    ``binary_cross_entropy_with_logits(l, λ)``.
    """
    if loss_form == "label":
        bce = F.binary_cross_entropy_with_logits
        real = bce(logits, torch.ones_like(logits), reduction="none")
        fake = bce(logits, torch.zeros_like(logits), reduction="none")
    else:
        real, fake = adv.d_real(logits), adv.d_fake(logits)
    return lam * real, (1.0 - lam) * fake


def weighted_mean(values: torch.Tensor, weights: torch.Tensor) -> float:
    """Σ w·v / Σ w (0 when every weight is 0): D's logit as seen by one branch."""
    total = weights.sum()
    return float((weights * values).sum() / total) if total > 0 else 0.0


class SampleMixing(GanMethod):
    """Base of Mixup, CutMix and SRMix: subclasses define only :meth:`mask`."""

    Options: ClassVar[type] = MixOptions

    def mask(
        self, lam: torch.Tensor, height: int, width: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(M, λ) on ``generator.device``: M (B, 1, H, W) or (B, 1, 1, 1) with 1 = real, and
        λ (B,) = mean(M) per sample, from the drawn λ (B,)."""
        raise NotImplementedError

    def mix_batch(
        self, real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The mixed batch (real[i] paired with fake[i]) and its per-sample λ."""
        if real.shape != fake.shape:
            raise ValueError(f"real {tuple(real.shape)} and fake {tuple(fake.shape)} differ")
        drawn = sample_betas(self.options.alpha, real.shape[0], generator)
        mask, lam = self.mask(drawn.to(generator.device), *real.shape[-2:], generator)
        mask = mask.to(device=real.device, dtype=real.dtype)
        return mix_pixels(real, fake, mask), lam.to(device=real.device, dtype=real.dtype)

    def mixes_this_step(self, generator: torch.Generator) -> bool:
        prob = self.options.prob
        if prob in (0.0, 1.0):  # certain: no draw, so prob=0 leaves vanilla's stream intact
            return prob == 1.0
        return bool(torch.rand((), generator=generator, device=generator.device) < prob)

    def d_loss(self, ctx: StepContext) -> tuple[torch.Tensor, dict[str, float]]:
        if not self.mixes_this_step(ctx.generator):
            loss, logs = super().d_loss(ctx)
            return loss, {**logs, "mix_lambda": PLAIN_LAMBDA, "mix_applied": 0.0}
        if self.options.mode == "add":
            plain, logs = super().d_loss(ctx)
            mixed, mix_logs = self.mixed_loss(ctx, with_penalties=False)  # plain has them
            for key in ("d_adv_real", "d_adv_fake"):
                mix_logs[key] += logs[key]  # so that loss = d_adv_real + d_adv_fake (+ R1)
            return plain + mixed, {**logs, **mix_logs, **_plain_logit_logs(logs)}
        return self.mixed_loss(ctx, with_penalties=True)

    def mixed_loss(
        self, ctx: StepContext, with_penalties: bool
    ) -> tuple[torch.Tensor, dict[str, float]]:
        """The mixed-batch D loss (+ the base class's penalties when ``with_penalties``: R1 on
        a plain pass over the reals, WGAN-GP on real/fake interpolates)."""
        with_r1 = with_penalties and ctx.r1_gamma > 0
        real = ctx.real.detach().requires_grad_(with_r1)
        aug_real = ctx.augment(real)
        aug_fake = ctx.augment(ctx.fake.detach())
        x, lam = self.mix_batch(aug_real.detach(), aug_fake, ctx.generator)
        out = self.discriminate(ctx.D, x, MIX_PHASE, ctx)
        real_term, fake_term = branch_losses(out.logits, lam, ctx.adv, self.options.loss_form)
        loss = real_term.mean() + fake_term.mean() + out.extra_loss
        logits = out.logits.detach()
        logs = {
            "d_adv_real": float(real_term.detach().mean()),
            "d_adv_fake": float(fake_term.detach().mean()),
            **out.logs,
            "d_real_logit": weighted_mean(logits, lam),
            "d_fake_logit": weighted_mean(logits, 1.0 - lam),
            "mix_lambda": float(lam.mean()),
            "mix_applied": 1.0,
        }
        if with_penalties:
            real_logits = (
                self.discriminate(ctx.D, aug_real, "d_real", ctx).logits if with_r1 else None
            )
            if real_logits is not None:  # the only pass over plain reals: ADA's r_t
                ctx.report_real_logits(real_logits)
            penalty, penalty_logs = self.penalties(ctx, real, real_logits)
            loss = loss + penalty
            logs.update(penalty_logs)
        return loss, logs


def _plain_logit_logs(logs: dict[str, float]) -> dict[str, float]:
    """In ``add`` mode the plain passes exist, so their logit means are the ones logged."""
    return {key: logs[key] for key in ("d_real_logit", "d_fake_logit")}
