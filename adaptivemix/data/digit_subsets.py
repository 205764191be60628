"""Subsets of the embedded digits: class subsets (in-distribution sets that leave classes out
for OOD) and train-split fractions (limited-data GAN sets).

A subset keeps the splits of :mod:`adaptivemix.data.digits` (each split is filtered, so a
subset never mixes train and test digits), the same resolutions and the same [-1, 1] values.
Labels are the positions of the kept classes in the subset's class list; for a subset of
the first ``k`` digits (``digits-0to5``) that is the digit itself, so labels are unchanged.

The held-out classes are the near-OOD set of such a model: ``digits-6to9`` in
:mod:`adaptivemix.ood.embedded_sets` holds every image of classes 6–9.

Another subset is one line: ``register_digit_subset("digits-0to4", "01234")``.

Limited-data sets cut the train split instead: ``digits-25pct`` keeps a seeded, class-stratified
25 % of it (314 of 1,257 images), val and test whole; another fraction is one line too,
``register_digit_fraction("digits-10pct", 0.10)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from adaptivemix.data.base import ImageDataset, register_dataset
from adaptivemix.data.digits import DIGIT_CLASSES, build_digits
from adaptivemix.data.splits import stratified_holdout


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


#: Seed of the limited-data cut: a constant, so every method and seed trains on the same images.
FRACTION_SEED = 20_230_301


def digit_fraction(full: ImageDataset, name: str, fraction: float) -> ImageDataset:
    """``full`` with its train split cut to ``fraction`` of every class (seeded, stratified);
    val and test stay whole. The limited-data counterpart of a full set, as FFHQ-5k is of
    FFHQ: a GAN trains on the cut and is measured against the full set's reals
    (``evaluate.metric_data``)."""
    _, kept = stratified_holdout(full.labels["train"].numpy(), fraction, FRACTION_SEED)
    keep = torch.from_numpy(kept)
    images = dict(full.images, train=full.images["train"][keep].contiguous())
    labels = dict(full.labels, train=full.labels["train"][keep].contiguous())
    return ImageDataset(name, images, labels, num_classes=full.num_classes)


def register_digit_fraction(name: str, fraction: float) -> Callable[..., ImageDataset]:
    """Register dataset ``name``: the digits with ``fraction`` (0 < f < 1) of the train split."""
    if not 0 < fraction < 1:
        raise ValueError(f"digit fraction {name!r}: {fraction} must lie strictly between 0 and 1")

    @register_dataset(name, family="digits", classes=list(DIGIT_CLASSES))
    def build(resolution: int = 16) -> ImageDataset:
        return digit_fraction(build_digits(resolution), name, fraction)

    build.__doc__ = f"The digits, {fraction:.0%} of the train split, at ``resolution`` px."
    return build


build_digits_25pct = register_digit_fraction("digits-25pct", 0.25)
