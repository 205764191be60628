"""StyleGAN2's training knobs: lazy R1, path length, WGAN-GP, x-flips, Adam's k/(k+1),
d_steps, mixed-precision refusal, channels_last and uint8 reals.

Expected values are computed by hand from the papers' formulas (Karras et al. 2020,
arXiv 1912.04958; Gulrajani et al. 2017, arXiv 1704.00028), not read from the code.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from adaptivemix.errors import ConfigError
from adaptivemix.gan.losses import build_adv_loss
from adaptivemix.gan.methods import IncompatibleError, StepContext, build_method
from adaptivemix.gan.regularizers import (
    adam_hparams,
    check_regularizers,
    path_length_penalty,
    r1_gamma_at,
)  # fmt: skip
from adaptivemix.gan.trainer import build_state, sample_reals, train_step
from adaptivemix.models import build_models_on_meta
from tests.helpers import tiny_run_config


def run_steps(digits, n: int, **overrides):
    cfg = tiny_run_config(**overrides)
    method = build_method(cfg.method)
    state = build_state(cfg, method, digits.channels)
    adv = build_adv_loss(cfg.adv_loss)
    logs = [train_step(state, method, adv, digits.images["train"], cfg) for _ in range(n)]
    return state, logs


def test_lazy_r1_weight_schedule():
    lazy = tiny_run_config(r1_gamma=10.0, r1_interval=4)
    assert [r1_gamma_at(i, lazy) for i in range(8)] == [40.0, 0, 0, 0, 40.0, 0, 0, 0]
    every = tiny_run_config(r1_gamma=10.0, r1_interval=1)
    assert [r1_gamma_at(i, every) for i in range(3)] == [10.0, 10.0, 10.0]


def test_lazy_r1_in_training_is_weighted_by_the_interval(digits16):
    _, logs = run_steps(digits16, 4, r1_gamma=0.5, r1_interval=2)
    assert ["r1" in row for row in logs] == [True, False, True, False]
    for row in logs:
        adv = row["d_adv_real"] + row["d_adv_fake"]
        r1_term = 0.5 * 0.5 * 2 * row.get("r1", 0.0)  # γ/2 · k · ‖∇D‖²
        assert row["d_loss"] == pytest.approx(adv + r1_term, rel=1e-5)


def test_adam_hparams_follow_the_minibatch_ratio(digits16):
    state, _ = run_steps(digits16, 0, r1_gamma=10.0, r1_interval=16, lr_d=2e-3, lr_g=1e-3,
                         betas=(0.5, 0.99))  # fmt: skip
    group = state.opt_d.param_groups[0]
    assert group["lr"] == pytest.approx(2e-3 * 16 / 17)
    assert group["betas"][0] == pytest.approx(math.exp(16 / 17 * math.log(0.5)))
    assert group["betas"][1] == pytest.approx(math.exp(16 / 17 * math.log(0.99)))
    assert state.opt_g.param_groups[0]["lr"] == 1e-3  # no path length: G unchanged
    assert state.opt_g.param_groups[0]["betas"] == (0.5, 0.99)
    plain, _ = run_steps(digits16, 0, r1_gamma=10.0, r1_interval=1, lr_d=2e-3)
    assert plain.opt_d.param_groups[0]["lr"] == 2e-3  # not lazy: no ratio
    lr, betas = adam_hparams(0.0025, (0.0, 0.99), 4 / 5)
    assert (lr, betas[0]) == (pytest.approx(0.002), 0.0)
    assert betas[1] == pytest.approx(0.99**0.8)


def test_path_length_refused_without_w_space(digits16):
    with pytest.raises(IncompatibleError, match=r"pl_weight=2\.0.*mapping"):
        run_steps(digits16, 0, pl_weight=2.0)
    gan = {"z_dim": 16, "g_width": 8, "d_width": 8, "pl_weight": 2.0, "arch": "dcgan"}
    G, _ = build_models_on_meta("dcgan", 16, gan)  # the config check's networks
    with pytest.raises(IncompatibleError, match="dcgan"):
        check_regularizers(G, gan)
    check_regularizers(G, gan | {"pl_weight": 0.0})


class LinearSynthesis(nn.Module):
    """image = A·w, reshaped to (C, H, W); ``num_ws`` copies of w when > 0 (averaged back)."""

    def __init__(self, A: torch.Tensor, shape: tuple[int, int, int], num_ws: int = 0):
        super().__init__()
        self.A, self.shape, self.num_ws = nn.Parameter(A.clone()), shape, num_ws

    def mapping(self, z):
        return z.unsqueeze(1).repeat(1, self.num_ws, 1) if self.num_ws else z

    def synthesis(self, ws, generator=None):
        w = ws.mean(1) if self.num_ws else ws
        return (w @ self.A.T).view(-1, *self.shape)


@pytest.mark.parametrize("num_ws", [0, 3])
def test_path_length_penalty_on_a_linear_synthesis(num_ws):
    C, H, W, w_dim, n = 1, 2, 3, 4, 5
    A = torch.randn(C * H * W, w_dim, generator=torch.Generator().manual_seed(1))
    G = LinearSynthesis(A, (C, H, W), num_ws)
    z = torch.randn(n, w_dim, generator=torch.Generator().manual_seed(2))
    a0 = torch.tensor(0.7)
    penalty, lengths, new_mean = path_length_penalty(G, z, a0, torch.Generator().manual_seed(3))
    # by hand: J_w = A, so J^T y = A^T y; y ~ N(0, I)/sqrt(H·W) from the same seed
    y = torch.randn(n, C, H, W, generator=torch.Generator().manual_seed(3)) / math.sqrt(H * W)
    expected = torch.stack([(A.T @ y[i].flatten()).norm() for i in range(n)])
    if num_ws:  # each of the copies gets 1/num_ws of the gradient; mean of squares over them
        expected = expected / num_ws
    assert torch.allclose(lengths, expected, atol=1e-6)
    a1 = 0.7 + 0.01 * (float(expected.mean()) - 0.7)
    assert float(new_mean) == pytest.approx(a1, abs=1e-6)
    assert torch.allclose(penalty, (expected - a1) ** 2, atol=1e-6)
    penalty.mean().backward()
    assert G.A.grad is not None and G.A.grad.abs().sum() > 0


class LinearD(nn.Module):
    per_sample_features = True

    def __init__(self, w: torch.Tensor):
        super().__init__()
        self.w = nn.Parameter(w.clone())

    def features(self, x):
        return x.flatten(1)

    def head(self, f):
        return f @ self.w + 0.3


@pytest.mark.parametrize(("method", "grad_scale"), [("vanilla", 1.0), ("adaptivemix", 2.0)])
def test_gradient_penalty_on_a_linear_D(method, grad_scale):
    """D(x) = w·x + b has ∇D = w everywhere, so GP = (‖w‖ − 1)² whatever the interpolates.
    AdaptiveMix's logits head(z) + head(f_mix) have gradient 2w per sample (its override of
    ``discriminate`` is what the penalty sees)."""
    gen = torch.Generator().manual_seed(0)
    w = torch.randn(12, generator=gen) * 0.5
    real, fake = torch.randn(6, 1, 3, 4, generator=gen), torch.randn(6, 1, 3, 4, generator=gen)
    plugin, D = build_method(method), LinearD(w)

    def d_loss(gp_lambda):
        ctx = StepContext(
            None, D, real, fake, build_adv_loss("wasserstein"),
            torch.Generator().manual_seed(5), gp_lambda=gp_lambda,
        )  # fmt: skip
        return plugin.d_loss(ctx)

    (with_gp, logs), (without, _) = d_loss(10.0), d_loss(0.0)
    expected = (grad_scale * float(w.norm()) - 1.0) ** 2
    assert logs["gp"] == pytest.approx(expected, rel=1e-5)
    assert float((with_gp - without).detach()) == pytest.approx(10.0 * expected, rel=1e-4)


def test_xflip_is_reproducible_and_drawn_from_the_run_generator(digits16):
    cfg = tiny_run_config(xflip=True, batch_size=64)
    reals = digits16.images["train"]
    a = sample_reals(build_state(cfg, build_method("vanilla"), 1), reals, cfg)
    b = sample_reals(build_state(cfg, build_method("vanilla"), 1), reals, cfg)
    assert torch.equal(a, b)
    gen = torch.Generator().manual_seed(cfg.seed)  # the run's stream: indices, then flips
    idx = torch.randint(reals.shape[0], (64,), generator=gen)
    flip = torch.rand(64, generator=gen) < 0.5
    for i in range(64):
        assert torch.equal(a[i], reals[idx[i]].flip(-1) if flip[i] else reals[idx[i]])
    assert 16 <= int(flip.sum()) <= 48
    plain_cfg = tiny_run_config(batch_size=64)
    plain = sample_reals(build_state(plain_cfg, build_method("vanilla"), 1), reals, plain_cfg)
    assert torch.equal(plain, reals[idx])  # xflip off: no flip draws


def test_uint8_reals_are_converted(digits16):
    cfg = tiny_run_config(batch_size=8)
    pixels = ((digits16.images["train"] + 1) * 127.5).round().to(torch.uint8)
    got = sample_reals(build_state(cfg, build_method("vanilla"), 1), pixels, cfg)
    idx = torch.randint(pixels.shape[0], (8,), generator=torch.Generator().manual_seed(0))
    assert got.dtype == torch.float32
    assert torch.equal(got, pixels[idx].float() / 127.5 - 1.0)


def test_d_steps_take_that_many_d_updates_per_g_update(digits16):
    state, logs = run_steps(digits16, 2, d_steps=3, adv_loss="wasserstein", gp_lambda=10.0)
    d_param, g_param = next(state.D.parameters()), next(state.G.parameters())
    assert int(state.opt_d.state[d_param]["step"]) == 6
    assert int(state.opt_g.state[g_param]["step"]) == 2
    assert all("gp" in row and row["gp"] >= 0 for row in logs)


def test_amp_is_refused_on_cpu(digits16):
    with pytest.raises(ConfigError, match=r"gan\.amp.*CUDA"):
        run_steps(digits16, 0, amp=True)


def test_channels_last_gives_the_same_numbers_on_cpu(digits16):
    plain, _ = run_steps(digits16, 3, r1_gamma=1.0)
    last, _ = run_steps(digits16, 3, r1_gamma=1.0, channels_last=True)
    conv = next(m for m in last.D.modules() if isinstance(m, nn.Conv2d))
    assert conv.weight.is_contiguous(memory_format=torch.channels_last)
    for net in ("G", "D"):
        a, b = getattr(plain, net).state_dict(), getattr(last, net).state_dict()
        for key in a:
            assert torch.allclose(a[key], b[key], atol=1e-5), (net, key)
