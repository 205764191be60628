"""APA: adaptive pseudo augmentation, generated images presented to D as real ones.

Paper: Jiang, Dai, Wu and Loy, "Deceive D: Adaptive Pseudo Augmentation for GAN Training
with Limited Data", NeurIPS 2021, arXiv 2111.06849 (official code: EndlessSora/DeceiveD,
a fork of NVlabs/stylegan2-ada-pytorch; AdaptiveMix's GAN code forked it in turn).

Followed from the official code (read, not copied):

- ``training/loss.py``, ``StyleGAN2Loss.adaptive_pseudo_augmentation``: in D's real phase
  each image of the real batch is replaced, independently with probability ``p`` (one
  uniform draw per image, ``u < p``), by a detached generated image; D's real loss, the
  sign statistic and R1 all use the batch after replacement (``accumulate_gradients``,
  ``Dreal``/``Dr1``: R1 is the gradient w.r.t. that batch). D's fake phase is untouched.
- Which generated images: upstream keeps the images of the latest G phase (``Gmain``:
  ``pseudo_data = gen_img.detach()``), i.e. the batch G's loss was just computed on, made by
  G before its update, from the G phase's own latents (not the D phase's fakes). Upstream's
  iteration runs G then D; ours runs D then G, so the same images are the fakes of the
  *previous* step's G loss (``ctx.fake`` in :meth:`Apa.g_loss`): made by G one update
  before the current D phase's fakes, from other latents, as upstream.
- ``training/training_loop.py``: every ``apa_interval`` iterations, ``r_t`` = the mean of
  ``sign(D(x))`` over every real logit reported since the last adjustment (all ranks:
  ``training_stats.Collector``), then ``p <- max(p + sign(r_t - target) * batch * interval /
  (apa_kimg * 1000), 0)``, with ``batch`` the global batch: ADA's rule, so the shared
  :class:`adaptivemix.gan.augment.AdaptiveProbability` does it, fed with the logits of this
  D step's real pass (reported through ``ctx.report_real_logits``, so ADA composed with APA
  sees them too). Upstream floors ``p`` at 0 and does not cap it at 1; neither do we
  (``p >= 1`` replaces every image).
- ``train.py``/``training_loop`` defaults: ``--aug=apa`` with target 0.6, interval 4,
  ``apa_kimg`` 500, initial ``p`` 0; ``--aug=fixed --p=P`` keeps ``p`` at ``P``
  (``adapt: false`` here). ``--with-dataaug`` (off by default) would also run ADA's pipeline
  with APA's ``p``; a variant such as ``apa+ada`` composes augmentations with their own
  ``p`` instead, so that option has no counterpart here.

Our interpretation, where the trainer differs from upstream's loop:

- The first D step of a run has no previous G step; it (and, under DDP, the first D step of
  a rank > 0 after a resume, since only rank 0's images are checkpointed) uses the current
  D step's own fakes, detached. With the default ``initial_p`` 0 nothing is replaced then.
- Upstream regularises lazily in its own phase (``Dreg``, after the ``Dmain`` update) with
  a fresh replacement draw, and reports that phase's real signs too; our trainer adds R1 to
  the k-th D step's loss (:mod:`adaptivemix.gan.regularizers`), so R1 uses that step's
  replaced batch and each real logit counts once in ``r_t``.
- ``p`` moves after every ``interval``-th D step's loss, so the next D step uses it (as
  upstream, where the adjustment follows the iteration); ``interval`` counts D steps, i.e.
  real batches (upstream: iterations, one real batch each; the same unless ``d_steps`` > 1).
  The sign sums are reduced over ranks at every D step, so every rank (and rank 0's
  checkpoint) holds the global statistic; an interval without logits leaves ``p`` as it is.
  ``p`` is a Python float (float64); upstream keeps a float32 tensor.

Options (``gan.method_options.apa``): ``target`` (0.6), ``interval`` (4 D steps),
``apa_kimg`` (500), ``initial_p`` (0), ``adapt`` (true). Logs: ``apa_p`` (the ``p`` the
step's draws used), ``apa_pseudo`` (fraction of the real batch replaced), ``apa_rt`` (the last
adjustment's ``r_t``, 0 before the first). Checkpointed: ``p``, the sign sums, the D steps
since the last adjustment and the stored generated images, so a resumed run continues bit
for bit.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import torch
import torch.distributed as dist

from adaptivemix.gan.augment import AdaptiveProbability, DStepReport
from adaptivemix.gan.distributed import DistEnv
from adaptivemix.gan.methods import METHODS, GanMethod, StepContext


@dataclass(frozen=True)
class ApaOptions:
    target: float = 0.6  # r_t above it means D overfits: raise p (upstream --target)
    interval: int = 4  # D steps between adjustments of p (upstream apa_interval)
    apa_kimg: float = 500.0  # thousands of real images for p to move by 1 (upstream apa_kimg)
    initial_p: float = 0.0  # p at step 0 (upstream augment_p)
    adapt: bool = True  # false: p stays at initial_p (upstream --aug=fixed --p)

    def __post_init__(self) -> None:
        if not (math.isfinite(self.target) and 0 <= self.target <= 1):
            raise ValueError("target: a number in [0, 1]")
        if self.interval < 1:
            raise ValueError("interval: an integer >= 1")
        if not (math.isfinite(self.apa_kimg) and self.apa_kimg > 0):
            raise ValueError("apa_kimg: a finite number > 0")
        if not (math.isfinite(self.initial_p) and self.initial_p >= 0):
            raise ValueError("initial_p: a finite number >= 0")


def _dist_env() -> DistEnv:
    """This process's place among the run's ranks, from the process group torchrun set up."""
    if dist.is_available() and dist.is_initialized():
        return DistEnv(dist.get_rank(), dist.get_world_size())
    return DistEnv()


@METHODS.register("apa")
class Apa(GanMethod):
    Options = ApaOptions

    def __init__(self, options: ApaOptions | None = None):
        super().__init__(options)
        o = self.options
        self.schedule = AdaptiveProbability(o.target, o.interval, o.apa_kimg, o.initial_p)
        self.pseudo: torch.Tensor | None = None  # the last G loss's fakes, detached

    @property
    def p(self) -> float:
        return self.schedule.p

    def d_loss(self, ctx: StepContext) -> tuple[torch.Tensor, dict[str, float]]:
        p, first = self.p, len(ctx.real_logits)
        real, replaced = self.pseudo_augment(ctx)
        loss, logs = super().d_loss(dataclasses.replace(ctx, real=real))  # reports its logits
        if self.options.adapt:
            env = _dist_env()
            batch = ctx.real.shape[0] * env.world_size
            self.schedule.observe(DStepReport(ctx.real_logits[first:], batch, env, ctx.real.device))
        return loss, {**logs, "apa_p": p, "apa_pseudo": replaced, "apa_rt": self.schedule.last_rt}

    def pseudo_augment(self, ctx: StepContext) -> tuple[torch.Tensor, float]:
        """The real batch with each image replaced by a stored fake with probability p,
        and the fraction replaced. One uniform per image from ``ctx.generator``."""
        gen, n = ctx.generator, ctx.real.shape[0]
        flags = (torch.rand(n, generator=gen, device=gen.device) < self.p).to(ctx.real.device)
        pseudo = self.pseudo if self.pseudo is not None else ctx.fake.detach()
        pseudo = pseudo.to(device=ctx.real.device, dtype=ctx.real.dtype)
        real = torch.where(flags.view(n, 1, 1, 1), pseudo, ctx.real)
        return real, float(flags.float().mean())

    def g_loss(self, ctx: StepContext) -> tuple[torch.Tensor, dict[str, float]]:
        self.pseudo = ctx.fake.detach()  # the next D step's pseudo data, as upstream's Gmain
        return super().g_loss(ctx)

    def state_dict(self) -> dict:
        return {**self.schedule.state_dict(), "pseudo": self.pseudo}

    def load_state_dict(self, state: dict) -> None:
        self.schedule.load_state_dict(state)
        # rank 0 wrote its own images; another rank would get a copy of them
        self.pseudo = state.get("pseudo") if _dist_env().rank == 0 else None
