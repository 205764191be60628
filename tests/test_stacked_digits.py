"""Stacked digits: every channel is a real digit of the same split, labels name the mode.

Expected images and labels come straight from scikit-learn's digits (at 8 px a digit's
pixel v in 0..16 is v/8 − 1 exactly), never from the builder's own helpers.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from adaptivemix.data import DATASETS, load_prepared, save_prepared
from adaptivemix.errors import ConfigError

SIZES = {"train": 10_000, "val": 1_000, "test": 2_000}


@pytest.fixture(scope="module")
def stacked8():
    return DATASETS.get("stacked-digits")(8)


@pytest.fixture(scope="module")
def stacked16():
    return DATASETS.get("stacked-digits")(16)


def digits_by_split() -> dict[str, dict[bytes, int]]:
    """Per split: the 8 px image bytes (v/8 − 1, float32) of each source digit -> its label.

    The split is recomputed here from its definition (stratified 20% test, then 1/8 of the
    rest as val, seed 20230301), not taken from the module under test.
    """
    bunch = load_digits()
    all_idx = np.arange(len(bunch.target))
    rest, test = train_test_split(
        all_idx, test_size=0.2, stratify=bunch.target, random_state=20230301
    )
    train, val = train_test_split(
        rest, test_size=0.125, stratify=bunch.target[rest], random_state=20230301
    )
    pixels = (bunch.images / 8.0 - 1.0).astype(np.float32)
    return {
        split: {pixels[i].tobytes(): int(bunch.target[i]) for i in idx}
        for split, idx in (("train", train), ("val", val), ("test", test))
    }


def test_shapes_sizes_and_value_range(stacked16):
    ds = stacked16
    assert ds.name == "stacked-digits" and ds.num_classes == 1000
    assert (ds.channels, ds.resolution) == (3, 16)
    for split, n in SIZES.items():
        x, y = ds.split(split)
        assert x.shape == (n, 3, 16, 16) and x.dtype == torch.float32
        assert y.shape == (n,) and y.dtype == torch.int64
        assert x.min() == -1.0 and x.max() == 1.0
        assert int(y.min()) >= 0 and int(y.max()) <= 999


def test_every_channel_is_a_digit_of_the_same_split_and_labels_name_the_mode(stacked8):
    sources = digits_by_split()
    for split, lookup in sources.items():
        images, labels = stacked8.split(split)
        for image, label in zip(images.numpy(), labels.tolist(), strict=True):
            # a KeyError here = a channel that is no digit of this split (e.g. a test digit)
            d_r, d_g, d_b = (lookup[channel.tobytes()] for channel in image)
            assert label == 100 * d_r + 10 * d_g + d_b


def test_test_digits_never_reach_the_training_images(stacked8):
    sources = digits_by_split()
    held_out = set(sources["test"]) | set(sources["val"])
    train_channels = {c.tobytes() for image in stacked8.images["train"].numpy() for c in image}
    assert not train_channels & held_out
    assert len(train_channels) > 1200  # nearly all 1,257 train digits are used


def test_modes_are_covered_nearly_uniformly(stacked8):
    labels = stacked8.labels["train"].numpy()
    assert len(np.unique(labels)) >= 990  # 10 images per mode on average
    for place in (100, 10, 1):  # each channel's digit class is close to 1/10
        share = np.bincount(labels // place % 10, minlength=10) / len(labels)
        assert np.all(np.abs(share - 0.1) < 0.02)


def test_same_digits_at_every_resolution(stacked8, stacked16):
    for split in SIZES:
        assert torch.equal(stacked8.labels[split], stacked16.labels[split])
    # channel 0 of each 16 px image is the upsampled version of the 8 px one
    down = torch.nn.functional.avg_pool2d(stacked16.images["val"], 2)
    assert (
        torch.corrcoef(torch.stack([down.flatten(), stacked8.images["val"].flatten()]))[0, 1] > 0.9
    )


def test_deterministic_and_global_rngs_untouched(stacked16, tmp_path):
    np.random.seed(5)
    torch.manual_seed(5)
    np_before, torch_before = np.random.get_state(), torch.get_rng_state()
    again = DATASETS.get("stacked-digits")(16)
    assert np.array_equal(np_before[1], np.random.get_state()[1])
    assert torch.equal(torch_before, torch.get_rng_state())
    assert again.content_hash() == stacked16.content_hash()
    loaded = load_prepared(save_prepared(again, tmp_path / "s.pt"))
    assert loaded.summary() == stacked16.summary()
    assert loaded.summary()["sizes"] == SIZES


def test_unsupported_resolution_is_refused():
    with pytest.raises(ConfigError, match=r"data\.resolution.*12"):
        DATASETS.get("stacked-digits")(12)
