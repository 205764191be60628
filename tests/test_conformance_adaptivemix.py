"""AdaptiveMix (adaptivemix/gan/adaptivemix.py) against WentianZhang-ML/AdaptiveMix, on StyleGAN2.

Reference: ``generation/training/networks.py`` ``Discriminator.adaptive_mix`` (λ ~ Beta(1, 1)
once per call; ``x_mix = λ·x_a + (1−λ)·x_b`` with ``x_b`` the batch permuted; three
``embedding`` passes — every block before the 4×4 epilogue — on ``x_mix``, ``x_a``, ``x_b``;
``z = λ·f_a + (1−λ)·f_b``; logits ``classifier(z) + classifier(f_mix)``; target ``z + N(0, σ²)``)
and ``generation/training/loss.py`` ``StyleGAN2Loss`` (``run_D`` augments before mixing;
Dgen: softplus(l) − cos(f_mix, target.detach()); Dreal: softplus(−l) − cos(…) + γ/2·‖∇_x l‖²
with x the un-mixed reals; Gmain: softplus(−l) − cos(…); per-sample, then the batch mean).
Upstream's ``Dboth`` phase is replayed (R1 on the same pass as the adversarial term); its
lazy ``Dreg`` phase runs a separate pass with fresh draws, which the harness does not.
The reference below calls only ``D.features`` (upstream's ``embedding``) and ``D.head``
(``classifier``); λ, the permutation and the noise are replayed from a twin generator.
"""

from __future__ import annotations

import pytest
import torch

import adaptivemix.gan.adaptivemix as adaptivemix_module
from adaptivemix.gan.adaptivemix import AdaptiveMix, AdaptiveMixOptions
from adaptivemix.gan.augment import build_augmentation
from tests.conformance_refs import (
    BATCH,
    adv_branches,
    assert_conforms,
    make_ctx,
    r1_term,
    ref_beta,
    ref_diffaugment,
    step_batch,
    tiny_stylegan2,
    twin,
)


def ref_adaptive_mix(D, x, gen, alpha=1.0, noise_std=0.05, distance="cosine"):
    """(logits, per-sample consistency) of one upstream ``adaptive_mix`` call."""
    lam = float(ref_beta(gen, alpha))
    perm = torch.randperm(x.shape[0], generator=gen)
    x_b = x[perm]
    f_mix, f_a, f_b = D.features(lam * x + (1 - lam) * x_b), D.features(x), D.features(x_b)
    z = lam * f_a + (1 - lam) * f_b
    target = (z + noise_std * torch.randn(z.shape, generator=gen)).detach()
    logits = D.head(z) + D.head(f_mix)
    a, t = f_mix.flatten(1), target.flatten(1)
    if distance == "cosine":  # −cos (the norms here are far from cosine_similarity's ε)
        c = -(a * t).sum(1) / (a.norm(dim=1) * t.norm(dim=1))
    else:  # the classification code's MSE, as the ``distance="mse"`` option
        c = ((a - t) ** 2).mean(1)
    return logits, c


def ref_steps(G, D, real, fake, gen, gamma, augment=lambda x, g: x, **options):
    """Upstream's Dgen + Dreal(+R1) losses as one D loss, then Gmain, in the harness's order
    (D on reals, D on fakes, G)."""
    on_real, on_fake, g_fake = adv_branches("nonsaturating")
    x = real.clone().requires_grad_(True)
    real_logits, c_real = ref_adaptive_mix(D, augment(x, gen), gen, **options)
    fake_logits, c_fake = ref_adaptive_mix(D, augment(fake.detach(), gen), gen, **options)
    d_loss = (on_real(real_logits) + c_real).mean() + (on_fake(fake_logits) + c_fake).mean()
    if gamma > 0:
        d_loss = d_loss + r1_term(real_logits, x, gamma)
    g_logits, c_g = ref_adaptive_mix(D, augment(fake, gen), gen, **options)
    return d_loss, (g_fake(g_logits) + c_g).mean()


@pytest.mark.parametrize("batched", [False, True], ids=["two-passes", "one-batched-pass"])
@pytest.mark.parametrize(
    "gamma, augment, options",
    [
        (2.0, False, {}),  # upstream's GAN settings: α = 1, σ = 0.05, cosine
        (0.0, True, {}),  # with DiffAugment before mixing (run_D's augment_pipe)
        (2.0, False, {"alpha": 0.4, "noise_std": 0.2, "distance": "mse"}),
    ],
)
def test_d_and_g_losses_and_gradients_match_upstream(monkeypatch, batched, gamma, augment,
                                                     options):  # fmt: skip
    monkeypatch.setattr(adaptivemix_module, "one_batched_pass", lambda x: batched)
    G, D = tiny_stylegan2()
    real, _, fake = step_batch(G)
    gen = torch.Generator().manual_seed(7)
    ref_gen = twin(gen)
    aug = build_augmentation("diffaugment")
    ours_aug = (lambda x: aug(x, gen)) if augment else None
    ref_aug = ref_diffaugment if augment else (lambda x, g: x)
    method = AdaptiveMix(AdaptiveMixOptions(**options))
    ctx = make_ctx(G, D, real, fake, gen, r1_gamma=gamma, augment=ours_aug)

    d_loss, _ = method.d_loss(ctx)
    g_loss, _ = method.g_loss(ctx)
    ref_d, ref_g = ref_steps(G, D, real, fake, ref_gen, gamma, ref_aug, **options)

    assert_conforms(d_loss, ref_d, D)
    assert_conforms(g_loss, ref_g, G, D)
    assert torch.equal(gen.get_state(), ref_gen.get_state())


def test_the_reference_sees_a_wrong_draw():
    """The comparison can fail: the reference with the permutation drawn one step late
    (a different λ·x + (1−λ)·x[perm] pairing) disagrees with our loss."""
    G, D = tiny_stylegan2()
    real, _, fake = step_batch(G)
    gen = torch.Generator().manual_seed(7)
    ref_gen = twin(gen)
    torch.randperm(BATCH, generator=ref_gen)  # one extra draw shifts the stream
    d_loss, _ = AdaptiveMix(AdaptiveMixOptions()).d_loss(make_ctx(G, D, real, fake, gen))
    ref_d, _ = ref_steps(G, D, real, fake, ref_gen, 0.0)
    assert abs(float(d_loss.detach()) - float(ref_d.detach())) > 1e-3
