"""Class subsets of the embedded digits: in-distribution sets that leave classes out for OOD.

A subset keeps the splits of :mod:`adaptivemix.data.digits` (each split is filtered, so a
subset never mixes train and test digits), the same resolutions and the same [-1, 1] values.
Labels are the positions of the kept classes in the subset's class list; for a subset of
the first ``k`` digits (``digits-0to5``) that is the digit itself, so labels are unchanged.

The held-out classes are the near-OOD set of such a model: ``digits-6to9`` in
:mod:`adaptivemix.ood.embedded_sets` holds every image of classes 6–9.

Another subset is one line: ``register_digit_subset("digits-0to4", "01234")``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from adaptivemix.data.base import ImageDataset, register_dataset
from adaptivemix.data.digits import DIGIT_CLASSES, build_digits


def digit_subset(full: ImageDataset, name: str, classes: str) -> ImageDataset:
    """``full`` (the digits dataset) restricted to ``classes`` (digit characters), per split."""
    kept = torch.tensor([DIGIT_CLASSES.index(c) for c in classes], dtype=torch.int64)
    relabel = torch.full((len(DIGIT_CLASSES),), -1, dtype=torch.int64)
    relabel[kept] = torch.arange(len(kept))
    images, labels = {}, {}
    for split, y in full.labels.items():
        keep = torch.isin(y, kept)
        images[split] = full.images[split][keep].contiguous()
        labels[split] = relabel[y[keep]]
    return ImageDataset(name, images, labels, num_classes=len(classes))


def register_digit_subset(name: str, classes: str) -> Callable[..., ImageDataset]:
    """Register dataset ``name``: the digits of ``classes`` (e.g. ``"012345"``) only."""
    unknown = [c for c in classes if c not in DIGIT_CLASSES]
    if not classes or unknown or len(set(classes)) != len(classes):
        raise ValueError(f"digit subset {name!r}: {classes!r} must be distinct digits 0-9")

    @register_dataset(name, family="digits", classes=list(classes))
    def build(resolution: int = 16) -> ImageDataset:
        return digit_subset(build_digits(resolution), name, classes)

    build.__doc__ = f"The digits {', '.join(classes)} at ``resolution`` px (8, 16 or 32)."
    return build


build_digits_0to5 = register_digit_subset("digits-0to5", "012345")
