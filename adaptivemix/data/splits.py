"""Seeded, class-stratified cuts of a labelled split: CIFAR's validation hold-out and the
limited-data fractions of the digits both draw their images here."""

from __future__ import annotations

import numpy as np

__all__ = ["stratified_holdout"]


def stratified_holdout(
    labels: np.ndarray, fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(kept, held_out) sorted indices; ``held_out`` is ``fraction`` of every class.

    The held-out total is ``round(fraction * n)``; each class gives ``floor(fraction * n_c)``
    images and the remaining ones go to the classes with the largest remainders (ties in a
    seeded random order). Which images of a class are held out is a seeded permutation.
    """
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * fraction
    take = np.floor(quota).astype(np.int64)
    extra = round(fraction * len(labels)) - int(take.sum())
    order = np.lexsort((rng.permutation(len(classes)), -(quota - take)))
    take[order[:extra]] += 1
    held = []
    for c, k in zip(classes, take, strict=True):
        members = np.flatnonzero(labels == c)
        held.append(rng.permutation(members)[:k])
    held_out = np.sort(np.concatenate(held)) if held else np.zeros(0, dtype=np.int64)
    kept = np.setdiff1d(np.arange(len(labels)), held_out)
    return kept, held_out
