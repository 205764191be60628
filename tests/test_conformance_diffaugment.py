"""DiffAugment (baselines/diffaugment.py) against mit-han-lab/data-efficient-gans.

Reference: ``DiffAugment_pytorch.py`` (the ops) and ``DiffAugment-stylegan2-pytorch/
training/loss.py`` (``run_D`` augments every image D sees: reals and fakes in the D step,
fakes in the G step; R1's gradient is taken w.r.t. the un-augmented reals), rewritten in
:func:`tests.conformance_refs.ref_diffaugment` with the draws replayed from a twin generator.
"""

from __future__ import annotations

import pytest
import torch

from adaptivemix.gan.augment import build_augmentation
from adaptivemix.gan.methods import GanMethod
from tests.conformance_refs import (
    FULL_POLICY,
    adv_branches,
    assert_conforms,
    make_ctx,
    r1_term,
    ref_diffaugment,
    step_batch,
    tiny_stylegan2,
    twin,
)


@pytest.mark.parametrize(
    "shape, options",
    [
        ((8, 3, 16, 16), {}),
        ((5, 3, 12, 10), {"translation_ratio": 0.3, "cutout_ratio": 0.3}),  # odd square side
        ((4, 1, 9, 16), {"policy": ["cutout", "color"]}),
    ],
)
def test_ops_equal_the_official_definitions_under_the_same_draws(shape, options):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(2)) * 2 - 1
    gen = torch.Generator().manual_seed(5)
    ref_gen = twin(gen)
    ours = build_augmentation("diffaugment", options)(x, gen)
    kwargs = {k: v for k, v in options.items() if k != "policy"}
    ref = ref_diffaugment(x, ref_gen, tuple(options.get("policy", FULL_POLICY)), **kwargs)
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6)
    assert torch.equal(gen.get_state(), ref_gen.get_state())  # the same number of draws


def test_d_and_g_steps_match_the_official_loss_with_diffaugment():
    """vanilla + DiffAugment, non-saturating loss, R1 γ = 2, on a tiny StyleGAN2."""
    G, D = tiny_stylegan2()
    real, _, fake = step_batch(G)
    aug = build_augmentation("diffaugment")
    gen = torch.Generator().manual_seed(3)
    ref_gen = twin(gen)
    ctx = make_ctx(G, D, real, fake, gen, r1_gamma=2.0, augment=lambda x: aug(x, gen))

    d_loss, _ = GanMethod().d_loss(ctx)
    g_loss, _ = GanMethod().g_loss(ctx)

    on_real, on_fake, g_fake = adv_branches("nonsaturating")
    x = real.clone().requires_grad_(True)
    real_logits = D(ref_diffaugment(x, ref_gen))
    fake_logits = D(ref_diffaugment(fake.detach(), ref_gen))
    ref_d = on_real(real_logits).mean() + on_fake(fake_logits).mean()
    ref_d = ref_d + r1_term(real_logits, x, 2.0)
    ref_g = g_fake(D(ref_diffaugment(fake, ref_gen))).mean()

    assert_conforms(d_loss, ref_d, D)
    assert_conforms(g_loss, ref_g, G, D)
    assert torch.equal(gen.get_state(), ref_gen.get_state())
