"""Mixup, CutMix, SRMix (baselines/{mixup,cutmix,srmix,_mixing}.py) on StyleGAN2, against a
reference written from their definitions.

No official code exists for the study that compares them on GANs (Takamoto & Morishita,
MIPR 2021, arXiv 2104.03535; only its abstract was available), so the reference follows the
definitions stated in METHODS.md and the modules' docstrings: per sample, λ ~ Beta(α, α); a
mask M (1 = real): constant λ (Mixup), 1 outside a box of side ⌊size·√(1−λ)⌋ starting at
centre − ⌊side/2⌋, clipped (CutMix, box as Yun et al., ICCV 2019), that box mask blurred by a
truncated (3σ) normalised Gaussian with replicate padding (SRMix), λ = mean(M);
``x = M⊙real + (1−M)⊙fake`` after augmenting both; loss ``λ·L_real(D(x)) + (1−λ)·L_fake(D(x))``
(``mixture``) or BCE against the soft label λ (``label``); R1 on a plain pass over the
un-mixed reals (``replace``), or the plain loss with its R1 plus the mixed loss (``add``); the
G loss is the plain one. The mask is built by loops and a direct (non-separable) 2-D blur;
the draws (coin, augmentations, one int64 seeding NumPy's Beta, box centres rows then
columns) are replayed from a twin generator.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from adaptivemix.gan.augment import build_augmentation
from adaptivemix.gan.methods import build_method
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


def ref_box_mask(lam: np.float32, cy: int, cx: int, h: int, w: int) -> np.ndarray:
    """CutMix's mask (1 = real): 0 on the clipped box, side computed in float32 as drawn."""
    mask = np.ones((h, w))
    side_h = int(np.floor(np.float32(h) * np.sqrt(np.float32(1.0) - lam)))
    side_w = int(np.floor(np.float32(w) * np.sqrt(np.float32(1.0) - lam)))
    top, left = cy - side_h // 2, cx - side_w // 2
    for y in range(max(top, 0), min(top + side_h, h)):
        for x in range(max(left, 0), min(left + side_w, w)):
            mask[y, x] = 0.0
    return mask


def gaussian_taps(sigma: float) -> np.ndarray:
    radius = max(1, math.ceil(3 * sigma))
    k = np.exp(-0.5 * (np.arange(-radius, radius + 1) / sigma) ** 2)
    return k / k.sum()


def ref_blur(mask: np.ndarray, sigma_y: float, sigma_x: float) -> np.ndarray:
    """Direct 2-D convolution with the outer product of the two Gaussians, edge replicated."""
    ky, kx = gaussian_taps(sigma_y), gaussian_taps(sigma_x)
    ry, rx = len(ky) // 2, len(kx) // 2
    padded = np.pad(mask, ((ry, ry), (rx, rx)), mode="edge")
    out = np.zeros_like(mask)
    h, w = mask.shape
    for i, a in enumerate(ky):
        for j, b in enumerate(kx):
            out += a * b * padded[i : i + h, j : j + w]
    return out


def ref_masks(name, lam32, gen, h, w, blur_sigma):
    """(M (B, 1, H, W), λ (B,)) of one mixed batch, drawing the box centres from ``gen``."""
    if name == "mixup":
        lam = torch.from_numpy(lam32)
        return lam.view(-1, 1, 1, 1), lam
    cy = torch.randint(h, (len(lam32),), generator=gen)
    cx = torch.randint(w, (len(lam32),), generator=gen)
    masks = []
    for i, lam in enumerate(lam32):
        m = ref_box_mask(lam, int(cy[i]), int(cx[i]), h, w)
        if name == "srmix" and blur_sigma > 0:
            m = ref_blur(m, blur_sigma * h, blur_sigma * w)
        masks.append(m)
    mask = torch.tensor(np.stack(masks), dtype=torch.float32)[:, None]
    return mask, mask.mean(dim=(1, 2, 3))


def ref_mixed_loss(D, a_real, a_fake, gen, name, adv, opt):
    lam32 = ref_beta(gen, opt.get("alpha", 1.0), BATCH).astype(np.float32)
    mask, lam = ref_masks(name, lam32, gen, *a_real.shape[-2:], opt.get("blur_sigma", 0.1))
    logits = D(mask * a_real.detach() + (1 - mask) * a_fake)
    if opt.get("loss_form") == "label":  # BCE against the soft label λ
        per_sample = -(lam * F.logsigmoid(logits) + (1 - lam) * F.logsigmoid(-logits))
    else:
        on_real, on_fake, _ = adv_branches(adv)
        per_sample = lam * on_real(logits) + (1 - lam) * on_fake(logits)
    return per_sample.mean()


def ref_d_loss(D, real, fake, gen, name, adv, gamma, augment, opt):
    """The D loss of one step: coin, then plain and/or mixed terms, R1 on plain reals."""
    prob = opt.get("prob", 1.0)
    mixes = prob == 1.0 or (0 < prob < 1 and bool(torch.rand((), generator=gen) < prob))
    add = opt.get("mode") == "add"
    on_real, on_fake, _ = adv_branches(adv)
    x = real.clone().requires_grad_(gamma > 0)
    loss = 0.0
    if not mixes or add:  # the plain loss and its R1
        real_logits = D(augment(x, gen))
        loss = on_real(real_logits).mean() + on_fake(D(augment(fake.detach(), gen))).mean()
        if gamma > 0:
            loss = loss + r1_term(real_logits, x, gamma)
    if mixes:
        a_real, a_fake = augment(x, gen), augment(fake.detach(), gen)
        loss = loss + ref_mixed_loss(D, a_real, a_fake, gen, name, adv, opt)
        if gamma > 0 and not add:  # R1 on a plain pass over the same augmented reals
            loss = loss + r1_term(D(a_real), x, gamma)
    return loss, mixes


CASES = [  # (adv loss, R1 γ, DiffAugment, options)
    ("nonsaturating", 2.0, True, {}),
    ("hinge", 0.0, False, {"alpha": 0.4}),
    ("hinge", 2.0, False, {"mode": "add", "loss_form": "label"}),
    ("nonsaturating", 2.0, False, {"mode": "add"}),
]


@pytest.mark.parametrize("name", ["mixup", "cutmix", "srmix"])
@pytest.mark.parametrize("adv, gamma, augment, options", CASES)
def test_d_and_g_losses_and_gradients_match_the_definitions(name, adv, gamma, augment, options):
    G, D = tiny_stylegan2()
    real, _, fake = step_batch(G)
    if name == "srmix" and options.get("alpha") == 0.4:
        options = {**options, "blur_sigma": 0.25}
    gen = torch.Generator().manual_seed(11)
    ref_gen = twin(gen)
    aug = build_augmentation("diffaugment")
    ours_aug = (lambda x: aug(x, gen)) if augment else None
    ref_aug = ref_diffaugment if augment else (lambda x, g: x)
    method = build_method(name, options)
    ctx = make_ctx(G, D, real, fake, gen, adv, gamma, ours_aug)

    d_loss, logs = method.d_loss(ctx)
    g_loss, _ = method.g_loss(ctx)
    ref_d, _ = ref_d_loss(D, real, fake, ref_gen, name, adv, gamma, ref_aug, options)
    ref_g = adv_branches(adv)[2](D(ref_aug(fake, ref_gen))).mean()

    assert logs["mix_applied"] == 1.0
    assert_conforms(d_loss, ref_d, D)
    assert_conforms(g_loss, ref_g, G, D)
    assert torch.equal(gen.get_state(), ref_gen.get_state())


@pytest.mark.parametrize("name", ["mixup", "cutmix", "srmix"])
def test_a_coin_per_step_with_prob_one_half(name):
    """prob = 0.5: each step draws the coin first; plain and mixed steps both conform."""
    G, D = tiny_stylegan2()
    real, _, fake = step_batch(G)
    method = build_method(name, {"prob": 0.5})
    outcomes = set()
    for seed in range(4):
        gen = torch.Generator().manual_seed(seed)
        ref_gen = twin(gen)
        d_loss, logs = method.d_loss(make_ctx(G, D, real, fake, gen, r1_gamma=1.0))
        ref_d, mixed = ref_d_loss(D, real, fake, ref_gen, name, "nonsaturating", 1.0,
                                  lambda x, g: x, {"prob": 0.5})  # fmt: skip
        assert logs["mix_applied"] == float(mixed)
        outcomes.add(mixed)
        assert_conforms(d_loss, ref_d, D)
    assert outcomes == {False, True}
