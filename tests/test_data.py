"""The embedded digits dataset: real data, fixed splits, stable content."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.datasets import load_digits

from adaptivemix.data import DATASETS, load_prepared, save_prepared
from adaptivemix.data.digits import digits_split_indices
from adaptivemix.errors import ConfigError


def test_splits_partition_the_1797_digits():
    idx = digits_split_indices()
    sizes = {s: len(i) for s, i in idx.items()}
    assert sizes == {"train": 1257, "val": 180, "test": 360}
    everything = np.concatenate(list(idx.values()))
    assert sorted(everything.tolist()) == list(range(1797))


def test_splits_are_stratified_and_fixed():
    labels = load_digits().target
    idx = digits_split_indices()
    for split, i in idx.items():
        share = np.bincount(labels[i], minlength=10) / len(i)
        assert np.all(np.abs(share - 0.1) < 0.02), split
    again = digits_split_indices()
    assert all(np.array_equal(idx[s], again[s]) for s in idx)


@pytest.mark.parametrize("resolution", [8, 16, 32])
def test_images_are_scaled_to_minus_one_one(resolution):
    ds = DATASETS.get("digits")(resolution)
    x = ds.images["train"]
    assert x.shape == (1257, 1, resolution, resolution) and x.dtype == torch.float32
    assert x.min() == -1.0 and x.max() == 1.0
    if resolution == 8:  # native: value v in 0..16 maps to v/8 − 1 exactly
        raw = load_digits().images[digits_split_indices()["train"]]
        assert torch.allclose(x[:, 0], torch.from_numpy(raw / 8.0 - 1.0).float())


def test_prepared_file_round_trips_with_the_same_hash(tmp_path, digits16):
    path = save_prepared(digits16, tmp_path / "d.pt")
    again = load_prepared(path)
    assert again.content_hash() == digits16.content_hash()
    assert again.summary()["sizes"] == {"train": 1257, "val": 180, "test": 360}


def test_unsupported_resolution_is_refused():
    with pytest.raises(ConfigError, match=r"data\.resolution.*12.*\[8, 16, 32\]"):
        DATASETS.get("digits")(12)
