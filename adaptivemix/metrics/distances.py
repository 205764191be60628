"""The Fréchet distance (FID) and the kernel distance (KID) with clean-fid 0.1.35's semantics.

Written here rather than imported: ``cleanfid.fid`` imports torchvision at module level (and
with it ``torchvision.models`` and ``torch._dynamo``), seconds of start-up in every training
job for two formulas. What is kept, operation for operation, so values are bit-identical to
clean-fid's ``frechet_distance`` and ``kernel_distance`` (``tests/test_distances.py`` checks
both on the same inputs and the same draws):

- Fréchet: ‖μ₁ − μ₂‖² + tr Σ₁ + tr Σ₂ − 2 tr √(Σ₁Σ₂), the square root by SciPy's ``sqrtm``;
  a non-finite root is retried with ε·I added to both covariances; an imaginary part above
  1e-3 on the diagonal raises, a smaller one is dropped.
- Kernel: the unbiased MMD² with the cubic polynomial kernel k(x, y) = (xᵀy / d + 1)³,
  averaged over ``num_subsets`` subsets of m = min(n₁, n₂, ``max_subset_size``) rows drawn
  without replacement, the second set's rows first. clean-fid draws them from NumPy's global
  RNG; here they come from an explicit ``np.random.RandomState``, which gives the same
  stream: ``RandomState(s)`` draws what the global RNG draws after ``np.random.seed(s)``.
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy import linalg


def _sqrtm(matrix: np.ndarray) -> np.ndarray:
    # ``disp=False`` as clean-fid calls it; the pinned SciPy deprecates the argument.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*`disp` argument", category=DeprecationWarning)
        return linalg.sqrtm(matrix, disp=False)[0]


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray, eps: float = 1e-6
) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2)."""
    mu1, mu2 = np.atleast_1d(mu1), np.atleast_1d(mu2)
    sigma1, sigma2 = np.atleast_2d(sigma1), np.atleast_2d(sigma2)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape:
        raise ValueError(
            f"mean shapes {mu1.shape}, {mu2.shape} and covariance shapes "
            f"{sigma1.shape}, {sigma2.shape} must agree"
        )
    diff = mu1 - mu2
    root = _sqrtm(sigma1.dot(sigma2))
    if not np.isfinite(root).all():
        offset = np.eye(sigma1.shape[0]) * eps  # a near-singular product
        root = _sqrtm((sigma1 + offset).dot(sigma2 + offset))
    if np.iscomplexobj(root):
        if not np.allclose(np.diagonal(root).imag, 0, atol=1e-3):
            raise ValueError(f"imaginary component {np.max(np.abs(root.imag))} in sqrtm")
        root = root.real
    return diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * np.trace(root)


def kernel_distance(
    feats1: np.ndarray,
    feats2: np.ndarray,
    rng: np.random.RandomState,
    num_subsets: int = 100,
    max_subset_size: int = 1000,
) -> float:
    """KID between two feature sets (rows are samples), subsets drawn from ``rng``."""
    dim = feats1.shape[1]
    m = min(feats1.shape[0], feats2.shape[0], max_subset_size)
    total = 0
    for _ in range(num_subsets):
        x = feats2[rng.choice(feats2.shape[0], m, replace=False)]
        y = feats1[rng.choice(feats1.shape[0], m, replace=False)]
        within = (x @ x.T / dim + 1) ** 3 + (y @ y.T / dim + 1) ** 3
        across = (x @ y.T / dim + 1) ** 3
        total += (within.sum() - np.diag(within).sum()) / (m - 1) - across.sum() * 2 / m
    return float(total / num_subsets / m)
