"""Stacked digits: three handwritten digits as the R, G and B channels of one image.

The "Stacked MNIST" construction used to count the modes a GAN covers (Metz et al. 2017,
"Unrolled GANs", arXiv 1611.02163; Srivastava et al. 2017, "VEEGAN", arXiv 1705.07761),
built from scikit-learn's 8×8 digits instead of MNIST so that it runs offline. Each image
stacks three digits drawn uniformly with replacement; its label is the mode it belongs to,
``100·d_R + 10·d_G + d_B``, one of 1,000.

Every split is stacked only from the same split of :mod:`adaptivemix.data.digits` (train
from the 1,257 train digits, val from the 180 val digits, test from the 360 test digits), so
no test digit ever appears in a training image. Channels are upsampled exactly as the
digits dataset serves its images, and values are in [-1, 1].

The split sizes (10,000 / 1,000 / 2,000 images) and the drawing seed are our choice, not
the papers' (they stack MNIST's 60,000 digits): 10,000 training images give 10 per mode on
average and keep the prepared file small (30 MB at 16 px).
"""

from __future__ import annotations

import numpy as np
import torch

from adaptivemix.data.base import SPLITS, ImageDataset, register_dataset
from adaptivemix.data.digits import SUPPORTED_RESOLUTIONS, digits_split_indices, upsample_digits
from adaptivemix.errors import ConfigError

SPLIT_SIZES = {"train": 10_000, "val": 1_000, "test": 2_000}
STACK_SEED = 20170529  # fixed forever: changing it changes every stacked-digits result
N_STACKED = 3  # digits per image: one per RGB channel
N_MODES = 10**N_STACKED


def stack_picks(split: str, pool_size: int) -> np.ndarray:
    """(n, 3) positions into a split's digits: which digit fills each channel of each image.

    Each split has its own stream (seeded with the split's position) so that its images do
    not depend on the other splits' sizes; the global NumPy RNG is never used.
    """
    rng = np.random.default_rng([STACK_SEED, SPLITS.index(split)])
    return rng.integers(0, pool_size, size=(SPLIT_SIZES[split], N_STACKED))


def stack_split(
    digits: torch.Tensor, digit_labels: np.ndarray, picks: np.ndarray
) -> tuple[torch.Tensor, torch.Tensor]:
    """Images (n, 3, R, R) and mode labels from single-channel ``digits`` (N, 1, R, R)."""
    index = torch.from_numpy(picks)
    images = digits[:, 0][index].contiguous()  # (n, 3, R, R): channel c is digit picks[:, c]
    place = 10 ** np.arange(N_STACKED - 1, -1, -1)  # R is the most significant digit
    labels = torch.from_numpy((digit_labels[picks] * place).sum(axis=1).astype(np.int64))
    return images, labels


@register_dataset(
    "stacked-digits", family="stacked-digits", classes=[f"{m:03d}" for m in range(N_MODES)]
)
def build_stacked_digits(resolution: int = 16) -> ImageDataset:
    """The stacked-digits dataset at ``resolution`` px (one of 8, 16, 32), 1,000 classes."""
    if resolution not in SUPPORTED_RESOLUTIONS:
        raise ConfigError("data.resolution", resolution, f"one of {list(SUPPORTED_RESOLUTIONS)}")
    from sklearn.datasets import load_digits  # at use: only data preparation needs sklearn

    bunch = load_digits()
    images, labels = {}, {}
    for split, idx in digits_split_indices().items():
        pool = upsample_digits(bunch.images[idx], resolution)
        picks = stack_picks(split, len(idx))
        images[split], labels[split] = stack_split(pool, bunch.target[idx], picks)
    return ImageDataset("stacked-digits", images, labels, num_classes=N_MODES)
