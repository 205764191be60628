"""Our Fréchet and kernel distances against clean-fid's own functions (same inputs, same draws)
and against values computed by hand."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from cleanfid.fid import frechet_distance as cleanfid_frechet
from cleanfid.fid import kernel_distance as cleanfid_kernel

from adaptivemix.metrics.distances import frechet_distance, kernel_distance


def _stats(rng: np.random.Generator, n: int, d: int, shift: float):
    feats = rng.normal(size=(n, d)) @ rng.normal(size=(d, d)) + shift
    return feats, feats.mean(axis=0), np.cov(feats, rowvar=False)


@pytest.mark.parametrize("d", [2, 8, 64])
def test_frechet_bit_identical_to_clean_fid(d):
    rng = np.random.default_rng(d)
    _, mu1, s1 = _stats(rng, 300, d, 0.0)
    _, mu2, s2 = _stats(rng, 200, d, 0.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        theirs = cleanfid_frechet(mu1, s1, mu2, s2)
    assert frechet_distance(mu1, s1, mu2, s2) == theirs


def test_frechet_singular_covariances_match_clean_fid():
    """Rank-deficient covariances take the ε-regularised path (or not) as clean-fid does."""
    rng = np.random.default_rng(0)
    low = rng.normal(size=(50, 2)) @ rng.normal(size=(2, 6))
    mu, sigma = low.mean(axis=0), np.cov(low, rowvar=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        theirs = cleanfid_frechet(mu, sigma, mu + 1.0, sigma)
        ours = frechet_distance(mu, sigma, mu + 1.0, sigma)
    assert ours == pytest.approx(theirs, rel=1e-12, abs=1e-9)


def test_frechet_by_hand_for_diagonal_gaussians():
    """Diagonal covariances: FID = ‖Δμ‖² + Σ (√a − √b)²."""
    a, b = np.array([1.0, 4.0, 9.0]), np.array([4.0, 1.0, 9.0])
    mu1, mu2 = np.zeros(3), np.array([1.0, 2.0, 0.0])
    expected = 5.0 + (1 - 2) ** 2 + (2 - 1) ** 2 + 0.0
    value = frechet_distance(mu1, np.diag(a), mu2, np.diag(b))
    assert value == pytest.approx(expected, abs=1e-10)


def test_kernel_bit_identical_to_clean_fid_on_the_same_draws():
    rng = np.random.default_rng(1)
    f1, f2 = rng.normal(size=(120, 5)), rng.normal(size=(90, 5)) + 0.3
    np.random.seed(7)
    theirs = cleanfid_kernel(f1, f2, num_subsets=5, max_subset_size=40)
    rng = np.random.RandomState(7)  # the stream np.random.seed(7) gives the global RNG
    assert kernel_distance(f1, f2, rng, num_subsets=5, max_subset_size=40) == theirs


def test_kernel_by_hand_on_whole_sets():
    """One subset holding every row: the unbiased MMD² of the cubic kernel, written out."""
    x = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    y = np.array([[2.0, 0.0], [0.0, 0.0], [1.0, 2.0]])

    def k(u, v):
        return (u @ v / 2 + 1) ** 3

    m = 3
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    rng = np.random.RandomState(0)  # the permutation of whole sets leaves the value unchanged
    assert kernel_distance(x, y, rng, num_subsets=1, max_subset_size=3) == pytest.approx(
        kxx + kyy - 2 * kxy, rel=1e-12
    )
