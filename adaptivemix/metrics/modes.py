"""Mode coverage: how many modes a set of samples hits, and how evenly.

The standard mode-collapse measures on stacked MNIST (Metz et al. 2017, "Unrolled GANs",
arXiv 1611.02163; also reported by VEEGAN and PacGAN, Lin et al. 2018, arXiv 1712.04086):
a pretrained classifier labels each channel of each sample, the channel labels together
name the sample's mode (1,000 for three digits), and two numbers summarise the modes:

- ``modes``: how many distinct modes the samples hit;
- ``kl_modes``: KL(p_gen ‖ uniform) in nats, from the histogram of the samples over modes.

Both depend on the number of samples (with few samples even a perfect generator misses
modes and has KL > 0), so values are only comparable at the same sample count; the
evaluation records that count in its protocol (``n_gen``).
"""

from __future__ import annotations

import numpy as np
import torch

from adaptivemix.metrics.backbones import FeatureBackbone


def _classes(backbone: FeatureBackbone) -> int:
    if backbone.num_classes is None:
        raise ValueError(f"backbone '{backbone.name}' has no classifier: it cannot count modes")
    return int(backbone.num_classes)


def mode_count(backbone: FeatureBackbone, channels: int) -> int:
    """Number of modes ``backbone`` can tell apart in images with ``channels`` channels."""
    return _classes(backbone) ** backbone.group_count(channels)


def mode_labels(
    backbone: FeatureBackbone, images: torch.Tensor, batch_size: int = 500
) -> np.ndarray:
    """The mode of each image (int64, (N,)), in ``[0, num_classes ** k)``.

    The k channel groups' predicted classes are read as the digits of a base-``num_classes``
    number, the first group (R) most significant: for stacked digits with a 10-class
    classifier that is ``100·d_R + 10·d_G + d_B``, the datasets' own label.
    """
    return labels_from_groups(backbone.predict_groups(images, batch_size), _classes(backbone))


def labels_from_groups(groups: np.ndarray, n_classes: int) -> np.ndarray:
    """(N, k) predicted classes per channel group -> the mode of each image (see above)."""
    place = n_classes ** np.arange(groups.shape[1] - 1, -1, -1, dtype=np.int64)
    return groups @ place


def mode_metrics(labels: np.ndarray, n_modes: int) -> dict[str, int | float]:
    """``modes`` (distinct modes hit) and ``kl_modes`` = Σ p log(p · n_modes) over hit modes.

    ``p`` is the empirical distribution of ``labels`` over modes; modes never hit contribute
    nothing (0 · log 0 = 0). KL is 0 for exactly uniform coverage and log(n_modes) when
    every sample falls in one mode.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.size == 0:
        raise ValueError(f"need a non-empty 1-d array of mode labels, got shape {labels.shape}")
    if n_modes < 1 or labels.min() < 0 or labels.max() >= n_modes:
        raise ValueError(f"mode labels must lie in [0, {n_modes}); got [{labels.min()}, "
                         f"{labels.max()}]")  # fmt: skip
    counts = np.unique(labels, return_counts=True)[1]
    p = counts / labels.size
    return {"modes": int(counts.size), "kl_modes": float(np.sum(p * np.log(p * n_modes)))}
