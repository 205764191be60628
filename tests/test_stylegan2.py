"""StyleGAN2 (paper256 of stylegan2-ada-pytorch): layer maths against hand computations or a
second, direct implementation; parameter counts against the official layer list; the
architecture contract (staged synthesis, features/head); randomness only from the given
generator; every registered GAN method trains one step on a tiny StyleGAN2."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from adaptivemix.errors import ConfigError
from adaptivemix.gan.losses import build_adv_loss
from adaptivemix.gan.methods import METHODS, RunEnv
from adaptivemix.gan.trainer import build_state, train_step
from adaptivemix.gan.variants import build_variant
from adaptivemix.models import stylegan2 as sg
from adaptivemix.models import stylegan2_layers as L
from adaptivemix.models.base import ARCHS, build_models
from tests.helpers import TEST_METHOD_OPTIONS, tiny_run_config

TINY = dict(channel_base=256, channel_max=32, mapping_layers=2, w_dim=32)


def tiny(resolution=16, channels=1, z_dim=8, seed=0, **options):
    return build_models(
        "stylegan2", resolution, channels, z_dim, 0, 0, seed, arch_options=TINY | options
    )


# --- parameter counts ---------------------------------------------------------------------


# Per-layer formulas from the official layer list (NVlabs/stylegan2-ada-pytorch,
# training/networks.py at d72cc7d: FullyConnectedLayer, SynthesisLayer, ToRGBLayer,
# Conv2dLayer, DiscriminatorEpilogue) and train.py's paper256 spec (fmaps 0.5 -> channel_base
# 16384, channel_max 512, map 8, w_dim 512).
def fc(i, o):
    return i * o + o


def syn_layer(i, o, w=512):  # affine + 3×3 weight + bias + noise strength
    return fc(w, i) + 9 * i * o + o + 1


def torgb(i, img=3, w=512):
    return fc(w, i) + i * img + img


def conv(i, o, k, bias=True):
    return k * k * i * o + (o if bias else 0)


def official_counts(res=256, img=3, z=512, w=512, layers=8, base=16384, cmax=512):
    ch = {r: min(base // r, cmax) for r in (2**i for i in range(2, int(math.log2(res)) + 1))}
    g = fc(z, w) + (layers - 1) * fc(w, w) + ch[4] * 16 + syn_layer(ch[4], ch[4]) + torgb(ch[4])
    for r in (r for r in ch if r > 4):
        g += syn_layer(ch[r // 2], ch[r]) + syn_layer(ch[r], ch[r]) + torgb(ch[r])
    d = conv(img, ch[res], 1)  # fromRGB of the first block
    for r in (r for r in ch if r > 4):
        d += conv(ch[r], ch[r], 3) + conv(ch[r], ch[r // 2], 3) + conv(ch[r], ch[r // 2], 1, False)
    d += conv(ch[4] + 1, ch[4], 3) + fc(ch[4] * 16, ch[4]) + fc(ch[4], 1)
    return g, d


def test_layer_formulas_match_counts_printed_by_the_official_code():
    # Rows of the official module summary, as posted in public issues:
    # open-mmlab/mmgeneration#394 (synthesis layers), NVlabs/stylegan2-ada-pytorch#182 (mapping).
    assert fc(512, 512) == 262656
    assert syn_layer(512, 512) == 2622465 and torgb(512) == 264195
    assert syn_layer(512, 256) == 1442561 and syn_layer(256, 256) == 721409
    assert torgb(256) == 132099 and syn_layer(256, 128) == 426369 and torgb(128) == 66051
    assert syn_layer(128, 64) == 139457


def test_parameter_counts_match_official_paper256():
    expected_g, expected_d = official_counts()
    assert (expected_g, expected_d) == (24_767_458, 24_001_089)  # the formulas, summed
    with torch.device("meta"):
        G, D = sg.build_stylegan2(256, 3, 512, 0, 0, sg.StyleGAN2Options())
    assert sum(p.numel() for p in G.parameters()) == expected_g
    assert sum(p.numel() for p in D.parameters()) == expected_d
    assert G.num_ws == 14  # 13 synthesis layers + the last toRGB (upstream num_ws at 256)


# --- layer maths --------------------------------------------------------------------------


def full_conv(x, w):
    """True (flipped-kernel) 'full' convolution, channel-mixing: w is (out, in, k, k)."""
    k = w.shape[-1]
    return F.conv2d(x, w.flip([2, 3]), padding=k - 1)


def zero_insert(x):
    n, c, h, w = x.shape
    u = torch.zeros(n, c, 2 * h, 2 * w, dtype=x.dtype)
    u[:, :, ::2, ::2] = x
    return u


@pytest.mark.parametrize("up", [1, 2])
def test_modulated_conv_matches_a_per_sample_loop(up):
    g = torch.Generator().manual_seed(0)
    x, weight = torch.randn(3, 4, 5, 5, generator=g), torch.randn(6, 4, 3, 3, generator=g)
    styles = torch.rand(3, 4, generator=g) + 0.5
    out = L.modulated_conv2d(x, weight, styles, up=up, f=L.make_filter())
    f1 = torch.tensor([1.0, 3, 3, 1]) / 4  # ×2 per axis: 2-D gain 4
    blur = torch.outer(f1, f1).expand(4, 1, 4, 4)
    for i in range(3):
        w = weight * styles[i].reshape(1, -1, 1, 1)
        w = w / w.square().sum(dim=[1, 2, 3], keepdim=True).sqrt()
        if up == 1:
            ref = F.conv2d(x[i : i + 1], w, padding=1)  # correlation, as F.conv2d upstream
        else:  # zero-insert, blur, true convolution with w; 'same' crop of the full result
            u = F.conv2d(zero_insert(x[i : i + 1]), blur, padding=3, groups=4)
            ref = full_conv(u, w)[:, :, 2:12, 2:12]
        torch.testing.assert_close(out[i : i + 1], ref, atol=1e-5, rtol=1e-5)


def test_equalized_lr_scales_weights_at_run_time():
    fc_layer = L.FullyConnected(4, 2, lr_mult=0.01)
    assert fc_layer.weight.std() > 10  # stored as N(0, 1) / lr_mult
    with torch.no_grad():
        fc_layer.weight.copy_(torch.tensor([[1.0, 2, 3, 4], [0, -1, 0, 1]]))
        fc_layer.bias.copy_(torch.tensor([10.0, -20.0]))
    x = torch.tensor([[1.0, 1, 1, 1]])
    expected = torch.tensor([[10 * 0.01 / 2 + 0.1, 0.0 - 0.2]])  # W·x·0.01/sqrt(4) + b·0.01
    torch.testing.assert_close(fc_layer(x), expected)

    conv_layer = L.EqualizedConv2d(2, 1, 1, act="lrelu")
    assert type(conv_layer.conv) is nn.Conv2d  # PConv finds plain convolutions
    with torch.no_grad():
        conv_layer.conv.weight.copy_(torch.tensor([[[[1.0]], [[-3.0]]]]))
        conv_layer.conv.bias.fill_(0.5)
    x = torch.tensor([[[[2.0]], [[1.0]]]])  # (2 - 3)/sqrt(2) + 0.5 < 0: the negative slope
    pre = (2.0 - 3.0) / math.sqrt(2) + 0.5
    torch.testing.assert_close(conv_layer(x), torch.full((1, 1, 1, 1), 0.2 * pre * math.sqrt(2)))


def test_blur_upsampling_of_an_impulse_and_of_a_constant():
    x = torch.zeros(1, 1, 2, 2)
    x[0, 0, 0, 0] = 1.0
    # zero-inserted impulse at 0, padded by (2, 1), 1-D taps [1,3,3,1]/8 × 2 -> [.75,.75,.25,0]
    taps = torch.tensor([0.75, 0.75, 0.25, 0.0])
    torch.testing.assert_close(L.upsample2d(x, L.make_filter())[0, 0], torch.outer(taps, taps))
    const = L.upsample2d(torch.ones(1, 1, 4, 4), L.make_filter())
    torch.testing.assert_close(const[0, 0, 2:6, 2:6], torch.ones(4, 4))  # unit DC gain


def test_blur_downsampling_of_an_impulse_and_of_a_constant():
    x = torch.zeros(1, 1, 4, 4)
    x[0, 0, 1, 1] = 1.0
    taps = torch.tensor([3.0, 1.0]) / 8  # padded (1, 1): windows at 0 and 2 see taps 2 and 0
    torch.testing.assert_close(L.downsample2d(x, L.make_filter())[0, 0], torch.outer(taps, taps))
    ones = L.downsample2d(torch.ones(1, 1, 4, 4), L.make_filter())
    torch.testing.assert_close(ones, torch.full((1, 1, 2, 2), 49 / 64))  # (7/8)² at the border


def test_d_downsampling_layers_halve_the_resolution():
    x = torch.randn(2, 3, 16, 16)
    assert L.EqualizedConv2d(3, 5, 3, down=2)(x).shape == (2, 5, 8, 8)
    assert L.EqualizedConv2d(3, 5, 1, down=2, bias=False)(x).shape == (2, 5, 8, 8)


def test_minibatch_std_by_hand():
    x = torch.zeros(4, 2, 2, 2)
    x[:, 0] = torch.tensor([1.0, 2.0, 3.0, 6.0]).reshape(4, 1, 1)  # channel 1 stays 0
    out = L.minibatch_std(x, group_size=2)
    # groups {0, 2} and {1, 3}: channel-0 std 1 and 2, channel-1 std sqrt(1e-8)
    expected = torch.tensor([1.0, 2.0, 1.0, 2.0]).add(1e-4).div(2)
    assert out.shape == (4, 3, 2, 2)
    torch.testing.assert_close(out[:, :2], x)
    torch.testing.assert_close(out[:, 2], expected.reshape(4, 1, 1).expand(4, 2, 2))
    whole = L.minibatch_std(x, group_size=8)[:, 2, 0, 0]  # group min(8, N) = 4
    std = torch.tensor([1.0, 2, 3, 6]).std(unbiased=False)
    torch.testing.assert_close(whole, ((std + 1e-4) / 2).expand(4))
    y = torch.randn(6, 2, 4, 4)
    odd = L.minibatch_std(y, group_size=4)[:, 2, 0, 0]  # 6 % 4 != 0: groups of 3, {0, 2, 4}
    for n in range(6):
        group = y[n % 2 :: 2]
        expected = (group.var(dim=0, unbiased=False) + 1e-8).sqrt().mean()
        torch.testing.assert_close(odd[n], expected)


# --- the architecture contract ------------------------------------------------------------


@pytest.mark.parametrize("res", [16, 32])
@pytest.mark.parametrize("channels", [1, 3])
def test_output_shapes(res, channels):
    G, D = tiny(res, channels)
    z = torch.randn(2, 8)
    assert G(z).shape == (2, channels, res, res)
    assert G.mapping(z).shape == (2, G.num_ws, 32)
    assert D(torch.randn(2, channels, res, res)).shape == (2,)
    maps = D.feature_maps(torch.randn(2, channels, res, res))
    assert sorted(maps) == sorted(D.stage_channels)
    assert all(maps[r].shape == (2, D.stage_channels[r], r, r) for r in maps)


def test_staged_synthesis_composes_to_the_forward():
    G, D = tiny(32, 3)
    G.eval()
    z = torch.randn(3, 8)
    image, maps = G(z), G.feature_maps(z)
    assert sorted(maps) == G.stage_resolutions == [4, 8, 16, 32]
    torch.testing.assert_close(G.stem(z), maps[4])
    for res, h in maps.items():
        assert h.shape == (3, G.stage_channels[res], res, res)
        torch.testing.assert_close(G.synthesize_from(h, res, z=z), image)
    x = torch.randn(3, 3, 32, 32)
    torch.testing.assert_close(D(x), D.head(D.features(x)))
    torch.testing.assert_close(D.feature_maps(x)[4], D.features(x))


def test_synthesis_without_z_uses_the_average_style():
    G, _ = tiny()
    G.eval()
    z0 = torch.randn(1, 8)
    with torch.no_grad():
        G.w_avg.copy_(G.mapping(z0)[0, 0])
    h = G.feature_maps(z0.repeat(2, 1))[8]
    torch.testing.assert_close(G.synthesize_from(h, 8), G.synthesize_from(h, 8, z=z0.repeat(2, 1)))


def test_default_options_meet_the_contract_at_16():
    G, D = build_models("stylegan2", 16, 1, 8, 8, 8, seed=0)
    G.eval()
    z = torch.randn(2, 8)
    image = G(z)
    for res, h in G.feature_maps(z).items():
        torch.testing.assert_close(G.synthesize_from(h, res, z=z), image)
    x = torch.rand(3, 1, 16, 16)
    alone = torch.cat([D.features(x[i : i + 1]) for i in range(3)])
    torch.testing.assert_close(D.features(x), alone)
    assert D.per_sample_features


# --- randomness ---------------------------------------------------------------------------


def noisy_g(**options):
    G, _ = tiny(**options)
    with torch.no_grad():
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.5)  # 0 at init: the noise would not show
    return G


def test_eval_without_a_generator_is_deterministic_and_with_one_draws_noise_only():
    G = noisy_g(mixing_prob=1.0).eval()  # mixing always on in training: eval must skip it
    z = torch.randn(2, 8)
    first = G(z)
    torch.testing.assert_close(G(z), first, rtol=0, atol=0)  # constant noise buffers
    gen = torch.Generator().manual_seed(5)
    a, b = G(z, generator=gen), G(z, generator=gen)
    assert not torch.allclose(a, first) and not torch.allclose(a, b)  # fresh noise per call
    torch.testing.assert_close(G(z, generator=torch.Generator().manual_seed(5)), a)
    # noise only: the same output as the synthesis of the unmixed styles with that noise
    ws = G.mapping(z)
    expected = G.synthesis(ws, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(a, expected, rtol=0, atol=0)


def test_training_noise_comes_from_the_generator_only():
    G = noisy_g(mixing_prob=0.0).train()
    z = torch.randn(2, 8)
    state = torch.get_rng_state()
    a = G(z, generator=torch.Generator().manual_seed(1))
    b = G(z, generator=torch.Generator().manual_seed(1))
    c = G(z, generator=torch.Generator().manual_seed(2))
    assert torch.equal(state, torch.get_rng_state())
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert not torch.allclose(a, c)
    assert not torch.allclose(a, G.eval()(z))


def test_style_mixing_mixes_from_a_cutoff():
    G, _ = tiny(mixing_prob=1.0)
    z = torch.randn(4, 8)
    ws = G.mapping(z)
    cutoffs = set()
    for seed in range(6):
        mixed = G.mix_styles(ws, z, torch.Generator().manual_seed(seed))
        same = [torch.equal(mixed[:, i], ws[:, i]) for i in range(G.num_ws)]
        cutoff = same.index(False)
        assert 1 <= cutoff < G.num_ws and all(same[:cutoff]) and not any(same[cutoff:])
        assert all(torch.equal(mixed[:, i], mixed[:, cutoff]) for i in range(cutoff, G.num_ws))
        cutoffs.add(cutoff)
    assert len(cutoffs) > 1
    G.train()  # zero noise strength at init: only mixing separates training from eval
    trained = G(z, generator=torch.Generator().manual_seed(0))
    assert not torch.allclose(trained, G.eval()(z))
    never, _ = tiny(mixing_prob=0.0)
    assert torch.equal(never.mix_styles(ws, z, torch.Generator().manual_seed(0)), ws)


def test_w_avg_tracks_in_training_only():
    G, _ = tiny()
    z = torch.randn(4, 8)
    G.eval()
    G.mapping(z)
    assert torch.equal(G.w_avg, torch.zeros(32))
    G.train()
    w = G.mapping(z)[:, 0].mean(dim=0)
    torch.testing.assert_close(G.w_avg, (1 - 0.995) * w)


# --- options ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values, key",
    [
        ({"mixing_prob": 1.5}, "gan.arch_options.mixing_prob"),
        ({"w_dim": 0}, "gan.arch_options.w_dim"),
        ({"fp16": 1}, "gan.arch_options.fp16"),
    ],
)
def test_bad_options_name_the_key(values, key):
    with pytest.raises(ConfigError, match=key):
        ARCHS.get("stylegan2").options(values)


def test_too_narrow_channel_base_names_the_key():
    with pytest.raises(ConfigError, match="channel_base"):
        tiny(64, channel_base=32)


# --- every method trains on it ------------------------------------------------------------


@pytest.mark.parametrize("method", METHODS.names())
def test_every_method_takes_a_training_step(method, digits16, digits_backbone):
    cfg = tiny_run_config(method, arch="stylegan2", arch_options=TINY, z_dim=8, batch_size=4)
    plugin, augment = build_variant(method, TEST_METHOD_OPTIONS)
    env = RunEnv(feature_backbone=digits_backbone)
    state = build_state(cfg, plugin, digits16.channels, augment, env)
    before = [p.detach().clone() for p in state.D.parameters()]
    logs = train_step(state, plugin, build_adv_loss(cfg.adv_loss), digits16.images["train"], cfg)
    assert logs is not None and all(math.isfinite(v) for v in logs.values())
    moved = [not torch.equal(a, p) for a, p in zip(before, state.D.parameters(), strict=False)]
    assert any(moved)
    if method == "pconv":
        from baselines.pconv import PerturbedConv2d

        perturbed = [m for m in state.D.modules() if isinstance(m, PerturbedConv2d)]
        assert len(perturbed) == sum(isinstance(m, nn.Conv2d) for m in state.D.modules()) - 1
