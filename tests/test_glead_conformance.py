"""GLeaD against a reference written in this file from the official code's semantics.

Official code: github.com/EzioBy/glead. The reference below restates, independently of
``baselines/glead.py`` (it only reads that plugin's parameter tensors):
- ``training/networks_glead.py`` ``Discriminator``: decoder layers ``b{res}_dec`` for res =
  8 .. decoder_res, each ``Conv2dLayer(kernel_size=1, activation='linear', up=2)`` on
  ``feats[res // 2]`` (concatenated behind the previous output), heads ``img_proj``,
  ``feat_proj1``, ``feat_proj2`` + ``AdaptiveAvgPool2d(1)``;
- ``SynthesisNetwork.forward(feat2img=True, inter_image=...)``: G's blocks above the feature
  map's resolution, styles ``ws.narrow(1, w_idx, num_conv + num_torgb)``, ``w_idx +=
  num_conv``;
- ``training/loss_glead.py`` ``accumulate_gradients``: ``Dmain`` (fake: softplus + fake reg;
  real: softplus + real reg, gain 1) and ``Dreg`` (real reg + R1·γ/2, gain k), bilinear
  resize to ``glead_res_g``, ``w_amount`` copies of the predicted w, ``cosine_distance``;
  ``Gmain``: softplus(−D(G(z))).
The perceptual distance is the test's stand-in ``pixel`` (upstream ``'mse'``: F.mse_loss);
LPIPS itself is tested in tests/test_perceptual.py. Networks in float64 so that ≤ 1e-5 is a
statement about the semantics, not about rounding.

Same draws: the fake comes from one G forward (mixing and noise from a seeded generator);
the reconstructions draw G's noise from the step's generator, reals first, then fakes, in
the plugin and in the reference (upstream order: fakes first; the draws are independent).
Our trainer fuses upstream's ``Dreg`` into the k-th D step, so the reference's ``Dreg`` reuses
the ``Dmain`` real forward (same parameters, same noise).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from adaptivemix.gan.losses import build_adv_loss
from adaptivemix.gan.methods import RunEnv, StepContext
from adaptivemix.gan.trainer import build_state, train_step
from adaptivemix.gan.variants import build_variant
from adaptivemix.models import build_models, build_models_on_meta
from baselines.glead import GLeaD, GLeaDDecoder, GLeaDOptions
from tests.helpers import tiny_run_config

TINY = dict(channel_base=256, channel_max=32, mapping_layers=2, w_dim=32)  # test_stylegan2
RES, CHANNELS, Z_DIM, BATCH = 32, 3, 8, 4
GAMMA, K = 1.0, 16  # paper256: R1 γ = 1 every 16 D steps
FIR = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64)


def networks(res_g: int, res_d: int, fake_target: str):
    G, D = build_models("stylegan2", RES, CHANNELS, Z_DIM, 0, 0, 0, arch_options=TINY)
    options = GLeaDOptions(res_g=res_g, res_d=res_d, fake_target=fake_target, perceptual="pixel")
    method = GLeaD(options)
    G, D = method.prepare(G, D, RunEnv())
    G, D = G.double(), D.double()
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():  # non-zero biases and noise strengths: misplaced ones then show
        for p in [*G.parameters(), *D.parameters()]:
            p.add_(0.1 * torch.randn(p.shape, generator=gen, dtype=p.dtype))
        for name, p in G.named_parameters():
            if name.endswith("noise_strength"):
                p.fill_(0.5)
    return method, G, D


# --- the reference ------------------------------------------------------------------------


def ref_conv1x1(x, layer, up: bool):
    """Conv2dLayer(k=1, linear, up): weight·1/sqrt(fan_in); 2× FIR upsampling (gain 4,
    upfirdn2d.upsample2d) written as a stride-2 transposed convolution; then the bias."""
    w = layer.weight[:, :, 0, 0] / math.sqrt(layer.weight.shape[1])
    y = torch.einsum("oi,nihw->nohw", w, x)
    if up:
        k = torch.outer(FIR, FIR)
        k = (k / k.sum() * 4).to(y)
        c = y.shape[1]
        y = F.conv_transpose2d(y, k.expand(c, 1, 4, 4), stride=2, padding=1, groups=c)
    return y + layer.bias.view(1, -1, 1, 1)


def ref_D(D, img, res_d: int):
    """(logits, inter_feat, inter_img, ws (N, 1, w_dim)) of upstream's D forward."""
    feats = D.feature_maps(img)  # upstream feats[res // 2]: the output of block b{res}
    dec, y = D.glead_decoder, None
    for res in [2**i for i in range(3, int(math.log2(res_d)) + 1)]:
        inp = feats[res // 2] if y is None else torch.cat([y, feats[res // 2]], dim=1)
        y = ref_conv1x1(inp, dec.layers[str(res)], up=True)
    inter_img = ref_conv1x1(y, dec.img_proj, up=False)
    inter_feat = ref_conv1x1(y, dec.feat_proj, up=False)
    ws = F.adaptive_avg_pool2d(ref_conv1x1(y, dec.w_proj, up=False), 1)
    return D(img), inter_feat, inter_img, ws.reshape(ws.shape[0], 1, ws.shape[1])


def ref_resize(x, res_g):
    if x.shape[-1] == res_g:
        return x
    return F.interpolate(x, (res_g, res_g), mode="bilinear", align_corners=False)


def ref_feat2img(G, feat, img, ws, res_g, gen):
    w_amount = int(math.log2(RES // res_g)) * 2 + 1
    ws = ws.repeat(1, w_amount, 1)
    x, w_idx = feat, 0
    for res in [r for r in G.stage_resolutions if r > res_g]:
        block = G.blocks[str(res)]
        x, img = block(x, img, ws.narrow(1, w_idx, block.num_conv + 1), gen)
        w_idx += block.num_conv
    return img


def ref_reconstruct(G, out, res_g, gen):
    _, feat, img, ws = out
    return ref_feat2img(G, ref_resize(feat, res_g), ref_resize(img, res_g), ws, res_g, gen)


def reference_d_loss(G, D, real, fake, g_feat, gen, fake_target, res_g, res_d, r1_step):
    mse = F.mse_loss
    real_tmp = real.detach().requires_grad_(r1_step)
    out_real = ref_D(D, real_tmp, res_d)
    real_reg = 10.0 * mse(ref_reconstruct(G, out_real, res_g, gen), real_tmp)
    out_fake = ref_D(D, fake.detach(), res_d)
    if fake_target == "image":
        fake_reg = 3.0 * mse(ref_reconstruct(G, out_fake, res_g, gen), fake.detach())
    else:  # gfeat with a gfwimage real target: source = feat_proj1's map at res_g
        source = ref_resize(out_fake[1], res_g)
        fake_reg = 10.0 * (1.0 - F.cosine_similarity(source, g_feat).mean())
    loss = (F.softplus(out_fake[0]) + fake_reg).mean()  # Dmain, generated images
    loss = loss + (F.softplus(-out_real[0]) + real_reg).mean()  # Dmain, real images
    if r1_step:  # Dreg, gain = D_reg_interval
        (grad,) = torch.autograd.grad(out_real[0].sum(), real_tmp, create_graph=True)
        r1 = grad.square().sum([1, 2, 3]) * (GAMMA / 2)
        loss = loss + (real_reg + r1).mean() * K
    return loss


# --- the comparison -----------------------------------------------------------------------


def step_inputs(G, res_g):
    gen = torch.Generator().manual_seed(2)
    z = torch.randn(BATCH, Z_DIM, generator=gen, dtype=torch.float64)
    real = torch.rand(BATCH, CHANNELS, RES, RES, generator=gen, dtype=torch.float64) * 2 - 1
    captured = {}
    hook = G.blocks[str(res_g)].register_forward_hook(
        lambda module, args, out: captured.update(x=out[0].detach())
    )
    maps = {}
    fake = G(z, generator=torch.Generator().manual_seed(7), maps=maps)  # mixing + noise
    hook.remove()
    return z, real, fake, maps, captured["x"]


def plugin_context(G, D, z, real, fake, maps, r1_step, seed=11):
    gen = torch.Generator().manual_seed(seed)
    r1_gamma = GAMMA * K if r1_step else 0.0
    adv = build_adv_loss("nonsaturating")
    return StepContext(
        G, D, real, fake, adv, gen, r1_gamma, z=z, r1_interval=K, g_maps=maps
    )  # fmt: skip


CASES = [(8, 16), (16, 16)]  # (res_g, res_d): resized as LSUN's 32 of 64, or not as FFHQ's


@pytest.mark.parametrize("res_g, res_d", CASES)
@pytest.mark.parametrize("r1_step", [False, True])
@pytest.mark.parametrize("fake_target", ["image", "feature"])
def test_d_and_g_losses_and_gradients_match_the_official_semantics(
    fake_target, r1_step, res_g, res_d
):
    method, G, D = networks(res_g, res_d, fake_target)
    z, real, fake, maps, g_feat = step_inputs(G, res_g)
    params = list(D.parameters())
    assert any(p is D.glead_decoder.w_proj.weight for p in params)  # the decoder is in D

    ctx = plugin_context(G, D, z, real, fake, maps, r1_step)
    loss, _ = method.d_loss(ctx)
    grads = torch.autograd.grad(loss, params)
    assert all(p.grad is None for p in G.parameters())  # G is a fixed decoder in the D step

    gen = torch.Generator().manual_seed(11)
    args = (fake_target, res_g, res_d, r1_step)
    expected = reference_d_loss(G, D, real, fake, g_feat, gen, *args)
    expected_grads = torch.autograd.grad(expected, params)
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-5)
    for p, a, b in zip(params, grads, expected_grads, strict=True):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5, msg=lambda m, p=p: f"{p.shape}: {m}")

    g_loss, _ = method.g_loss(ctx)
    g_params = [p for p in G.parameters() if p.requires_grad]
    g_expected = F.softplus(-D(fake)).mean()  # Gmain: no GLeaD term for G
    torch.testing.assert_close(g_loss, g_expected, rtol=1e-5, atol=1e-5)
    got = torch.autograd.grad(g_loss, g_params, retain_graph=True, allow_unused=True)
    want = torch.autograd.grad(g_expected, g_params, allow_unused=True)
    for a, b in zip(got, want, strict=True):
        assert (a is None) == (b is None)
        if a is not None:
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("fake_target", ["image", "feature"])
def test_the_comparison_can_tell_wrong_draws_apart(fake_target):
    """Other noise in the reconstruction, or a feature target from another G forward
    (constant noise, no mixing), changes the loss: the comparison above is not vacuous."""
    method, G, D = networks(8, 16, fake_target)
    z, real, fake, maps, g_feat = step_inputs(G, 8)
    gen = torch.Generator().manual_seed(11)
    expected = reference_d_loss(G, D, real, fake, g_feat, gen, fake_target, 8, 16, False)
    other_noise, _ = method.d_loss(plugin_context(G, D, z, real, fake, maps, False, seed=12))
    assert not torch.allclose(other_noise, expected, rtol=1e-5, atol=1e-5)
    if fake_target == "feature":
        other_maps = G.feature_maps(z)
        other, _ = method.d_loss(plugin_context(G, D, z, real, fake, other_maps, False))
        assert not torch.allclose(other, expected, rtol=1e-5, atol=1e-5)


def test_decoder_follows_the_official_layer_sizes():
    """paper256 at 256²: decoder 8..64 from D's 4×4 map, heads at 64 (networks_glead.py)."""
    G, D = build_models_on_meta("stylegan2", 256, {"z_dim": 512, "g_width": 0, "d_width": 0})
    method = GLeaD(GLeaDOptions(res_g=32, perceptual="pixel"))  # LSUN's; res_d auto: 64
    method.check_compatible(G, D)
    ch = {r: min(16384 // r, 512) for r in (4, 8, 16, 32, 64)}
    assert method.res_d(D) == 64 and method.res_g(G) == 32
    with torch.device("meta"):
        decoder = GLeaDDecoder(D.stage_channels, 64, G.stage_channels[32] - 3, 3, G.w_dim)
    shapes = {name: tuple(layer.weight.shape[:2]) for name, layer in decoder.layers.items()}
    assert shapes == {
        "8": (ch[8], ch[4]), "16": (ch[16], 2 * ch[8]), "32": (ch[32], 2 * ch[16]),
        "64": (ch[64], 2 * ch[32]),
    }  # fmt: skip
    assert decoder.feat_proj.weight.shape[:2] == (ch[32], ch[64])
    assert decoder.img_proj.weight.shape[:2] == (3, ch[64])
    assert decoder.w_proj.weight.shape[:2] == (512, ch[64])


@pytest.mark.parametrize("fake_target", ["image", "feature"])
def test_dcgan_smoke(fake_target, digits16):
    cfg = tiny_run_config("glead", batch_size=8, r1_gamma=1.0, r1_interval=2)
    options = {"fake_target": fake_target, "perceptual": "pixel"}
    method, augment = build_variant("glead", {"glead": options})
    state = build_state(cfg, method, digits16.channels, augment)
    before = [p.detach().clone() for p in state.D.glead_decoder.parameters()]
    adv = build_adv_loss(cfg.adv_loss)
    for _ in range(2):  # an R1 step, then one without
        logs = train_step(state, method, adv, digits16.images["train"], cfg)
        assert logs is not None and all(math.isfinite(v) for v in logs.values())
        assert {"glead_real", "glead_fake"} <= set(logs)
    after = list(state.D.glead_decoder.parameters())
    assert all(not torch.equal(a, b) for a, b in zip(before, after, strict=True))
