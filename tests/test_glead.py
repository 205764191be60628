"""GLeaD: decoder shapes, the reconstruction path through G's frozen later stages, the loss
terms against hand-written references, and refusal of networks it cannot decode through."""

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
def test_decoder_predicts_g_feature_map_shape(res_g):
    method, G, D = prepared(res_g=res_g)
    maps = D.feature_maps(torch.randn(5, 1, 16, 16))
    assert sorted(maps) == [4, 8, 16]
    assert maps[4].shape == D.features(torch.randn(5, 1, 16, 16)).shape
    predicted = D.glead_decoder(maps)
    assert predicted.shape == (5, G.stage_channels[res_g], res_g, res_g)
    assert method.reconstruct(D, maps).shape == (5, 1, 16, 16)


def test_reconstruction_goes_through_g_later_stages_and_leaves_g_untouched():
    method, G, D = prepared(res_g=8)
    running = {k: v.clone() for k, v in G.state_dict().items()}
    maps = D.feature_maps(torch.randn(6, 1, 16, 16))
    recon = method.reconstruct(D, maps)
    expected = manual_synthesis_from_8(G, D.glead_decoder(maps))
    torch.testing.assert_close(recon, expected, rtol=1e-5, atol=1e-5)
    recon.square().mean().backward()
    assert all(p.grad is None for p in G.parameters())  # G is a fixed decoder here
    assert D.glead_decoder.to_g_features.weight.grad.abs().sum() > 0
    assert D.body[0].weight.grad.abs().sum() > 0  # the task shapes D's own features
    for key, value in G.state_dict().items():  # BN running statistics included
        assert torch.equal(value, running[key]), key
    assert all(p.requires_grad for p in G.parameters())


def step_context(G, D, seed=0):
    gen = torch.Generator().manual_seed(seed)
    z = torch.randn(6, 16, generator=gen)
    real = torch.rand(6, 1, 16, 16, generator=gen) * 2 - 1
    return StepContext(G, D, real, G(z), build_adv_loss("nonsaturating"), gen, z=z)


@pytest.mark.parametrize("fake_target", ["image", "feature", "none"])
def test_d_loss_adds_weighted_reconstruction_terms(fake_target):
    method, G, D = prepared(res_g=8, fake_target=fake_target)
    ctx = step_context(G, D)
    loss, logs = method.d_loss(ctx)
    # an independent reading of the definition
    real, fake = ctx.real, ctx.fake.detach()
    plain = F.softplus(-D(real)).mean() + F.softplus(D(fake)).mean()
    maps_r, maps_f = D.feature_maps(real), D.feature_maps(fake)
    rec_real = (manual_synthesis_from_8(G, D.glead_decoder(maps_r)) - real).square().mean()
    if fake_target == "image":
        pred = manual_synthesis_from_8(G, D.glead_decoder(maps_f))
        fake_term = 3.0 * (pred - fake).square().mean()
    elif fake_target == "feature":
        with torch.no_grad():
            target = G.feature_maps(ctx.z)[8]
        cos = F.cosine_similarity(D.glead_decoder(maps_f).flatten(1), target.flatten(1), dim=1)
        fake_term = 3.0 * (1 - cos).mean()
    else:
        fake_term = torch.zeros(())
    expected = plain + 10.0 * rec_real + fake_term
    torch.testing.assert_close(loss, expected, rtol=1e-5, atol=1e-5)
    assert logs["glead_real"] == pytest.approx(float(rec_real.detach()), rel=1e-5)


def test_g_loss_is_plain_non_saturating():
    method, G, D = prepared()
    ctx = step_context(G, D)
    loss, _ = method.g_loss(ctx)
    torch.testing.assert_close(loss, F.softplus(-D(ctx.fake)).mean())


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
        GLeaD(GLeaDOptions(res_g=16)).check_compatible(G, D)


def test_backbone_distance_without_backbone_is_a_clear_error():
    G, D = build_models("dcgan", 16, 1, 16, 8, 8, 0)
    with pytest.raises(ValueError, match="feature backbone"):
        GLeaD(GLeaDOptions(perceptual="backbone")).prepare(G, D, RunEnv())


def test_bad_options_name_the_key():
    with pytest.raises(ConfigError, match=r"gan\.method_options\.glead\.fake_target"):
        GLeaDOptions(fake_target="both")
    with pytest.raises(ConfigError, match=r"gan\.method_options\.glead\.perceptual"):
        GLeaDOptions(perceptual="lpips-vgg")


def test_result_records_the_perceptual_distance():
    cfg = tiny_run_config("glead", method_options={"glead": {"perceptual": "pixel"}})
    method, _ = build_variant(cfg.method, cfg.method_options)
    G, D = build_models("dcgan", 16, 1, 16, 8, 8, 0)
    method.prepare(G, D, RunEnv())
    assert method.describe()["perceptual_distance"] == {"name": "pixel"}
    assert method.describe()["res_g"] == 0  # the option as given; 0 = a quarter of the side
    assert method.describe()["resolved_res_g"] == 4
