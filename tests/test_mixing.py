"""Mixup, CutMix and SRMix on D's inputs (baselines/{mixup,cutmix,srmix}.py, arXiv 2104.03535).

Expected values come from hand computations or from slow, loop-based second
implementations written here from the definitions in the modules' docstrings (box of side
⌊size·√(1−λ)⌋ starting at centre − ⌊side/2⌋, clipped; Gaussian truncated at 3σ with replicate
padding; λ-weighted mixture loss), never from the code's own output. Random draws are
replicated from a copy of the generator in the documented order: coin (only when
0 < prob < 1), augment(real), augment(fake), one int64 seeding NumPy's Beta draws, centre rows,
centre columns.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from adaptivemix.errors import ConfigError
from adaptivemix.gan.losses import build_adv_loss
from adaptivemix.gan.methods import METHODS, GanMethod, StepContext, build_method
from adaptivemix.gan.trainer import build_state, train_step
from baselines._mixing import box_indicators, branch_losses, region_mask, sample_betas
from baselines.cutmix import CutMix
from baselines.mixup import Mixup
from baselines.srmix import SRMix, SRMixOptions, blur_1d, gaussian_kernel
from tests.helpers import tiny_run_config

NAMES = ("mixup", "cutmix", "srmix")


# ---------------------------------------------------------------- helpers


class MeanD(nn.Module):
    """logit = mean pixel value of the sample: logits checkable by hand. Records its inputs."""

    per_sample_features = True

    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(torch.ones(()))
        self.inputs: list[torch.Tensor] = []

    def features(self, x):
        self.inputs.append(x.detach().clone())
        return x

    def head(self, f):
        return self.scale * f.flatten(1).mean(1)


class TinyD(nn.Module):
    """A small non-linear D (for R1, whose gradient must not be trivial)."""

    per_sample_features = True

    def __init__(self, channels: int = 1):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(channels, 3, 3, stride=2, padding=1)
        self.out = nn.Linear(12, 1)

    def features(self, x):
        return torch.tanh(self.conv(x))

    def head(self, f):
        return self.out(f.flatten(1)).squeeze(1)


def make_ctx(D, real, fake, gen, adv="nonsaturating", r1_gamma=0.0, augment=None, G=None):
    ctx = StepContext(G, D, real, fake, build_adv_loss(adv), gen, r1_gamma)
    if augment is not None:
        ctx.augment = augment
    return ctx


def clone(gen: torch.Generator) -> torch.Generator:
    return torch.Generator().set_state(gen.get_state())


def reference_betas(gen: torch.Generator, n: int, alpha: float) -> torch.Tensor:
    """The documented Beta draw: one int64 from the generator seeds NumPy's Beta(α, α)."""
    seed = int(torch.randint(0, 2**62, (1,), generator=gen))
    return torch.tensor(np.random.default_rng(seed).beta(alpha, alpha, size=n), dtype=torch.float32)


def slow_box_mask(lam: float, cy: int, cx: int, h: int, w: int) -> tuple[np.ndarray, float]:
    """Loop-based CutMix mask (1 = real) and the fraction of real pixels, in float32 as the code."""
    root = np.sqrt(np.float32(1.0) - np.float32(lam))
    side_h, side_w = int(np.floor(np.float32(h) * root)), int(np.floor(np.float32(w) * root))
    top, left = cy - side_h // 2, cx - side_w // 2
    mask = np.ones((h, w), dtype=np.float32)
    for y in range(h):
        for x in range(w):
            if top <= y < top + side_h and left <= x < left + side_w:
                mask[y, x] = 0.0
    return mask, 1.0 - float((mask == 0).sum()) / (h * w)


def slow_blur_2d(mask: np.ndarray, sigma_y: float, sigma_x: float) -> np.ndarray:
    """Direct 2-D convolution, replicate padding, Gaussian truncated at ⌈3σ⌉, loops only."""
    h, w = mask.shape

    def weights(sigma):
        r = max(1, math.ceil(3 * sigma))
        k = [math.exp(-(d * d) / (2 * sigma * sigma)) for d in range(-r, r + 1)]
        return r, [v / sum(k) for v in k]

    (ry, ky), (rx, kx) = weights(sigma_y), weights(sigma_x)
    out = np.zeros_like(mask, dtype=np.float64)
    for y in range(h):
        for x in range(w):
            for i, dy in enumerate(range(-ry, ry + 1)):
                for j, dx in enumerate(range(-rx, rx + 1)):
                    yy, xx = min(max(y + dy, 0), h - 1), min(max(x + dx, 0), w - 1)
                    out[y, x] += ky[i] * kx[j] * mask[yy, xx]
    return out


def tiny_gan(method: str, seed: int = 0, **options):
    """A tiny DCGAN pair and a method from the project's helpers (build_state)."""
    plugin = build_method(method, options)
    cfg = tiny_run_config(method, seed=seed)
    state = build_state(cfg, plugin, 1)
    return plugin, state, cfg


def gan_ctx(state, cfg, seed: int, r1_gamma: float = 0.0, adv="nonsaturating", augment=None):
    g = torch.Generator().manual_seed(1000 + seed)
    real = torch.rand(cfg.batch_size, 1, 16, 16, generator=g) * 2 - 1
    z = torch.randn(cfg.batch_size, cfg.z_dim, generator=g)
    gen = torch.Generator().manual_seed(seed)
    return make_ctx(state.D, real, state.G(z), gen, adv, r1_gamma, augment, G=state.G)


@pytest.fixture
def pair():
    g = torch.Generator().manual_seed(123)
    return torch.rand(6, 1, 4, 4, generator=g) * 2 - 1, torch.rand(6, 1, 4, 4, generator=g) * 2 - 1


# ---------------------------------------------------------------- CutMix boxes


def _mask(rows_text: str) -> torch.Tensor:
    return torch.tensor([[float(c) for c in row] for row in rows_text.split()])


@pytest.mark.parametrize(
    "lam, cy, cx, expected, lam_after",
    [
        # √(1−0.75) = 0.5: side 2; rows 0–1, columns 1–2
        (0.75, 1, 2, "1001 1001 1111 1111", 0.75),
        # same side at the corner: start −1 is clipped to 0, a single pixel remains
        (0.75, 0, 0, "0111 1111 1111 1111", 15 / 16),
        # √(1−7/16) = 0.75: odd side 3 kept whole (start = 2 − 1)
        (7 / 16, 2, 2, "1111 1000 1000 1000", 7 / 16),
        # side 3 at the far corner: rows/columns 2–4 clipped to 2–3
        (7 / 16, 3, 3, "1111 1111 1100 1100", 12 / 16),
        (1.0, 2, 1, "1111 1111 1111 1111", 1.0),  # no box
        (0.0, 2, 2, "0000 0000 0000 0000", 0.0),  # the whole image
    ],
)
def test_hand_placed_box_and_recomputed_lambda(lam, cy, cx, expected, lam_after):
    rows, cols = box_indicators(torch.tensor([lam]), 4, 4, torch.tensor([cy]), torch.tensor([cx]))
    mask = region_mask(rows, cols)
    assert mask.shape == (1, 1, 4, 4)
    assert torch.equal(mask[0, 0], _mask(expected))
    # λ as CutMix recomputes it: 1 − box area / image area
    assert float(1 - rows.mean() * cols.mean()) == pytest.approx(lam_after, abs=1e-7)


def test_non_square_box_uses_each_sides_length():
    # 2×8, λ = 0.75: sides ⌊2·0.5⌋ = 1 row and ⌊8·0.5⌋ = 4 columns; centre (1, 4) → cols 2–5
    rows, cols = box_indicators(torch.tensor([0.75]), 2, 8, torch.tensor([1]), torch.tensor([4]))
    assert torch.equal(region_mask(rows, cols)[0, 0], _mask("11111111 11000011"))


def test_cutmix_masks_match_a_loop_reference_and_only_shrink_the_box():
    n, h, w = 64, 7, 9
    gen = torch.Generator().manual_seed(5)
    drawn = reference_betas(torch.Generator().manual_seed(9), n, 0.5)
    ref = clone(gen)
    mask, lam = CutMix().mask(drawn, h, w, gen)
    cy = torch.randint(h, (n,), generator=ref)  # the documented centre draws: rows, then columns
    cx = torch.randint(w, (n,), generator=ref)
    for i in range(n):
        expected, frac = slow_box_mask(float(drawn[i]), int(cy[i]), int(cx[i]), h, w)
        assert torch.equal(mask[i, 0], torch.from_numpy(expected))
        assert float(lam[i]) == pytest.approx(frac, abs=1e-6)
    # flooring and clipping only shrink the box: box area ≤ (1 − λ_drawn)·HW
    assert bool((lam >= drawn - 1e-6).all())


@pytest.mark.parametrize("name", NAMES)
def test_lambda_is_the_fraction_of_real_pixels(name):
    real, fake = torch.ones(32, 3, 8, 8), -torch.ones(32, 3, 8, 8)
    method = build_method(name, {})
    x, lam = method.mix_batch(real, fake, torch.Generator().manual_seed(2))
    share_real = ((x + 1) / 2).mean(dim=(1, 2, 3))  # x = 2M − 1 for these constant images
    torch.testing.assert_close(share_real, lam, atol=1e-6, rtol=0)
    assert bool(((lam >= 0) & (lam <= 1)).all()) and lam.std() > 0  # per-sample, not shared
    assert torch.equal(x[:, 0], x[:, 2])  # one mask for every channel
    if name == "cutmix":  # hard boxes: each pixel is exactly real or exactly fake
        assert bool(((x == 1) | (x == -1)).all())
        torch.testing.assert_close((x == 1).float().mean(dim=(1, 2, 3)), lam, atol=1e-6, rtol=0)


# ---------------------------------------------------------------- Mixup


@pytest.mark.parametrize("alpha", [1.0, 0.2])
def test_mixup_pixels_follow_the_formula(pair, alpha):
    real, fake = pair
    gen = torch.Generator().manual_seed(4)
    lam_ref = reference_betas(clone(gen), 6, alpha)
    x, lam = Mixup(Mixup.Options(alpha=alpha)).mix_batch(real, fake, gen)
    torch.testing.assert_close(lam, lam_ref)
    for i in range(6):
        expected = lam_ref[i] * real[i] + (1 - lam_ref[i]) * fake[i]
        torch.testing.assert_close(x[i], expected)


def test_beta_draws_have_the_beta_moments():
    lam = sample_betas(2.0, 20000, torch.Generator().manual_seed(0))
    # Beta(2, 2): mean 1/2, variance αβ / ((α+β)²(α+β+1)) = 4 / (16·5) = 0.05
    assert float(lam.mean()) == pytest.approx(0.5, abs=0.01)
    assert float(lam.var()) == pytest.approx(0.05, abs=0.003)


# ---------------------------------------------------------------- SRMix


@pytest.mark.parametrize("sigma", [0.3, 1.0, 2.5])
def test_gaussian_kernel_is_symmetric_and_sums_to_one(sigma):
    k = gaussian_kernel(sigma)
    radius = math.ceil(3 * sigma)
    assert k.numel() == 2 * radius + 1
    assert torch.equal(k, k.flip(0))
    assert float(k.sum()) == pytest.approx(1.0, abs=1e-6)
    ratio = float(k[radius + 1] / k[radius])  # neighbouring taps: e^{−1/(2σ²)}
    assert ratio == pytest.approx(math.exp(-1 / (2 * sigma**2)), rel=1e-5)


def test_smoothed_mask_matches_a_direct_2d_convolution():
    # 10×8 image, λ = 0.75: a 5×4 box at centre (3, 6), clipped on the right
    h, w, sigma = 10, 8, 0.15
    rows, cols = box_indicators(torch.tensor([0.75]), h, w, torch.tensor([3]), torch.tensor([6]))
    fast = region_mask(blur_1d(rows, sigma * h), blur_1d(cols, sigma * w))[0, 0]
    hard = region_mask(rows, cols)[0, 0].numpy()
    slow = slow_blur_2d(hard, sigma * h, sigma * w)
    torch.testing.assert_close(fast.double(), torch.from_numpy(slow), atol=1e-6, rtol=0)


@pytest.mark.parametrize("blur", [0.05, 0.1, 0.3])
def test_srmix_mask_properties(blur):
    gen = torch.Generator().manual_seed(8)
    drawn = reference_betas(torch.Generator().manual_seed(1), 32, 1.0)
    mask, lam = SRMix(SRMixOptions(blur_sigma=blur)).mask(drawn, 16, 16, gen)
    assert mask.shape == (32, 1, 16, 16)
    assert bool(((mask >= 0) & (mask <= 1)).all())
    torch.testing.assert_close(lam, mask.mean(dim=(1, 2, 3)))
    hard, _ = CutMix().mask(drawn, 16, 16, torch.Generator().manual_seed(8))
    assert not torch.equal(mask, hard)  # smoothing changed something...
    assert bool(((mask - hard).abs() < 1).all())  # ...but never swapped real and fake


def test_blur_zero_is_cutmix():
    drawn = reference_betas(torch.Generator().manual_seed(1), 32, 1.0)
    m_sr, lam_sr = SRMix(SRMixOptions(blur_sigma=0.0)).mask(
        drawn, 12, 12, torch.Generator().manual_seed(3)
    )
    m_cut, lam_cut = CutMix().mask(drawn, 12, 12, torch.Generator().manual_seed(3))
    assert torch.equal(m_sr, m_cut)
    torch.testing.assert_close(lam_sr, lam_cut)


def test_mask_far_from_edges_is_unchanged():
    # 16×16, λ = 0.75: an 8×8 box over rows/columns 4–11; σ = 0.8 px → kernel radius 3
    rows, cols = box_indicators(torch.tensor([0.75]), 16, 16, torch.tensor([8]), torch.tensor([8]))
    hard = region_mask(rows, cols)[0, 0]
    soft = region_mask(blur_1d(rows, 0.8), blur_1d(cols, 0.8))[0, 0]
    r = 3
    checked = 0
    for y in range(16):
        for x in range(16):
            window = hard[max(y - r, 0) : y + r + 1, max(x - r, 0) : x + r + 1]
            if bool((window == window[0, 0]).all()):  # no edge within the kernel's reach
                assert float(soft[y, x]) == pytest.approx(float(hard[y, x]), abs=1e-6)
                checked += 1
    # the box's 2×2 core (rows/columns 7–8) and the outermost ring (16² − 14² = 60 pixels)
    assert checked == 4 + 60
    # on the edge (column 4 is the box's first): 1 − Σ_{d=0..3} w(d) / Σ_{d=−3..3} w(d),
    # w(d) = e^{−d²/(2·0.8²)}; the pixel outside the edge is its mirror image
    w = [math.exp(-(d * d) / (2 * 0.8**2)) for d in range(4)]
    on_edge = 1 - sum(w) / (w[0] + 2 * sum(w[1:]))
    assert float(soft[8, 4]) == pytest.approx(on_edge, abs=1e-6)
    assert float(soft[8, 3]) == pytest.approx(1 - on_edge, abs=1e-6)


def test_replicate_padding_keeps_a_boxless_mask_real_and_a_border_box_dark():
    # no box (λ = 1): the blurred mask stays exactly 1 (zero padding would fade the border)
    rows, cols = box_indicators(torch.tensor([1.0]), 8, 8, torch.tensor([4]), torch.tensor([4]))
    soft = region_mask(blur_1d(rows, 2.0), blur_1d(cols, 2.0))
    torch.testing.assert_close(soft, torch.ones_like(soft))
    # a full-height box stays fully fake at the top and bottom rows of its columns
    rows, cols = box_indicators(torch.tensor([0.0]), 8, 8, torch.tensor([4]), torch.tensor([4]))
    soft = region_mask(blur_1d(rows, 2.0), blur_1d(cols, 2.0))
    torch.testing.assert_close(soft, torch.zeros_like(soft))


# ---------------------------------------------------------------- losses


def test_mixture_loss_by_hand_nonsaturating_and_hinge():
    logits, lam = torch.tensor([0.0, 2.0]), torch.tensor([0.25, 1.0])
    real, fake = branch_losses(logits, lam, build_adv_loss("nonsaturating"), "mixture")
    # λ·softplus(−l) and (1−λ)·softplus(l)
    torch.testing.assert_close(real, torch.tensor([0.25 * math.log(2), math.log(1 + math.exp(-2))]))
    torch.testing.assert_close(fake, torch.tensor([0.75 * math.log(2), 0.0]))
    real, fake = branch_losses(logits, lam, build_adv_loss("hinge"), "mixture")
    # λ·relu(1 − l) and (1−λ)·relu(1 + l)
    torch.testing.assert_close(real, torch.tensor([0.25, 0.0]))
    torch.testing.assert_close(fake, torch.tensor([0.75, 0.0]))


@pytest.mark.parametrize("adv", ["nonsaturating", "hinge"])
def test_mixup_d_loss_end_to_end_by_hand(adv):
    """Constant images +1/−1 and D = mean pixel: sample i's logit is λ_i − (1 − λ_i) = 2λ_i − 1."""
    real, fake = torch.ones(8, 1, 4, 4), -torch.ones(8, 1, 4, 4)
    gen = torch.Generator().manual_seed(6)
    lam = reference_betas(clone(gen), 8, 1.0)
    loss, logs = Mixup().d_loss(make_ctx(MeanD(), real, fake, gen, adv))
    lg = 2 * lam - 1
    if adv == "hinge":
        real_b, fake_b = lam * torch.relu(1 - lg), (1 - lam) * torch.relu(1 + lg)
    else:
        real_b, fake_b = lam * torch.log1p(torch.exp(-lg)), (1 - lam) * torch.log1p(torch.exp(lg))
    torch.testing.assert_close(loss, real_b.mean() + fake_b.mean())
    assert logs["d_adv_real"] == pytest.approx(float(real_b.mean()), abs=1e-6)
    assert logs["d_adv_fake"] == pytest.approx(float(fake_b.mean()), abs=1e-6)
    assert logs["mix_lambda"] == pytest.approx(float(lam.mean()), abs=1e-6)
    assert logs["d_real_logit"] == pytest.approx(float((lam * lg).sum() / lam.sum()), abs=1e-6)
    assert logs["d_fake_logit"] == pytest.approx(
        float(((1 - lam) * lg).sum() / (1 - lam).sum()), abs=1e-6
    )
    assert logs["mix_applied"] == 1.0


def test_label_form_is_bce_with_soft_target_and_equals_mixture_for_nonsaturating():
    g = torch.Generator().manual_seed(0)
    logits, lam = torch.randn(50, generator=g) * 3, torch.rand(50, generator=g)
    adv = build_adv_loss("nonsaturating")
    label = sum(branch_losses(logits, lam, adv, "label"))
    mixture = sum(branch_losses(logits, lam, adv, "mixture"))
    p = torch.sigmoid(logits.double())
    by_hand = -(lam * torch.log(p) + (1 - lam) * torch.log(1 - p))
    torch.testing.assert_close(label.double(), by_hand, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(label, mixture, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(
        label.mean(), F.binary_cross_entropy_with_logits(logits, lam), atol=1e-6, rtol=1e-6
    )


@pytest.mark.parametrize("name", NAMES)
def test_label_and_mixture_d_losses_agree_for_nonsaturating(pair, name):
    real, fake = pair
    results = []
    for form in ("label", "mixture"):
        method = build_method(name, {"loss_form": form})
        ctx = make_ctx(TinyD(), real, fake, torch.Generator().manual_seed(1))
        results.append(method.d_loss(ctx))
    torch.testing.assert_close(results[0][0], results[1][0], atol=1e-6, rtol=1e-6)


# ---------------------------------------------------------------- the step


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mode", ["replace", "add"])
@pytest.mark.parametrize("r1_gamma", [0.0, 1.0])
def test_prob_zero_is_exactly_the_vanilla_d_loss(name, mode, r1_gamma):
    method, state, cfg = tiny_gan(name, prob=0.0, mode=mode)
    noisy = []
    for plugin in (method, GanMethod()):
        ctx = gan_ctx(state, cfg, seed=3, r1_gamma=r1_gamma)
        gen = ctx.generator
        # a random augmentation: prob=0 draws nothing, so it sees vanilla's draws
        ctx.augment = lambda x, gen=gen: x + 0.1 * torch.randn(x.shape, generator=gen)
        noisy.append((*plugin.d_loss(ctx), gen.get_state()))
    (loss, logs, state_a), (loss_v, logs_v, state_b) = noisy
    assert torch.equal(loss, loss_v)
    assert {k: logs[k] for k in logs_v} == logs_v
    assert logs["mix_applied"] == 0.0 and logs["mix_lambda"] == 0.5
    assert torch.equal(state_a, state_b)


@pytest.mark.parametrize("name", NAMES)
def test_add_mode_is_plain_plus_mixed(pair, name):
    real, fake = pair
    plain, _ = GanMethod().d_loss(make_ctx(TinyD(), real, fake, torch.Generator().manual_seed(2)))
    mixed, _ = build_method(name, {}).d_loss(
        make_ctx(TinyD(), real, fake, torch.Generator().manual_seed(2))
    )
    both, logs = build_method(name, {"mode": "add"}).d_loss(
        make_ctx(TinyD(), real, fake, torch.Generator().manual_seed(2))
    )
    torch.testing.assert_close(both, plain + mixed)
    assert logs["d_adv_real"] + logs["d_adv_fake"] == pytest.approx(float(both.detach()), abs=1e-5)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("mode", ["replace", "add"])
@pytest.mark.parametrize("r1_gamma", [0.0, 2.0])
def test_same_log_keys_every_step_and_loss_is_the_sum_of_logged_terms(name, mode, r1_gamma):
    method, state, cfg = tiny_gan(name, prob=0.5, mode=mode)
    keys, applied = set(), set()
    gen = torch.Generator().manual_seed(0)
    for step in range(12):
        ctx = gan_ctx(state, cfg, seed=step, r1_gamma=r1_gamma)
        ctx.generator = gen
        loss, logs = method.d_loss(ctx)
        keys.add(tuple(sorted(logs)))
        applied.add(logs["mix_applied"])
        total = logs["d_adv_real"] + logs["d_adv_fake"] + 0.5 * r1_gamma * logs.get("r1", 0.0)
        assert total == pytest.approx(float(loss.detach()), rel=1e-5, abs=1e-6)
    assert applied == {0.0, 1.0}  # both outcomes occurred...
    assert len(keys) == 1  # ...with one set of columns
    expected = {"d_adv_real", "d_adv_fake", "d_real_logit", "d_fake_logit", "mix_lambda"}
    assert expected | {"mix_applied"} <= set(next(iter(keys)))
    assert ("r1" in next(iter(keys))) == (r1_gamma > 0)


def test_coin_frequency_and_no_draw_when_certain():
    method = Mixup(Mixup.Options(prob=0.3))
    gen = torch.Generator().manual_seed(0)
    hits = sum(method.mixes_this_step(gen) for _ in range(4000))
    assert hits / 4000 == pytest.approx(0.3, abs=0.03)
    for prob in (0.0, 1.0):
        before = gen.get_state()
        assert Mixup(Mixup.Options(prob=prob)).mixes_this_step(gen) == (prob == 1.0)
        assert torch.equal(before, gen.get_state())


@pytest.mark.parametrize("r1_gamma, passes", [(0.0, [8]), (1.0, [8, 8])])
def test_augment_before_mixing_and_one_batched_pass(r1_gamma, passes):
    real = torch.rand(8, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    fake = -torch.rand(8, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    D = MeanD()
    gen = torch.Generator().manual_seed(3)
    lam = reference_betas(clone(gen), 8, 1.0)

    def augment(x):
        return 0.5 * x.flip(-1)

    Mixup().d_loss(make_ctx(D, real, fake, gen, r1_gamma=r1_gamma, augment=augment))
    assert [x.shape[0] for x in D.inputs] == passes  # one mixed pass (+ a plain real one for R1)
    expected = lam[:, None, None, None] * augment(real) + (1 - lam[:, None, None, None]) * augment(
        fake
    )
    torch.testing.assert_close(D.inputs[0], expected)
    if r1_gamma:
        torch.testing.assert_close(D.inputs[1], augment(real))


def test_r1_on_plain_unmixed_reals_through_the_augmentation(pair):
    real, fake = pair
    gamma = 4.0
    D = TinyD()

    def augment(x):
        return 0.5 * x.flip(-1)

    loss, logs = CutMix().d_loss(
        make_ctx(D, real, fake, torch.Generator().manual_seed(0), r1_gamma=gamma, augment=augment)
    )
    x = real.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(D.head(D.features(augment(x))).sum(), x)
    r1 = float((grad**2).sum(dim=(1, 2, 3)).mean())
    assert logs["r1"] == pytest.approx(r1, rel=1e-5)
    assert float(loss.detach()) == pytest.approx(
        logs["d_adv_real"] + logs["d_adv_fake"] + gamma / 2 * r1, rel=1e-5
    )


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("r1_gamma", [0.0, 1.0])
def test_d_step_gradients_reach_d_and_not_g(name, r1_gamma):
    method, state, cfg = tiny_gan(name)
    loss, _ = method.d_loss(gan_ctx(state, cfg, seed=0, r1_gamma=r1_gamma))
    loss.backward()
    assert all(p.grad is None for p in state.G.parameters())
    grads = [p.grad for p in state.D.parameters()]
    assert all(g is not None and bool(torch.isfinite(g).all()) for g in grads)
    assert all(float(g.abs().sum()) > 0 for g in grads)


@pytest.mark.parametrize("name", NAMES)
def test_g_loss_is_the_base_one(pair, name):
    _, fake = pair
    ours = build_method(name, {}).g_loss(make_ctx(TinyD(), None, fake, torch.Generator()))
    base = GanMethod().g_loss(make_ctx(TinyD(), None, fake, torch.Generator()))
    assert torch.equal(ours[0], base[0]) and ours[1] == base[1]


@pytest.mark.parametrize("name", NAMES)
def test_deterministic_per_seed(name):
    def run(seed):
        method, state, cfg = tiny_gan(name, prob=0.5)
        out = []
        gen = torch.Generator().manual_seed(seed)
        for step in range(4):
            ctx = gan_ctx(state, cfg, seed=step, r1_gamma=1.0)
            ctx.generator = gen
            loss, logs = method.d_loss(ctx)
            out.append((float(loss.detach()), logs))
        return out

    assert run(7) == run(7)
    assert run(7) != run(8)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("adv", ["nonsaturating", "hinge"])
def test_trains_through_the_trainer(digits16, name, adv):
    method, state, cfg = tiny_gan(name, prob=0.5)
    reals = digits16.images["train"]
    logs = [train_step(state, method, build_adv_loss(adv), reals, cfg) for _ in range(3)]
    assert all(log is not None and math.isfinite(log["d_loss"]) for log in logs)
    assert name in METHODS.names()


# ---------------------------------------------------------------- options


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(
    "key, value",
    [
        ("alpha", 0.0),
        ("alpha", -1.0),
        ("prob", 1.5),
        ("prob", -0.1),
        ("loss_form", "bce"),
        ("mode", "both"),
        ("alpha", "1"),  # wrong type, refused by the shared parser
    ],
)
def test_bad_options_name_the_key(name, key, value):
    with pytest.raises(ConfigError, match=rf"gan\.method_options\.{name}\.{key}'"):
        build_method(name, {key: value})


@pytest.mark.parametrize("value", [-0.1, 1.5, float("nan")])
def test_bad_blur_sigma_names_the_key(value):
    with pytest.raises(ConfigError, match=r"gan\.method_options\.srmix\.blur_sigma'"):
        build_method("srmix", {"blur_sigma": value})


def test_blur_sigma_belongs_to_srmix_only_and_defaults_are_recorded():
    with pytest.raises(ConfigError, match=r"gan\.method_options\.cutmix\.blur_sigma"):
        build_method("cutmix", {"blur_sigma": 0.1})
    assert build_method("srmix", {}).describe() == {
        "alpha": 1.0, "prob": 1.0, "loss_form": "mixture", "mode": "replace", "blur_sigma": 0.1,
    }  # fmt: skip
    assert build_method("mixup", {"alpha": 0.4}).describe()["alpha"] == 0.4


@pytest.mark.parametrize("name", NAMES)
def test_prob_zero_trains_bit_for_bit_like_vanilla(digits16, name):
    reals = digits16.images["train"]
    runs = []
    for method in (build_method(name, {"prob": 0.0}), GanMethod()):
        cfg = tiny_run_config(name, r1_gamma=1.0)
        state = build_state(cfg, method, 1)
        logs = [train_step(state, method, build_adv_loss("nonsaturating"), reals, cfg)]
        logs += [train_step(state, method, build_adv_loss("nonsaturating"), reals, cfg)]
        runs.append((logs, [p.detach().clone() for p in state.D.parameters()]))
    (logs, weights), (logs_v, weights_v) = runs
    assert [{k: row[k] for k in row_v} for row, row_v in zip(logs, logs_v, strict=True)] == logs_v
    assert all(torch.equal(a, b) for a, b in zip(weights, weights_v, strict=True))
