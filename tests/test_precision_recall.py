"""Improved precision/recall against hand-worked 2-D cases and a brute-force double loop.

Expected values are worked out by hand (comments give the distances) or by plain Python loops
over ``math.dist``; nothing is taken from the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from adaptivemix.metrics.fid import ReferenceStats, compute_reference_stats
from adaptivemix.metrics.precision_recall import knn_radii, precision_recall, real_knn_radii

# Real: a tight triangle near the origin plus one outlier, whose large ball (the paper's point
# about outliers inflating the manifold) reaches halfway to the triangle.
REAL = [(0, 0), (1, 0), (0, 1), (10, 10)]
# Generated: two points in the outlier's ball, one on a triangle ball's boundary, one far away.
GEN = [(5, 5), (-30, 0), (2, 0), (3, 3)]


def t(points) -> torch.Tensor:
    return torch.tensor(points, dtype=torch.float64)


def test_radii_by_hand():
    # distances from (0,0): 1, 1, √200; (1,0): 1, √2, √181; (0,1): 1, √2, √181;
    # (10,10): √181, √181, √200
    expected = {
        1: [1, 1, 1, math.sqrt(181)],
        2: [1, math.sqrt(2), math.sqrt(2), math.sqrt(181)],
        3: [math.sqrt(200), math.sqrt(181), math.sqrt(181), math.sqrt(200)],
    }
    for k, radii in expected.items():
        np.testing.assert_allclose(knn_radii(t(REAL), k).numpy(), radii, rtol=1e-15)
    # a duplicate is its twin's nearest neighbour (radius 0), not itself
    np.testing.assert_array_equal(knn_radii(t([(0, 0), (0, 0), (3, 4)]), 1).numpy(), [0, 0, 5])


def test_precision_and_recall_by_hand_k1():
    # precision, real radii (1, 1, 1, √181 ≈ 13.45):
    #   (5,5):  √50 ≈ 7.07 from (10,10)             inside
    #   (-30,0): 30 from (0,0) > 1, √1700 from (10,10) > √181   outside
    #   (2,0):  exactly 1 from (1,0) = its radius     inside (boundary counts)
    #   (3,3):  √98 ≈ 9.90 from (10,10)             inside            -> 3/4
    # recall, generated radii k=1: (5,5) √8 [to (3,3)], (-30,0) 32 [to (2,0)],
    #   (2,0) √10 [to (3,3)], (3,3) √8 [to (5,5)]:
    #   (0,0): 2 from (2,0) <= √10; (1,0): 1; (0,1): √5 <= √10   inside
    #   (10,10): √50 > √8, √98 > √8, √164 > √10, √1700 > 32      outside -> 3/4
    got = precision_recall(np.array(REAL, float), np.array(GEN, float), k=1)
    assert got == {"precision": 0.75, "recall": 0.75}


def test_sets_far_apart_and_identical_sets():
    real = [(0, 0), (1, 0), (0, 1), (1, 1)]
    far = [(100, 100), (101, 100), (100, 101), (101, 101)]
    assert precision_recall(t(real), t(far), k=1) == {"precision": 0.0, "recall": 0.0}
    assert precision_recall(t(real), t(real), k=3) == {"precision": 1.0, "recall": 1.0}
    # generated collapsed onto one real point: precise (inside that point's ball) but it covers
    # only the real points within the collapsed set's radius 0, i.e. that point alone
    collapsed = [(0, 0)] * 4
    assert precision_recall(t(real), t(collapsed), k=1) == {"precision": 1.0, "recall": 0.25}


def brute_force(real: np.ndarray, gen: np.ndarray, k: int) -> tuple[float, float]:
    """The definition, with Python loops: radius = k-th smallest distance to the others."""

    def radii(points):
        out = []
        for i, p in enumerate(points):
            others = sorted(math.dist(p, q) for j, q in enumerate(points) if j != i)
            out.append(others[k - 1])
        return out

    def covered(probes, centres, rad):
        balls = list(zip(centres, rad, strict=True))
        hits = [any(math.dist(p, c) <= r for c, r in balls) for p in probes]
        return sum(hits) / len(hits)

    return covered(gen, real, radii(real)), covered(real, gen, radii(gen))


@pytest.mark.parametrize("k", [1, 3, 5])
def test_matches_brute_force_on_random_points(k):
    rng = np.random.default_rng(k)
    real = rng.normal(size=(40, 5))
    gen = rng.normal(loc=0.8, scale=0.9, size=(33, 5))
    precision, recall = brute_force(real, gen, k)
    assert 0 < precision < 1 and 0 < recall < 1  # a case that discriminates
    for batch_size in (7, 1000):  # row batches must not change anything
        got = precision_recall(real, gen, k=k, batch_size=batch_size)
        assert got["precision"] == pytest.approx(precision, abs=1e-12)
        assert got["recall"] == pytest.approx(recall, abs=1e-12)


def test_bad_inputs():
    with pytest.raises(ValueError, match="k must be"):
        precision_recall(t(REAL), t(GEN), k=4)  # 4 samples: at most 3 neighbours
    with pytest.raises(ValueError, match="width"):
        precision_recall(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="2-D"):
        precision_recall(np.zeros(5), np.zeros((5, 1)))


def test_stored_real_radii_give_the_same_values():
    """The radii kept with the reference statistics are the ones computed in place; radii
    of the wrong length are refused."""
    rng = np.random.default_rng(3)
    real, gen = rng.normal(size=(230, 6)), rng.normal(size=(170, 6)) + 0.2
    radii = real_knn_radii(real, k=3, batch_size=64)
    assert np.array_equal(radii, knn_radii(torch.as_tensor(real), 3).numpy())
    fresh = precision_recall(real, gen, k=3, batch_size=64)
    assert precision_recall(real, gen, k=3, batch_size=64, real_radii=radii) == fresh
    with pytest.raises(ValueError, match="real_radii has shape"):
        precision_recall(real, gen, k=3, real_radii=radii[:-1])


def test_reference_stats_store_radii_for_their_k_only(tmp_path, digits16, digits_backbone):
    ref = compute_reference_stats(digits16, "val", digits_backbone, pr_k=3)
    assert ref.meta["pr_k"] == 3
    ref.save(tmp_path / "ref.npz")
    loaded = ReferenceStats.load(tmp_path / "ref.npz")
    assert np.array_equal(loaded.radii_for(3), real_knn_radii(ref.features, 3))
    assert loaded.radii_for(5) is None  # another k: computed at evaluation time instead
    assert compute_reference_stats(digits16, "val", digits_backbone).real_radii is None
