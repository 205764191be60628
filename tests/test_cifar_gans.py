"""The CIFAR-10 GANs besides StyleGAN2: SNGAN's standard CNN (``dcgan-cifar``), the WGAN-GP
ResNet (``resnet-wgangp``), the Wasserstein loss and WGAN-GP's gradient penalty.

Expected values are computed here independently: parameter counts from the papers' layer
tables, residual blocks from hand-written op sequences, penalties from closed-form gradients.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import adaptivemix.models.cnn32  # noqa: F401  (registers "dcgan-cifar")
from adaptivemix.errors import ConfigError
from adaptivemix.gan.losses import build_adv_loss, gradient_penalty
from adaptivemix.gan.methods import METHODS, RunEnv
from adaptivemix.gan.trainer import train_gan
from adaptivemix.io import read_jsonl
from adaptivemix.models import build_models
from adaptivemix.models.resnet32 import OptimizedBlock, UpBlock  # registers "resnet-wgangp"
from tests.helpers import tiny_run_config

ARCHS = ["dcgan-cifar", "resnet-wgangp"]
PAPER_WIDTH = {"dcgan-cifar": 64, "resnet-wgangp": 128}


# -- parameter counts from the layer tables ---------------------------------------------------


def conv(c_in, c_out, k):  # weights + bias
    return c_in * c_out * k * k + c_out


def dense(n_in, n_out):
    return n_in * n_out + n_out


def bn(c):  # scale + shift
    return 2 * c


def n_params(module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_sngan_standard_cnn_parameter_counts_match_table_3():
    G, D = build_models("dcgan-cifar", 32, 3, 128, 64, 64, seed=0)
    g_table = [
        dense(128, 4 * 4 * 512), bn(4 * 4 * 512),  # BN of the flat vector (chainer-gan-lib)
        conv(512, 256, 4), bn(256),
        conv(256, 128, 4), bn(128),
        conv(128, 64, 4), bn(64),
        conv(64, 3, 3),
    ]  # fmt: skip
    d_table = [
        conv(3, 64, 3), conv(64, 64, 4), conv(64, 128, 3), conv(128, 128, 4),
        conv(128, 256, 3), conv(256, 256, 4), conv(256, 512, 3), dense(4 * 4 * 512, 1),
    ]  # fmt: skip
    assert n_params(G) == sum(g_table) == 3_828_739
    assert n_params(D) == sum(d_table) == 2_935_873


def test_wgangp_resnet_parameter_counts_match_the_official_layers():
    G, D = build_models("resnet-wgangp", 32, 3, 128, 128, 128, seed=0)
    up_block = bn(128) + conv(128, 128, 3) + bn(128) + conv(128, 128, 3) + conv(128, 128, 1)
    g_table = [dense(128, 4 * 4 * 128), 3 * up_block, bn(128), conv(128, 3, 3)]
    optimized = conv(3, 128, 3) + conv(128, 128, 3) + conv(3, 128, 1)
    down = 2 * conv(128, 128, 3) + conv(128, 128, 1)
    plain = 2 * conv(128, 128, 3)  # identity shortcut
    d_table = [optimized, down, plain, plain, dense(128, 1)]
    assert n_params(G) == sum(g_table)
    assert n_params(D) == sum(d_table)


# -- shapes and the architecture contract ------------------------------------------------------


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("res", [32, 16])
def test_shapes_features_head_and_staged_synthesis(arch, res):
    w = PAPER_WIDTH[arch] // 8 if res == 32 else 8
    G, D = build_models(arch, res, 3, 16, w, w, seed=1)
    G.eval(), D.eval()
    z = torch.randn(3, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        image = G(z)
        assert image.shape == (3, 3, res, res) and image.abs().max() <= 1
        logits = D(image)
        assert logits.shape == (3,)
        torch.testing.assert_close(D.head(D.features(image)), logits)
        maps = D.feature_maps(image)
        torch.testing.assert_close(maps[min(maps)], D.features(image))
        assert {r: m.shape[1] for r, m in maps.items()} == D.stage_channels
        assert all(m.shape[-1] == r for r, m in maps.items())
        g_maps = G.feature_maps(z)
        assert sorted(g_maps) == G.stage_resolutions == [4 * 2**i for i in range(len(g_maps))]
        assert {r: m.shape[1] for r, m in g_maps.items()} == G.stage_channels
        for r, h in g_maps.items():
            torch.testing.assert_close(G.synthesize_from(h, r, z=z), image)
        torch.testing.assert_close(G(z, generator=torch.Generator()), image)


def test_final_maps_are_where_the_papers_put_them():
    _, D = build_models("dcgan-cifar", 32, 3, 8, 8, 64, seed=0)
    assert D.stage_channels == {32: 64, 16: 128, 8: 256, 4: 256}  # 512 is the head's conv
    _, D = build_models("resnet-wgangp", 32, 3, 8, 8, 128, seed=0)
    assert D.stage_channels == {16: 128, 8: 128}  # blocks 3 and 4 stay at 8×8


@pytest.mark.parametrize("res", [12, 4, 0])
def test_a_resolution_not_4_times_a_power_of_two_is_refused(res):
    for arch in ARCHS:
        with pytest.raises(ValueError, match=f"got {res}"):
            build_models(arch, res, 1, 8, 8, 8, seed=0)


def test_resnet_pool_option_sum_and_mean_and_bad_value():
    _, D_mean = build_models("resnet-wgangp", 16, 1, 8, 8, 8, seed=0)
    _, D_sum = build_models("resnet-wgangp", 16, 1, 8, 8, 8, seed=0, arch_options={"pool": "sum"})
    f = torch.randn(2, 8, 4, 4, generator=torch.Generator().manual_seed(0))
    bias = D_mean.head_out.bias
    torch.testing.assert_close(D_sum.head(f) - bias, 16 * (D_mean.head(f) - bias))
    with pytest.raises(ConfigError, match=r"gan\.arch_options\.pool"):
        build_models("resnet-wgangp", 16, 1, 8, 8, 8, seed=0, arch_options={"pool": "max"})


# -- residual blocks against hand-written computations ----------------------------------------


def randomise(module, seed):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen))


def conv_ref(x, layer):
    return F.conv2d(x, layer.weight, layer.bias, padding=layer.kernel_size[0] // 2)


def pointwise_ref(x, layer):  # a 1×1 conv written as a channel matrix product
    out = torch.einsum("oi,nihw->nohw", layer.weight[:, :, 0, 0], x)
    return out + layer.bias[None, :, None, None]


def pool_ref(x):  # mean of each 2×2 cell
    n, c, h, w = x.shape
    return x.reshape(n, c, h // 2, 2, w // 2, 2).mean((3, 5))


def nearest_up_ref(x):
    return x.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)


def batch_norm_ref(x, norm):  # training mode: batch statistics, biased variance
    mean = x.mean((0, 2, 3), keepdim=True)
    var = (x - mean).square().mean((0, 2, 3), keepdim=True)
    scale, shift = norm.weight[None, :, None, None], norm.bias[None, :, None, None]
    return (x - mean) / torch.sqrt(var + norm.eps) * scale + shift


def test_optimized_first_d_block_matches_the_reference():
    block = OptimizedBlock(2, 3)
    randomise(block, 0)
    x = torch.randn(2, 2, 4, 4, generator=torch.Generator().manual_seed(1))
    main = pool_ref(conv_ref(torch.relu(conv_ref(x, block.conv1)), block.conv2))
    expected = pointwise_ref(pool_ref(x), block.shortcut) + main
    got = block(x)
    assert got.shape == (2, 3, 2, 2)
    torch.testing.assert_close(got, expected)


def test_up_block_matches_the_reference():
    block = UpBlock(3, 2).train()
    randomise(block, 2)
    x = torch.randn(4, 3, 2, 2, generator=torch.Generator().manual_seed(3))
    h = conv_ref(nearest_up_ref(torch.relu(batch_norm_ref(x, block.norm1))), block.conv1)
    h = conv_ref(torch.relu(batch_norm_ref(h, block.norm2)), block.conv2)
    expected = pointwise_ref(nearest_up_ref(x), block.shortcut) + h
    got = block(x)
    assert got.shape == (4, 2, 4, 4)
    torch.testing.assert_close(got, expected)


# -- the Wasserstein loss and the gradient penalty ---------------------------------------------


def test_wasserstein_loss_values():
    adv = build_adv_loss("wasserstein")
    logits = torch.tensor([-2.0, 0.5, 3.0])
    assert adv.d_real(logits).tolist() == [2.0, -0.5, -3.0]
    assert adv.d_fake(logits).tolist() == [-2.0, 0.5, 3.0]
    assert adv.g_fake(logits).tolist() == [2.0, -0.5, -3.0]


def images(seed, shape=(5, 2, 3, 3)):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def test_gradient_penalty_of_a_linear_critic_is_exact():
    w = (images(0, (18,)) * 0.7).requires_grad_(True)
    b = torch.tensor(0.3, requires_grad=True)
    critic = lambda x: x.flatten(1) @ w + b  # noqa: E731
    gp = gradient_penalty(critic, images(1), images(2), torch.Generator().manual_seed(5))
    norm = float(w.detach().norm())
    assert math.isclose(float(gp.detach()), (norm - 1.0) ** 2, rel_tol=1e-5)
    (grad_w,) = torch.autograd.grad(gp, w)  # d/dw (‖w‖ − 1)² = 2(‖w‖ − 1)·w/‖w‖
    torch.testing.assert_close(grad_w, 2 * (norm - 1.0) * w.detach() / norm)


def test_gradient_penalty_of_a_quadratic_critic_and_its_random_draws():
    a = images(3, (2, 3, 3)).abs()
    critic = lambda x: (a * x.square()).flatten(1).sum(1)  # noqa: E731  ∇ = 2·a·x
    real, fake = images(4), images(5)
    state = torch.get_rng_state()
    gp = gradient_penalty(critic, real, fake, torch.Generator().manual_seed(11))
    assert torch.equal(state, torch.get_rng_state())
    eps = torch.rand(5, generator=torch.Generator().manual_seed(11))  # one per sample
    expected = 0.0
    for i in range(5):
        x_hat = eps[i] * real[i] + (1 - eps[i]) * fake[i]
        grad_norm = math.sqrt(float((2 * a * x_hat).square().sum()))
        expected += (grad_norm - 1.0) ** 2 / 5
    assert math.isclose(float(gp.detach()), expected, rel_tol=1e-5)
    again = gradient_penalty(critic, real, fake, torch.Generator().manual_seed(11))
    assert torch.equal(gp, again)
    other = gradient_penalty(critic, real, fake, torch.Generator().manual_seed(12))
    assert not torch.equal(gp, other)


@pytest.mark.parametrize("arch", ARCHS)
def test_gradient_penalty_trains_a_real_critic(arch):
    G, D = build_models(arch, 16, 1, 8, 8, 8, seed=0)
    real = images(6, (4, 1, 16, 16)).tanh()
    fake = G(images(7, (4, 8))).requires_grad_()  # still attached to G: the penalty detaches
    gp = gradient_penalty(D, real, fake, torch.Generator().manual_seed(0))
    assert gp.ndim == 0 and torch.isfinite(gp)
    gp.backward()
    no_grad = [n for n, p in D.named_parameters() if p.grad is None]
    assert no_grad == ["head_out.bias"]  # ∇ₓD does not depend on the output bias
    assert all(p.grad is None for p in G.parameters())


# -- every registered method trains a step on both archs ---------------------------------------


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("method", METHODS.names())
def test_every_method_trains_a_step_on_both_archs(
    tmp_path, digits16, digits_backbone, arch, method
):
    adv = "wasserstein" if arch == "resnet-wgangp" else "nonsaturating"
    cfg = tiny_run_config(
        method, arch=arch, z_dim=8, adv_loss=adv, steps=2, log_every=1, checkpoint_every=2
    )
    summary = train_gan(cfg, digits16, tmp_path / "run", tmp_path / "state",
                        env=RunEnv(feature_backbone=digits_backbone))  # fmt: skip
    assert summary["status"] == "ok" and summary["steps"] == 2
    rows = read_jsonl(tmp_path / "run" / "log.jsonl")
    assert [r["step"] for r in rows] == [1, 2]
    assert all(math.isfinite(r[k]) for r in rows for k in ("d_loss", "g_loss"))
