"""GLeaD on DCGAN: decoder outputs, the reconstruction path through G's frozen later stages,
the loss terms against hand-written references, lazy-R1 counting of the real term, the
trainer's record of G's maps, and refusal of networks it cannot decode through. The
official-semantics comparison on StyleGAN2 is tests/test_glead_conformance.py."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from helpers import tiny_run_config
from torch import nn

from adaptivemix.config import load_workflow_config
from adaptivemix.errors import ConfigError
from adaptivemix.gan.losses import build_adv_loss
from adaptivemix.gan.methods import IncompatibleError, RunEnv, StepContext
from adaptivemix.gan.trainer import _context, build_state
from adaptivemix.gan.variants import build_variant
from adaptivemix.models import ARCHS, build_models
from adaptivemix.models.base import ArchSpec
from baselines.glead import GLeaD, GLeaDOptions


def prepared(res_g=8, fake_target="image", resolution=16, seed=0):
    G, D = build_models("dcgan", resolution, 1, 16, 8, 8, seed)
    method = GLeaD(GLeaDOptions(res_g=res_g, fake_target=fake_target, perceptual="pixel"))
    G, D = method.prepare(G, D, RunEnv())
    return method, G, D


def manual_synthesis_from_8(G, h):
    """DCGAN's 16-px stage written out: conv-transpose, batch-statistics BN, ReLU, to_image."""
    convt, bn = G.blocks["16"][0], G.blocks["16"][1]
    y = F.conv_transpose2d(h, convt.weight, stride=2, padding=1)
    mean = y.mean(dim=(0, 2, 3), keepdim=True)
    var = y.var(dim=(0, 2, 3), unbiased=False, keepdim=True)
    y = (y - mean) / torch.sqrt(var + bn.eps) * bn.weight.view(1, -1, 1, 1)
    y = torch.relu(y + bn.bias.view(1, -1, 1, 1))
    return torch.tanh(F.conv2d(y, G.to_image.weight, G.to_image.bias, padding=1))


@pytest.mark.parametrize("res_g", [4, 8])
def test_decoder_predicts_g_feature_map_at_res_d(res_g):
    method, G, D = prepared(res_g=res_g)
    x = torch.randn(5, 1, 16, 16)
    maps = D.feature_maps(x)
    assert sorted(maps) == [4, 8, 16]
    assert maps[4].shape == D.features(x).shape
    pred = D.glead_decoder(maps)  # res_d auto: max(16 // 4, 2 × 4) = 8
    assert pred.features.shape == (5, G.stage_channels[res_g], 8, 8)
    assert pred.image is None and pred.w is None  # DCGAN: no skip image, no w
    assert method.reconstruct(pred, torch.Generator()).shape == (5, 1, 16, 16)


def test_reconstruction_goes_through_g_later_stages_and_leaves_g_untouched():
    method, G, D = prepared(res_g=8)
    running = {k: v.clone() for k, v in G.state_dict().items()}
    pred = D.glead_decoder(D.feature_maps(torch.randn(6, 1, 16, 16)))
    recon = method.reconstruct(pred, torch.Generator())
    expected = manual_synthesis_from_8(G, pred.features)
    torch.testing.assert_close(recon, expected, rtol=1e-5, atol=1e-5)
    recon.square().mean().backward()
    assert all(p.grad is None for p in G.parameters())  # G is a fixed decoder here
    assert D.glead_decoder.feat_proj.weight.grad.abs().sum() > 0
    assert D.body[0].weight.grad.abs().sum() > 0  # the task shapes D's own features
    for key, value in G.state_dict().items():  # BN running statistics included
        assert torch.equal(value, running[key]), key
    assert all(p.requires_grad for p in G.parameters())


def step_context(G, D, seed=0, **fields):
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(6, 16, generator=gen)
    real = torch.rand(6, 1, 16, 16, generator=gen) * 2 - 1
    maps = {}
    fake = G(z, maps=maps)
    adv = build_adv_loss("nonsaturating")
    return StepContext(G, D, real, fake, adv, gen, z=z, g_maps=maps, **fields)


@pytest.mark.parametrize("fake_target", ["image", "feature", "none"])
def test_d_loss_adds_weighted_reconstruction_terms(fake_target):
    method, G, D = prepared(res_g=4, fake_target=fake_target)
    ctx = step_context(G, D)
    loss, logs = method.d_loss(ctx)
    # an independent reading of the definition (DCGAN: the feature head only, 8 -> 4 resized)
    real, fake = ctx.real, ctx.fake.detach()
    plain = F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean()

    def predicted(x):
        features = D.glead_decoder(D.feature_maps(x)).features
        return F.interpolate(features, size=(4, 4), mode="bilinear", align_corners=False)

    def decoded(x):
        return G.synthesize_from(predicted(x), 4)

    rec_real = (decoded(real) - real).square().mean()
    if fake_target == "image":
        fake_term = 3.0 * (decoded(fake) - fake).square().mean()
    elif fake_target == "feature":
        target = ctx.g_maps[4]
        fake_term = 10.0 * (1 - F.cosine_similarity(predicted(fake), target, dim=1)).mean()
    else:
        fake_term = torch.zeros(())
    expected = plain + 10.0 * rec_real + fake_term
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-5)
    assert logs["glead_real"] == pytest.approx(float(rec_real.detach()), rel=1e-5)


def test_real_term_counts_one_plus_k_times_on_lazy_r1_steps():
    method, G, D = prepared(res_g=8)
    base = step_context(G, D, r1_interval=16)
    plain, logs = method.d_loss(base)
    lazy, lazy_logs = method.d_loss(step_context(G, D, r1_gamma=1.0 * 16, r1_interval=16))
    extra = 16 * 10.0 * logs["glead_real"] + 0.5 * 16.0 * lazy_logs["r1"]
    torch.testing.assert_close(lazy, plain + extra, rtol=1e-5, atol=1e-5)
    once, _ = method.d_loss(step_context(G, D, r1_gamma=1.0, r1_interval=1))  # Dboth
    torch.testing.assert_close(once, plain + 0.5 * lazy_logs["r1"], rtol=1e-5, atol=1e-5)


def test_fake_weight_defaults_follow_the_official_scripts():
    assert GLeaD(GLeaDOptions(fake_target="image", perceptual="pixel")).fake_weight == 3.0
    assert GLeaD(GLeaDOptions(fake_target="feature", perceptual="pixel")).fake_weight == 10.0
    options = GLeaDOptions(fake_target="feature", fake_weight=2.5, perceptual="pixel")
    assert GLeaD(options).fake_weight == 2.5
    defaults = GLeaDOptions.__dataclass_fields__
    assert defaults["perceptual"].default == "lpips" and defaults["real_weight"].default == 10.0


def test_feature_target_needs_the_step_maps():
    method, G, D = prepared(res_g=8, fake_target="feature")
    assert method.records_g_maps and not GLeaD(GLeaDOptions(perceptual="pixel")).records_g_maps
    ctx = step_context(G, D)
    ctx.g_maps = None
    with pytest.raises(ValueError, match="g_maps"):
        method.d_loss(ctx)


def test_trainer_records_the_maps_of_the_fake_forward(digits16):
    """ctx.g_maps holds the features of the very G call that made ctx.fake (noise, mixing)."""
    arch_options = dict(channel_base=256, channel_max=32, mapping_layers=2, w_dim=32)
    cfg = tiny_run_config("glead", arch="stylegan2", arch_options=arch_options, z_dim=8)
    method, augment = build_variant(
        "glead", {"glead": {"fake_target": "feature", "perceptual": "pixel"}}
    )
    state = build_state(cfg, method, digits16.channels, augment)
    seen = {}

    def record(r):
        def hook(module, args, out):  # returns None: the output is left as it is
            seen[r] = torch.cat(out, dim=1).detach()

        return hook

    hooks = [
        state.G.blocks[str(r)].register_forward_hook(record(r)) for r in state.G.stage_resolutions
    ]
    adv = build_adv_loss(cfg.adv_loss)
    ctx, _ = _context(state, adv, digits16.images["train"], cfg, 0, True, record_maps=True)
    for hook in hooks:
        hook.remove()
    assert sorted(ctx.g_maps) == sorted(seen)
    for r, h in seen.items():
        torch.testing.assert_close(ctx.g_maps[r], h, rtol=0, atol=0)
    torch.testing.assert_close(ctx.fake, seen[16][:, -1:], rtol=0, atol=0)
    plain, _ = _context(state, adv, digits16.images["train"], cfg, 1, True)
    assert plain.g_maps is None


class FlatGenerator(nn.Module):
    """A generator with no exposed stages: GLeaD cannot decode through it."""

    def __init__(self, resolution, channels, z_dim):
        super().__init__()
        self.shape = (channels, resolution, resolution)
        self.net = nn.Linear(z_dim, channels * resolution * resolution)

    def forward(self, z):
        return torch.tanh(self.net(z)).view(-1, *self.shape)


def build_flat(resolution, channels, z_dim, g_width, d_width, options=None):
    _, D = ARCHS.get("dcgan").build(resolution, channels, z_dim, g_width, d_width)
    return FlatGenerator(resolution, channels, z_dim), D


def test_generator_without_stages_is_refused():
    G, D = build_flat(16, 1, 16, 8, 8)
    with pytest.raises(IncompatibleError, match="synthesize_from"):
        GLeaD().check_compatible(G, D)


def test_incompatible_combination_refused_by_config_validation(repo_root, monkeypatch):
    import yaml

    # registered for this test only: the registry-parametrized model tests must not see it
    monkeypatch.setitem(ARCHS._entries, "test-flat-g", ArchSpec(build_flat))
    config = yaml.safe_load((repo_root / "config/smoke.yaml").read_text())
    config["gan"]["arch"] = "test-flat-g"
    config["gan"]["methods"] = ["vanilla", "glead"]
    with pytest.raises(ConfigError) as err:
        load_workflow_config(config)
    message = str(err.value)
    assert "gan.methods[1]" in message and "'glead'" in message and "synthesize_from" in message
    config["gan"]["methods"] = ["vanilla"]
    load_workflow_config(config)  # the same arch is fine for a method that needs no stages


def test_res_g_must_be_an_inner_stage():
    G, D = build_models("dcgan", 16, 1, 16, 8, 8, 0)
    with pytest.raises(IncompatibleError, match="res_g=16"):
        GLeaD(GLeaDOptions(res_g=16, perceptual="pixel")).check_compatible(G, D)


@pytest.mark.parametrize("res_d", [4, 32])
def test_res_d_must_be_a_map_of_d_above_its_coarsest(res_d):
    G, D = build_models("dcgan", 16, 1, 16, 8, 8, 0)
    with pytest.raises(IncompatibleError, match=f"res_d={res_d}"):
        GLeaD(GLeaDOptions(res_d=res_d, perceptual="pixel")).check_compatible(G, D)


def test_bad_options_name_the_key():
    with pytest.raises(ConfigError, match=r"gan\.method_options\.glead\.fake_target"):
        GLeaDOptions(fake_target="both")
    with pytest.raises(ConfigError, match=r"gan\.method_options\.glead\.perceptual"):
        GLeaDOptions(perceptual="lpips-vgg")
    with pytest.raises(ConfigError, match=r"gan\.method_options\.glead\.perceptual"):
        GLeaDOptions(perceptual="backbone")  # the FID network is refused (metric leak)
    with pytest.raises(ConfigError, match=r"gan\.method_options\.glead\.fake_weight"):
        GLeaDOptions(fake_weight=-1.0)


def test_result_records_the_perceptual_distance():
    cfg = tiny_run_config("glead", method_options={"glead": {"perceptual": "pixel"}})
    method, _ = build_variant(cfg.method, cfg.method_options)
    G, D = build_models("dcgan", 16, 1, 16, 8, 8, 0)
    method.prepare(G, D, RunEnv())
    assert method.describe()["perceptual_distance"] == {"name": "pixel"}
    assert method.describe()["res_g"] == 0  # the option as given; 0 = a quarter of the side
    assert method.describe()["resolved_res_g"] == 4
    assert method.describe()["resolved_res_d"] == 8
    assert method.describe()["resolved_fake_weight"] == 3.0
