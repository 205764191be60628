"""The GAN method plugin interface (DESIGN.md §4).

A method is a registered :class:`GanMethod` subclass with an ``Options`` dataclass. The
trainer calls, per step, ``d_loss(ctx)`` then ``g_loss(ctx)``; the defaults below are the
plain adversarial objective with optional R1, written through one overridable hook,
``discriminate(D, x, phase, ctx)``, which returns the logits the loss sees plus any extra
loss term. A feature-space method (AdaptiveMix) overrides only ``discriminate``; a method that
changes the objective overrides ``d_loss`` / ``g_loss``; one that alters the networks
overrides ``prepare`` (and ``check_compatible`` to refuse networks it cannot use); one that
keeps state between steps (APA's ``p``) returns it from ``state_dict``, which checkpoints
hold. Every D input goes through ``ctx.augment`` first, so augmentations compose with any
method; a method that builds its own D inputs (e.g. by mixing reals and fakes) augments them
before mixing.
The trainer never branches on a method's name.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from torch import nn

from adaptivemix.gan.losses import AdversarialLoss, gradient_penalty, r1_penalty
from adaptivemix.options import Configurable
from adaptivemix.registry import Registry

PHASES = ("d_real", "d_fake", "g")

METHODS: Registry = Registry("gan method")


@dataclass
class StepContext:
    """Everything one training step's losses may use. All randomness comes from ``generator``.

    R1 is taken w.r.t. the un-augmented reals (as StyleGAN2-ADA): ``augment`` is
    differentiable, so the gradient flows through it. ``r1_gamma`` is this D step's weight:
    with lazy R1 (``r1_interval`` = k) it is γ·k on every k-th D step and 0 between them
    (see :mod:`adaptivemix.gan.regularizers`), so a method only checks ``r1_gamma > 0``.
    ``gp_lambda`` > 0 adds WGAN-GP's penalty on real/fake interpolates in the base ``d_loss``,
    through ``discriminate`` (phase ``"d_gp"``), so a method overriding only
    ``discriminate`` gets it on its own logits. ``g_maps`` is filled (by resolution, as
    ``G.feature_maps``) only for a method whose ``records_g_maps`` is true.
    """

    G: nn.Module
    D: nn.Module
    real: torch.Tensor  # (B, C, H, W) in [-1, 1]
    fake: torch.Tensor  # G's output for this step, still attached to G's graph
    adv: AdversarialLoss
    generator: torch.Generator
    r1_gamma: float = 0.0
    step: int = 0
    z: torch.Tensor | None = None  # the latents ``fake`` was generated from
    augment: Callable[[torch.Tensor], torch.Tensor] = lambda x: x  # every D input goes through it
    gp_lambda: float = 0.0  # WGAN-GP weight λ of (‖∇D(x̂)‖ − 1)²; 0 disables it
    r1_interval: int = 1  # lazy R1's k: ``r1_gamma`` is γ·k on R1 steps (upstream's Dreg gain)
    g_maps: dict[int, torch.Tensor] | None = None  # G's stage maps from the forward of ``fake``
    real_logits: list[torch.Tensor] = field(default_factory=list)  # see report_real_logits

    def report_real_logits(self, logits: torch.Tensor) -> None:
        """Record D's logits on reals from a pass the D loss makes (the logits the loss uses,
        e.g. AdaptiveMix's mixed ones). Every ``d_loss`` reports each real pass it makes; the
        trainer hands them to the augmentations (ADA's r_t) after the step."""
        self.real_logits.append(logits.detach())


@dataclass(frozen=True)
class RunEnv:
    """What a method may need beyond G and D when it is prepared for a run."""

    device: str = "cpu"
    feature_backbone: object | None = None  # the run's frozen FeatureBackbone, when there is one
    # perceptual distance name -> {"weights": local file, "sha256": its expected hash}, for
    # the distances that read a weights file (adaptivemix.metrics.perceptual)
    perceptual_files: dict = field(default_factory=dict)


class IncompatibleError(Exception):
    """A method cannot run with the given networks; the message says what is missing."""


@dataclass
class Discrimination:
    """What D says about one batch in one phase."""

    logits: torch.Tensor  # (B,) used by the adversarial loss (and R1 on reals)
    extra_loss: torch.Tensor | float = 0.0  # scalar added to the phase's loss
    logs: dict[str, float] = field(default_factory=dict)


class GanMethod(Configurable):
    """Base class and the ``vanilla`` method: plain adversarial loss (+ R1 when γ > 0)."""

    #: the trainer's G forward also records G's stage maps into ``StepContext.g_maps``
    #: (G then must take ``G(z, generator=gen, maps=dict)``, see :mod:`adaptivemix.models`)
    records_g_maps: bool = False

    def check_compatible(self, G: nn.Module, D: nn.Module) -> None:
        """Raise :class:`IncompatibleError` if this method cannot run with G and D.

        Called on networks built on the meta device while the config is validated, so an
        incompatible combination is refused before any job starts.
        """
        for name in ("features", "head"):
            if not callable(getattr(D, name, None)):
                raise IncompatibleError(f"D of type {type(D).__name__} has no {name}()")

    def prepare(self, G: nn.Module, D: nn.Module, env: RunEnv) -> tuple[nn.Module, nn.Module]:
        """Wrap or extend the networks before the optimizers see them (default: unchanged)."""
        return G, D

    def perceptual_distances(self) -> dict[str, str]:
        """Option name -> the registered perceptual distance it names (default: the option
        ``perceptual``, when the method has one). The config check validates them and the
        workflow gives the method's runs the weights files they read."""
        name = getattr(self.options, "perceptual", None)
        return {"perceptual": name} if isinstance(name, str) else {}

    def discriminate(
        self, D: nn.Module, x: torch.Tensor, phase: str, ctx: StepContext
    ) -> Discrimination:
        return Discrimination(D.head(D.features(x)))

    def d_loss(self, ctx: StepContext) -> tuple[torch.Tensor, dict[str, float]]:
        real = ctx.real.detach().requires_grad_(ctx.r1_gamma > 0)
        on_real = self.discriminate(ctx.D, ctx.augment(real), "d_real", ctx)
        ctx.report_real_logits(on_real.logits)
        on_fake = self.discriminate(ctx.D, ctx.augment(ctx.fake.detach()), "d_fake", ctx)
        loss_real = ctx.adv.d_real(on_real.logits).mean()
        loss_fake = ctx.adv.d_fake(on_fake.logits).mean()
        loss = loss_real + loss_fake + on_real.extra_loss + on_fake.extra_loss
        logs = {"d_adv_real": float(loss_real.detach()), "d_adv_fake": float(loss_fake.detach())}
        penalty, penalty_logs = self.penalties(ctx, real, on_real.logits)
        loss = loss + penalty
        logs.update(penalty_logs, **on_real.logs, **on_fake.logs)
        logs["d_real_logit"] = float(on_real.logits.detach().mean())
        logs["d_fake_logit"] = float(on_fake.logits.detach().mean())
        return loss, logs

    def penalties(
        self, ctx: StepContext, real: torch.Tensor, real_logits: torch.Tensor | None
    ) -> tuple[torch.Tensor | float, dict[str, float]]:
        """R1 (γ/2·‖∇_x D(x)‖², when ``ctx.r1_gamma`` > 0; ``real`` requires grad and
        ``real_logits`` are D's on it then) and WGAN-GP (λ·(‖∇D(x̂)‖ − 1)², when
        ``ctx.gp_lambda`` > 0) for the D loss. Methods with their own ``d_loss`` call it too."""
        loss: torch.Tensor | float = 0.0
        logs: dict[str, float] = {}
        if ctx.r1_gamma > 0:
            r1 = r1_penalty(real_logits, real)
            loss = loss + 0.5 * ctx.r1_gamma * r1
            logs["r1"] = float(r1.detach())
        if ctx.gp_lambda > 0:

            def logits(x: torch.Tensor) -> torch.Tensor:
                return self.discriminate(ctx.D, ctx.augment(x), "d_gp", ctx).logits

            gp = gradient_penalty(logits, real.detach(), ctx.fake.detach(), ctx.generator)
            loss = loss + ctx.gp_lambda * gp
            logs["gp"] = float(gp.detach())
        return loss, logs

    def g_loss(self, ctx: StepContext) -> tuple[torch.Tensor, dict[str, float]]:
        on_fake = self.discriminate(ctx.D, ctx.augment(ctx.fake), "g", ctx)
        loss_adv = ctx.adv.g_fake(on_fake.logits).mean()
        return loss_adv + on_fake.extra_loss, {"g_adv": float(loss_adv.detach()), **on_fake.logs}

    def state_dict(self) -> dict:
        """State the method carries between steps (e.g. an adaptive probability), saved in
        checkpoints so a resumed run continues exactly; tensors, numbers and None only."""
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


METHODS.register("vanilla")(GanMethod)


def build_method(name: str, options: dict | None = None) -> GanMethod:
    return METHODS.get(name, "gan.methods").from_config(name, options)
