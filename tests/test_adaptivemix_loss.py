"""AdaptiveMix against a second, straightforward implementation of its definition.

The reference below follows METHODS.md literally: three feature passes (x, x[perm], x_mix),
z = λ f_a + (1−λ) f_b, logits head(z) + head(f_mix), consistency −cos(f_mix, z + noise)
with the target detached, softplus losses, R1 on the un-mixed reals. It draws λ, the
permutation and the noise from a copy of the same generator, in the documented order.

The faster implementation (one pass each for x and x_mix on the CPU) is also compared with
the previous one (one batched pass of [x, x_mix]) on DCGAN networks, through the base
``d_loss`` / ``g_loss``: losses, logs, gradients of D and G and the generator's final state,
with DiffAugment, R1 and WGAN-GP.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import adaptivemix.gan.adaptivemix as adaptivemix_module
from adaptivemix.gan.adaptivemix import AdaptiveMix, AdaptiveMixOptions, consistency
from adaptivemix.gan.augment import AugmentPipeline, build_augmentation
from adaptivemix.gan.losses import build_adv_loss
from adaptivemix.gan.methods import Discrimination, StepContext
from adaptivemix.gan.random import sample_beta
from adaptivemix.models import build_models


class TinyD(nn.Module):
    """Per-sample conv features (2×2×3) and a non-linear head."""

    def __init__(self, per_sample: bool = True):
        super().__init__()
        self.per_sample_features = per_sample
        torch.manual_seed(0)
        self.conv = nn.Conv2d(1, 3, 3, stride=2, padding=1)
        self.fc = nn.Linear(12, 4)
        self.out = nn.Linear(4, 1)

    def features(self, x):
        return torch.tanh(self.conv(x))

    def head(self, f):
        return self.out(F.leaky_relu(self.fc(f.flatten(1)), 0.2)).squeeze(1)


def reference_draws(gen: torch.Generator, batch: int, feat_shape, alpha: float, std: float):
    """λ, perm and noise drawn in AdaptiveMix's documented order from ``gen``."""
    seed = int(torch.randint(0, 2**62, (1,), generator=gen))
    lam = float(np.random.default_rng(seed).beta(alpha, alpha))
    perm = torch.randperm(batch, generator=gen)
    noise = torch.randn((batch, *feat_shape), generator=gen) * std
    return lam, perm, noise


def reference_phase(D, x, lam, perm, noise, distance="cosine"):
    """Three feature passes, exactly as the official code."""
    x_b = x[perm]
    x_mix = lam * x + (1 - lam) * x_b
    f_a, f_b, f_mix = D.features(x), D.features(x_b), D.features(x_mix)
    z = lam * f_a + (1 - lam) * f_b
    logits = D.head(z) + D.head(f_mix)
    target = (z + noise).detach().flatten(1)
    if distance == "cosine":
        c = -(f_mix.flatten(1) * target).sum(1) / (
            f_mix.flatten(1).norm(dim=1) * target.norm(dim=1)
        )
    else:
        c = ((f_mix.flatten(1) - target) ** 2).mean(1)
    return logits, c.mean()


def make_ctx(D, real, fake, gen, r1_gamma=0.0):
    return StepContext(None, D, real, fake, build_adv_loss("nonsaturating"), gen, r1_gamma)


@pytest.fixture
def batch():
    g = torch.Generator().manual_seed(123)
    return torch.rand(6, 1, 4, 4, generator=g) * 2 - 1, torch.rand(6, 1, 4, 4, generator=g) * 2 - 1


@pytest.mark.parametrize("distance", ["cosine", "mse"])
@pytest.mark.parametrize("alpha", [1.0, 0.4])
def test_d_loss_matches_three_pass_reference(batch, distance, alpha):
    real, fake = batch
    D = TinyD()
    method = AdaptiveMix(AdaptiveMixOptions(alpha=alpha, noise_std=0.05, distance=distance))
    gen = torch.Generator().manual_seed(7)
    ref_gen = torch.Generator().set_state(gen.get_state())

    loss, logs = method.d_loss(make_ctx(D, real, fake, gen))

    draws_real = reference_draws(ref_gen, 6, (3, 2, 2), alpha, 0.05)
    draws_fake = reference_draws(ref_gen, 6, (3, 2, 2), alpha, 0.05)
    logit_r, c_r = reference_phase(D, real, *draws_real, distance)
    logit_f, c_f = reference_phase(D, fake, *draws_fake, distance)
    expected = F.softplus(-logit_r).mean() + c_r + F.softplus(logit_f).mean() + c_f
    torch.testing.assert_close(loss, expected, rtol=1e-6, atol=1e-6)
    assert logs["consistency_d_real"] == pytest.approx(float(c_r.detach()), abs=1e-6)
    assert logs["consistency_d_fake"] == pytest.approx(float(c_f.detach()), abs=1e-6)


def test_g_loss_and_its_gradient_reach_the_generator_input(batch):
    _, fake = batch
    fake = fake.clone().requires_grad_(True)
    D = TinyD()
    method = AdaptiveMix(AdaptiveMixOptions())
    gen = torch.Generator().manual_seed(3)
    ref_gen = torch.Generator().set_state(gen.get_state())

    loss, _ = method.g_loss(make_ctx(D, None, fake, gen))
    (grad,) = torch.autograd.grad(loss, fake)

    logits, c = reference_phase(D, fake, *reference_draws(ref_gen, 6, (3, 2, 2), 1.0, 0.05))
    expected = F.softplus(-logits).mean() + c
    (expected_grad,) = torch.autograd.grad(expected, fake)
    torch.testing.assert_close(loss, expected)
    torch.testing.assert_close(grad, expected_grad)
    assert grad.abs().sum() > 0


def test_r1_is_taken_on_mixed_logits_wrt_unmixed_reals(batch):
    real, fake = batch
    D = TinyD()
    gamma = 2.0
    method = AdaptiveMix(AdaptiveMixOptions(phases=()))  # isolate R1 from the consistency
    gen = torch.Generator().manual_seed(11)
    ref_gen = torch.Generator().set_state(gen.get_state())

    loss, logs = method.d_loss(make_ctx(D, real, fake, gen, r1_gamma=gamma))

    x = real.clone().requires_grad_(True)
    logit_r, _ = reference_phase(D, x, *reference_draws(ref_gen, 6, (3, 2, 2), 1.0, 0.05))
    logit_f, _ = reference_phase(D, fake, *reference_draws(ref_gen, 6, (3, 2, 2), 1.0, 0.05))
    (g,) = torch.autograd.grad(logit_r.sum(), x)
    r1 = (g**2).sum(dim=(1, 2, 3)).mean()
    expected = F.softplus(-logit_r).mean() + F.softplus(logit_f).mean() + gamma / 2 * r1
    torch.testing.assert_close(loss, expected)
    assert logs["r1"] == pytest.approx(float(r1.detach()), rel=1e-5)


@pytest.mark.parametrize("batched", [False, True], ids=["two-passes", "one-batched-pass"])
def test_permutation_shortcut_equals_three_passes(monkeypatch, batch, batched):
    """f_b = f_a[perm], x and x_mix in one batched pass or one pass each: the same loss and
    gradients as three passes."""
    monkeypatch.setattr(adaptivemix_module, "one_batched_pass", lambda x: batched)
    real, fake = batch
    results = []
    for per_sample in (True, False):
        D = TinyD(per_sample=per_sample)
        gen = torch.Generator().manual_seed(5)
        loss, _ = AdaptiveMix(AdaptiveMixOptions()).d_loss(make_ctx(D, real, fake, gen, 1.0))
        grads = torch.autograd.grad(loss, list(D.parameters()))
        results.append((loss, grads))
    torch.testing.assert_close(results[0][0], results[1][0])
    for a, b in zip(results[0][1], results[1][1], strict=True):
        torch.testing.assert_close(a, b)


def test_hand_computed_two_sample_case():
    """Identity features and head = sum of the feature: every number checkable by hand."""

    class SumD(nn.Module):
        per_sample_features = True

        def features(self, x):
            return x

        def head(self, f):
            return f.flatten(1).sum(1)

    x = torch.tensor([[[[1.0, 0.0]]], [[[0.0, 3.0]]]])  # two 1×1×2 "images"
    gen = torch.Generator().manual_seed(0)
    ref_gen = torch.Generator().set_state(gen.get_state())
    lam, perm, _ = reference_draws(ref_gen, 2, (1, 1, 2), 1.0, 0.0)
    method = AdaptiveMix(AdaptiveMixOptions(noise_std=0.0))
    out = method.discriminate(SumD(), x, "g", make_ctx(None, None, None, gen))
    # head is linear here, so head(z) = head(f_mix) = λ·sum(x) + (1−λ)·sum(x[perm]);
    # f_mix equals z exactly, so the cosine consistency is exactly −1.
    sums = torch.tensor([1.0, 3.0])
    expected_logits = 2 * (lam * sums + (1 - lam) * sums[perm])
    torch.testing.assert_close(out.logits, expected_logits)
    assert float(out.extra_loss) == pytest.approx(-1.0, abs=1e-6)


def test_phases_without_consistency_add_nothing(batch):
    real, _ = batch
    method = AdaptiveMix(AdaptiveMixOptions(phases=("g",)))
    gen = torch.Generator().manual_seed(1)
    out = method.discriminate(TinyD(), real, "d_real", make_ctx(None, None, None, gen))
    assert out.extra_loss == 0.0 and out.logs == {}


@pytest.mark.parametrize(
    "options, key",
    [({"alpha": 0.0}, "alpha"), ({"distance": "l1"}, "distance"), ({"phases": ["x"]}, "phases")],
)
def test_bad_options_name_key_value_and_choices(options, key):
    from adaptivemix.errors import ConfigError
    from adaptivemix.gan.methods import build_method

    with pytest.raises(ConfigError, match=rf"adaptivemix\.{key}"):
        build_method("adaptivemix", options)


class PreviousAdaptiveMix(AdaptiveMix):
    """AdaptiveMix as implemented before the CPU speed-up: [x, x_mix] in one batched pass,
    rows permuted by indexing, the noisy target built inside autograd then detached."""

    def discriminate(self, D, x, phase, ctx):
        opt, gen = self.options, ctx.generator
        lam = sample_beta(opt.alpha, gen)
        perm = torch.randperm(x.shape[0], generator=gen, device=gen.device).to(x.device)
        x_mix = lam * x + (1.0 - lam) * x[perm]
        f_a, f_mix = D.features(torch.cat([x, x_mix])).chunk(2)
        z = lam * f_a + (1.0 - lam) * f_a[perm]
        noise = torch.randn(z.shape, generator=gen, device=gen.device).to(z) * opt.noise_std
        logits = D.head(z) + D.head(f_mix)
        if phase not in opt.phases:
            return Discrimination(logits)
        term = consistency(f_mix, z + noise, opt.distance)
        return Discrimination(
            logits, opt.weight * term, {f"consistency_{phase}": float(term.detach())}
        )


def full_step_losses(method, augment: str, r1_gamma: float, gp_lambda: float):
    """d_loss and g_loss of ``method`` on fixed DCGAN networks and data, through the base
    class (augmentation, penalties, logs), with the gradients of D and G and the final state
    of the step's generator."""
    G, D = build_models("dcgan", 16, 1, 16, 8, 8, seed=0)
    data = torch.Generator().manual_seed(99)
    real = torch.rand(8, 1, 16, 16, generator=data) * 2 - 1
    z = torch.randn(8, 16, generator=data)
    gen = torch.Generator().manual_seed(4)
    pipeline = AugmentPipeline([(augment, build_augmentation(augment))] if augment else [])
    ctx = StepContext(
        G, D, real, G(z), build_adv_loss("nonsaturating"), gen, r1_gamma, z=z,
        augment=lambda x: pipeline(x, gen), gp_lambda=gp_lambda,
    )  # fmt: skip
    d_loss, d_logs = method.d_loss(ctx)
    d_grads = torch.autograd.grad(d_loss, list(D.parameters()))
    g_loss, g_logs = method.g_loss(ctx)
    g_grads = torch.autograd.grad(g_loss, list(G.parameters()))
    return (d_loss, g_loss), {**d_logs, **g_logs}, (*d_grads, *g_grads), gen.get_state()


@pytest.mark.parametrize("batched", [False, True], ids=["two-passes", "one-batched-pass"])
@pytest.mark.parametrize(
    "augment, r1_gamma, gp_lambda",
    [("", 0.0, 0.0), ("diffaugment", 0.0, 0.0), ("", 2.0, 0.0), ("diffaugment", 2.0, 0.0),
     ("", 0.0, 10.0)],
)  # fmt: skip
def test_faster_implementation_equals_the_previous_one(
    monkeypatch, batched, augment, r1_gamma, gp_lambda
):
    """Same draws in the same order, so the same losses, logs and gradients of D and G."""
    monkeypatch.setattr(adaptivemix_module, "one_batched_pass", lambda x: batched)
    options = AdaptiveMixOptions()
    new = full_step_losses(AdaptiveMix(options), augment, r1_gamma, gp_lambda)
    old = full_step_losses(PreviousAdaptiveMix(options), augment, r1_gamma, gp_lambda)
    torch.testing.assert_close(new[0], old[0], rtol=1e-5, atol=1e-6)
    assert new[1].keys() == old[1].keys()
    for key, value in old[1].items():
        assert new[1][key] == pytest.approx(value, rel=1e-5, abs=1e-6), key
    assert len(new[2]) == len(old[2])
    for a, b in zip(new[2], old[2], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    assert torch.equal(new[3], old[3])  # every draw consumed, in the same order
