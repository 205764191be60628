"""Datasets: a registry of builders, each returning an :class:`ImageDataset`.

Importing this package registers the embedded datasets.
"""

from adaptivemix.data import (
    cifar,  # noqa: F401  (registers "cifar10", "cifar100")
    digit_subsets,  # noqa: F401  (registers "digits-0to5")
    digits,  # noqa: F401  (registers "digits")
    stacked_digits,  # noqa: F401  (registers "stacked-digits")
)
from adaptivemix.data.base import DATASETS, SPLITS, ImageDataset, load_prepared, save_prepared

__all__ = ["DATASETS", "SPLITS", "ImageDataset", "load_prepared", "save_prepared"]
