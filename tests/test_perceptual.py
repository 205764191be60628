"""Perceptual distances (GLeaD's reconstruction measure): values against direct formulas."""

from __future__ import annotations

import pytest
import torch

from adaptivemix.gan.methods import RunEnv
from adaptivemix.metrics.perceptual import PERCEPTUAL_DISTANCES, build_perceptual


def test_registry_offers_the_offline_choices():
    assert {"backbone", "pixel"} <= set(PERCEPTUAL_DISTANCES.names())


def test_pixel_distance_is_per_sample_mean_squared_error():
    a = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]], [[[1.0, 1.0], [1.0, 1.0]]]])
    b = torch.zeros_like(a)
    distance = build_perceptual("pixel", RunEnv(), "key")(a, b)
    torch.testing.assert_close(distance, torch.tensor([(0 + 1 + 4 + 9) / 4, 1.0]))


def test_backbone_distance_compares_unit_normalised_embeddings(digits_backbone, digits16):
    distance = build_perceptual("backbone", RunEnv(feature_backbone=digits_backbone), "key")
    a = digits16.images["train"][:4].clone().requires_grad_(True)
    b = digits16.images["train"][4:8]
    values = distance(a, b)
    module = digits_backbone.module
    with torch.no_grad():
        fa, fb = module.embed(a), module.embed(b)
    expected = [float(((fa[i] / fa[i].norm() - fb[i] / fb[i].norm()) ** 2).sum()) for i in range(4)]
    assert values.detach().tolist() == pytest.approx(expected, rel=1e-5, abs=1e-6)
    assert distance(b, b).abs().max() < 1e-6
    values.sum().backward()
    assert a.grad.abs().sum() > 0  # the reconstruction side receives gradients
    assert all(p.grad is None for p in module.parameters())  # the backbone stays frozen
    assert distance.describe()["backbone_sha256"] == digits_backbone.weights_sha256


def test_backbone_distance_measures_stacked_images_per_channel(digits_backbone):
    distance = build_perceptual("backbone", RunEnv(feature_backbone=digits_backbone), "key")
    gen = torch.Generator().manual_seed(0)
    a, b = (torch.rand(3, 3, 16, 16, generator=gen) * 2 - 1 for _ in range(2))
    with torch.no_grad():
        embed = digits_backbone.module.embed
        fa = torch.cat([embed(a[:, c : c + 1]) for c in range(3)], dim=1)
        fb = torch.cat([embed(b[:, c : c + 1]) for c in range(3)], dim=1)
    fa, fb = fa / fa.norm(dim=1, keepdim=True), fb / fb.norm(dim=1, keepdim=True)
    torch.testing.assert_close(distance(a, b), (fa - fb).square().sum(1), rtol=1e-5, atol=1e-6)


def test_unknown_distance_names_key_and_choices():
    from adaptivemix.errors import ConfigError

    with pytest.raises(ConfigError, match="'lpips-vgg'"):
        build_perceptual("lpips-vgg", RunEnv(), "gan.method_options.glead.perceptual")
