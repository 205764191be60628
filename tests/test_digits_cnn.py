"""The digits-cnn backbone: it learns, it is deterministic, and its loader serves features."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from adaptivemix.data import DATASETS
from adaptivemix.io import load_torch
from adaptivemix.metrics import BACKBONES
from adaptivemix.metrics.backbones import ModuleBackbone
from adaptivemix.metrics.digits_cnn import DigitsCNN, random_shift, train_digits_cnn
from adaptivemix.provenance import sha256_file


@pytest.fixture
def one_thread():
    """One CPU thread: faster for this tiny net, and the precondition for bit-identity."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def digits16():
    return DATASETS.get("digits")(resolution=16)


@pytest.fixture(scope="module")
def trained(digits16, tmp_path_factory):
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        path = tmp_path_factory.mktemp("digits_cnn") / "digits_cnn.pt"
        summary = train_digits_cnn(digits16, seed=0, steps=300, out_path=path)
    finally:
        torch.set_num_threads(previous)
    return path, summary


@pytest.mark.slow
def test_training_learns_digits(trained):
    path, summary = trained
    assert summary["backbone"] == "digits-cnn" and summary["seed"] == 0
    assert summary["steps"] == 300
    assert summary["val_accuracy"] >= 0.85  # chance is 0.1
    assert 0.0 <= summary["test_accuracy"] <= 1.0 and summary["train_seconds"] > 0
    assert summary["weights_sha256"] == sha256_file(path)
    meta = load_torch(path)["meta"]  # weights_only=True: nothing but tensors and plain types
    assert {k: meta[k] for k in ("in_channels", "resolution", "feature_dim", "num_classes")} == {
        "in_channels": 1,
        "resolution": 16,
        "feature_dim": 64,
        "num_classes": 10,
    }


@pytest.mark.slow
def test_loaded_backbone_features_and_predictions(trained, digits16):
    path, summary = trained
    backbone = BACKBONES.get("digits-cnn")(path, "cpu")
    assert (backbone.name, backbone.protocol, backbone.feature_dim) == ("digits-cnn", "native", 64)
    assert backbone.weights_sha256 == summary["weights_sha256"]
    images, labels = digits16.split("val")
    feats = backbone.features(images, batch_size=64)
    assert feats.shape == (images.shape[0], 64) and feats.dtype == np.float64
    np.testing.assert_allclose(feats, backbone.features(images, batch_size=500), rtol=1e-5)
    payload = load_torch(path)
    model = DigitsCNN(1, 64, 10)
    model.load_state_dict(payload["state_dict"])
    with torch.no_grad():
        expected = model.eval()(images).argmax(dim=1).numpy()
    predicted = backbone.predict(images)
    np.testing.assert_array_equal(predicted, expected)
    assert (predicted == labels.numpy()).mean() == pytest.approx(summary["val_accuracy"])


@pytest.mark.slow
def test_same_seed_gives_bit_identical_weights(digits16, tmp_path, one_thread):
    rng_before = torch.get_rng_state()
    runs = [
        train_digits_cnn(digits16, seed=s, steps=30, out_path=tmp_path / f"{name}.pt")
        for name, s in (("a", 3), ("b", 3), ("c", 4))
    ]
    assert torch.equal(rng_before, torch.get_rng_state())  # training leaves global RNG alone
    a, b, c = (load_torch(tmp_path / f"{n}.pt")["state_dict"] for n in "abc")
    assert a.keys() == b.keys()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert runs[0]["weights_sha256"] == runs[1]["weights_sha256"]
    assert not all(torch.equal(a[k], c[k]) for k in a)


@pytest.mark.parametrize("resolution", [8, 16, 32])
@pytest.mark.parametrize("channels", [1, 3])
def test_architecture_serves_all_resolutions(resolution, channels):
    model = DigitsCNN(in_channels=channels).eval()
    x = torch.zeros(2, channels, resolution, resolution)
    assert model.embed(x).shape == (2, 64)
    assert model(x).shape == (2, 10)


def test_random_shift_moves_each_image_by_at_most_one_pixel():
    x = torch.rand(40, 1, 6, 6) * 2 - 1
    shifted = random_shift(x, torch.Generator().manual_seed(0))
    padded = F.pad(x, (1, 1, 1, 1), value=-1.0)
    offsets = set()
    for i in range(x.shape[0]):
        matches = [
            (dy, dx)
            for dy in range(3)
            for dx in range(3)
            if torch.equal(shifted[i], padded[i, :, dy : dy + 6, dx : dx + 6])
        ]
        assert matches, f"image {i} is not a ±1 px translation"
        offsets.update(matches)
    assert len(offsets) > 1  # offsets differ between images


# --- channel groups: a 1-channel network measuring stacked (3-channel) digits -----------


@pytest.fixture(scope="module")
def brief(tmp_path_factory):
    """A digits-cnn trained for a few steps on 8 px digits, and its loaded backbone."""
    path = tmp_path_factory.mktemp("brief") / "w.pt"
    train_digits_cnn(DATASETS.get("digits")(8), seed=1, steps=20, out_path=path)
    model = DigitsCNN(1, 64, 10)
    model.load_state_dict(load_torch(path)["state_dict"])
    return BACKBONES.get("digits-cnn")(path, "cpu"), model.eval()


@pytest.fixture(scope="module")
def stacked_val():
    return DATASETS.get("stacked-digits")(8).images["val"][:200]


def test_loader_reads_channels_and_classes_from_meta(brief):
    backbone, _ = brief
    assert (backbone.in_channels, backbone.num_classes, backbone.feature_dim) == (1, 10, 64)


def test_group_features_are_per_channel_features_concatenated(brief, stacked_val):
    backbone, model = brief
    feats = backbone.features(stacked_val, batch_size=64)
    assert feats.shape == (200, 3 * 64) and feats.dtype == np.float64
    with torch.no_grad():  # the module itself, one channel at a time
        by_hand = torch.cat([model.embed(stacked_val[:, c : c + 1]) for c in range(3)], dim=1)
    np.testing.assert_allclose(feats, by_hand.double().numpy(), rtol=1e-5, atol=1e-6)
    for c in range(3):
        one = backbone.features(stacked_val[:, c : c + 1])
        np.testing.assert_allclose(feats[:, 64 * c : 64 * (c + 1)], one, rtol=1e-5, atol=1e-6)


def test_group_predictions_and_single_group_predict(brief, stacked_val):
    backbone, model = brief
    groups = backbone.predict_groups(stacked_val, batch_size=64)
    assert groups.shape == (200, 3) and groups.dtype == np.int64
    with torch.no_grad():
        by_hand = [model(stacked_val[:, c : c + 1]).argmax(1).numpy() for c in range(3)]
    np.testing.assert_array_equal(groups, np.stack(by_hand, axis=1))
    np.testing.assert_array_equal(backbone.predict(stacked_val[:, 1:2]), by_hand[1])
    with pytest.raises(ValueError, match="predict_groups"):
        backbone.predict(stacked_val)


def test_channel_count_must_be_a_multiple_of_the_network_input():
    model = DigitsCNN(in_channels=3)
    backbone = ModuleBackbone(model, "rgb", "native", "00", 64, "cpu", in_channels=3)
    assert backbone.features(torch.zeros(2, 6, 8, 8)).shape == (2, 128)  # two RGB groups
    for channels in (1, 2, 4):
        with pytest.raises(ValueError, match=f"multiple of 3.*got {channels} channels"):
            backbone.features(torch.zeros(2, channels, 8, 8))
    with pytest.raises(ValueError, match="got 4 channels"):
        backbone.embed(torch.zeros(2, 4, 8, 8))


def test_embed_is_differentiable_frozen_and_in_eval_mode(brief, stacked_val):
    backbone, _ = brief
    x = stacked_val[:16].clone().requires_grad_(True)
    backbone.module.train()  # a caller switching modes must not change the features
    out = backbone.embed(x)
    assert out.shape == (16, 192) and out.requires_grad
    out.square().sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in backbone.module.parameters())
    np.testing.assert_allclose(
        out.detach().double().numpy(), backbone.features(stacked_val[:16]), rtol=1e-5, atol=1e-6
    )
    alone = backbone.embed(stacked_val[:1])  # no batch statistics: same image, same features
    torch.testing.assert_close(alone, out[:1].detach(), rtol=1e-5, atol=1e-6)
