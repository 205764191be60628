"""scikit-learn's handwritten digits: 1,797 real 8×8 images, shipped with the library.

The embedded, offline dataset of the default profile (UCI optical recognition of
handwritten digits, test set). Pixel values 0..16 are scaled to [-1, 1] and served
upsampled to the configured resolution with bilinear interpolation.

Splits are fixed once for everyone: stratified by class with a constant seed,
70% train / 10% val / 20% test (1,257 / 180 / 360 images).
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from adaptivemix.data.base import ImageDataset, register_dataset
from adaptivemix.errors import ConfigError

SPLIT_SEED = 20230301  # fixed forever: changing it changes every digits result
VAL_FRACTION, TEST_FRACTION = 0.1, 0.2
SUPPORTED_RESOLUTIONS = (8, 16, 32)
DIGIT_CLASSES = tuple("0123456789")


def digits_split_indices() -> dict[str, np.ndarray]:
    """Indices into ``load_digits()`` for each split (stratified, deterministic)."""
    from sklearn.datasets import load_digits  # at use: only data preparation needs sklearn
    from sklearn.model_selection import train_test_split

    labels = load_digits().target
    all_idx = np.arange(len(labels))
    rest, test = train_test_split(
        all_idx, test_size=TEST_FRACTION, stratify=labels, random_state=SPLIT_SEED
    )
    val_share = VAL_FRACTION / (1.0 - TEST_FRACTION)
    train, val = train_test_split(
        rest, test_size=val_share, stratify=labels[rest], random_state=SPLIT_SEED
    )
    return {"train": np.sort(train), "val": np.sort(val), "test": np.sort(test)}


def upsample_digits(raw: np.ndarray, resolution: int) -> torch.Tensor:
    """(N, 8, 8) values 0..16 -> (N, 1, R, R) float32 in [-1, 1]."""
    x = torch.from_numpy(raw.astype(np.float32) / 16.0).unsqueeze(1)
    if resolution != 8:
        x = F.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)
    return (x.clamp(0.0, 1.0) * 2.0 - 1.0).contiguous()


@register_dataset("digits", family="digits", classes=DIGIT_CLASSES)
def build_digits(resolution: int = 16) -> ImageDataset:
    if resolution not in SUPPORTED_RESOLUTIONS:
        raise ConfigError("data.resolution", resolution, f"one of {list(SUPPORTED_RESOLUTIONS)}")
    from sklearn.datasets import load_digits

    bunch = load_digits()
    idx = digits_split_indices()
    images = {s: upsample_digits(bunch.images[i], resolution) for s, i in idx.items()}
    labels = {s: torch.from_numpy(bunch.target[i].astype(np.int64)) for s, i in idx.items()}
    return ImageDataset("digits", images, labels, num_classes=10)
