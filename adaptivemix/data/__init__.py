"""Datasets: a registry of builders, each returning an :class:`ImageDataset`.

Importing this package registers the embedded datasets and the real-data readers.
"""

from adaptivemix.data import (
    cifar,  # noqa: F401  (registers "cifar10", "cifar100")
    digit_subsets,  # noqa: F401  (registers "digits-0to5", "digits-25pct")
    digits,  # noqa: F401  (registers "digits")
    gan_sets,  # noqa: F401  (registers "ffhq256", "ffhq256-5k", "afhq-cat", "lsun-*", "cifar10-gan")
    stacked_digits,  # noqa: F401  (registers "stacked-digits")
)
from adaptivemix.data.base import (
    DATASETS,
    SPLITS,
    ImageDataset,
    as_float_images,
    load_prepared,
    save_prepared,
)

__all__ = [
    "DATASETS",
    "SPLITS",
    "ImageDataset",
    "as_float_images",
    "load_prepared",
    "save_prepared",
]
