"""Improved precision and recall (Kynkäänniemi et al., NeurIPS 2019, arXiv 1904.06991).

Each set of feature vectors approximates its manifold by the union of balls around its
samples, a ball's radius being the distance to the sample's k-th nearest neighbour in the same
set (k = 3 by default, as in the paper). Precision is the fraction of generated samples inside
at least one real ball; recall is the fraction of real samples inside at least one generated
ball. A point on a ball's boundary counts as inside (``<=``, as in the official code).

Distances are ``torch.cdist`` in row batches, in float64, so memory stays at
``batch_size × N`` and no N×N matrix is formed. The k-th neighbour excludes the sample itself:
it is the (k+1)-th smallest distance of the row, the sample's zero distance to itself being the
first (equivalent to dropping the diagonal, also with duplicate samples), as in StyleGAN2-ADA's
``metrics/precision_recall.py``. That code keeps features and radii in float16; float64 here is
our choice, so no sample changes sides of a ball boundary by rounding.

Features: StyleGAN2-ADA's official ``pr50k3`` measures VGG16 features (50k generated against
all real images, k = 3). Here the configured FID backbone's features are used (Inception or the
digits classifier), so precision/recall values are labelled with that backbone in the protocol
record and are not the paper's VGG16 numbers.
"""

from __future__ import annotations

import numpy as np
import torch

DEFAULT_K = 3


def _as_features(feats: np.ndarray | torch.Tensor, name: str, device: str) -> torch.Tensor:
    x = torch.as_tensor(feats).to(device, torch.float64)
    if x.ndim != 2:
        raise ValueError(f"{name} features must be 2-D (N, D), got shape {tuple(x.shape)}")
    return x


def knn_radii(feats: torch.Tensor, k: int, batch_size: int = 1000) -> torch.Tensor:
    """Distance of every row to its k-th nearest other row, shape (N,)."""
    if not 1 <= k < feats.shape[0]:
        raise ValueError(f"k must be in [1, N-1] = [1, {feats.shape[0] - 1}], got {k}")
    radii = [
        torch.cdist(feats[i : i + batch_size], feats).kthvalue(k + 1, dim=1).values
        for i in range(0, feats.shape[0], batch_size)
    ]
    return torch.cat(radii)


def fraction_inside(
    queries: torch.Tensor, centres: torch.Tensor, radii: torch.Tensor, batch_size: int = 1000
) -> float:
    """Fraction of ``queries`` within ``radii[j]`` of some ``centres[j]`` (boundary inside)."""
    inside = [
        (torch.cdist(queries[i : i + batch_size], centres) <= radii[None, :]).any(dim=1)
        for i in range(0, queries.shape[0], batch_size)
    ]
    return float(torch.cat(inside).double().mean())


def real_knn_radii(
    real_feats: np.ndarray, k: int = DEFAULT_K, device: str = "cpu", batch_size: int = 1000
) -> np.ndarray:
    """The real set's k-NN radii (float64, (N,)), as :func:`precision_recall` computes them:
    stored with the reference statistics so every run's evaluation reuses them."""
    return knn_radii(_as_features(real_feats, "real", device), k, batch_size).cpu().numpy()


def precision_recall(
    real_feats: np.ndarray | torch.Tensor,
    gen_feats: np.ndarray | torch.Tensor,
    k: int = DEFAULT_K,
    batch_size: int = 1000,
    device: str = "cpu",
    real_radii: np.ndarray | None = None,
) -> dict:
    """``{"precision": ..., "recall": ...}`` of generated against real features (rows = samples).

    Each set needs more than ``k`` samples; both need the same feature width. ``real_radii``:
    the real set's k-NN radii when already known (:func:`real_knn_radii` with the same ``k``
    and ``batch_size``), else computed here.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    real = _as_features(real_feats, "real", device)
    gen = _as_features(gen_feats, "generated", device)
    if real.shape[1] != gen.shape[1]:
        raise ValueError(
            f"real and generated features differ in width: {real.shape[1]} vs {gen.shape[1]}"
        )
    if real_radii is None:
        radii = knn_radii(real, k, batch_size)
    else:
        radii = torch.as_tensor(real_radii).to(device, torch.float64)
        if radii.shape != (real.shape[0],):
            raise ValueError(f"real_radii has shape {tuple(radii.shape)}, not ({real.shape[0]},)")
    gen_radii = knn_radii(gen, k, batch_size)
    return {
        "precision": fraction_inside(gen, real, radii, batch_size),
        "recall": fraction_inside(real, gen, gen_radii, batch_size),
    }
