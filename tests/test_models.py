"""The architecture contract (features/head, per-sample features, staged synthesis),
checked for every registered architecture."""

from __future__ import annotations

import pytest
import torch

from adaptivemix.models import ARCHS, build_models


@pytest.fixture(params=ARCHS.names())
def models(request):
    G, D = build_models(request.param, 16, 1, 8, 8, 8, seed=0)
    return G.eval(), D.eval()


def test_d_is_head_of_features(models):
    _, D = models
    x = torch.rand(5, 1, 16, 16) * 2 - 1
    logits = D(x)
    assert logits.shape == (5,)
    torch.testing.assert_close(logits, D.head(D.features(x)))


def test_per_sample_features_do_not_depend_on_the_batch(models):
    _, D = models
    if not D.per_sample_features:
        pytest.skip("this D declares cross-sample features")
    x = torch.rand(4, 1, 16, 16)
    alone = torch.cat([D.features(x[i : i + 1]) for i in range(4)])
    torch.testing.assert_close(D.features(x), alone)


def test_generator_stages_compose_to_the_forward(models):
    G, _ = models
    z = torch.randn(3, 8)
    image = G(z)
    assert image.shape == (3, 1, 16, 16) and torch.isfinite(image).all()
    maps = G.feature_maps(z)
    assert sorted(maps) == G.stage_resolutions
    for res, h in maps.items():
        torch.testing.assert_close(G.synthesize_from(h, res, z=z), image)


def test_same_seed_same_weights_and_global_rng_untouched():
    state = torch.get_rng_state()
    a = build_models("dcgan", 16, 1, 8, 8, 8, seed=3)[1].state_dict()
    b = build_models("dcgan", 16, 1, 8, 8, 8, seed=3)[1].state_dict()
    assert torch.equal(state, torch.get_rng_state())
    assert all(torch.equal(a[k], b[k]) for k in a)
