"""OOD metrics as ODIN computes them (facebookresearch/odin, ``code/calMetric.py``).

ODIN (Liang et al., ICLR 2018) does not build a ROC curve from the scores: it sweeps a
uniform grid of thresholds ``δ`` and counts, with ID scores ``X`` and OOD scores ``Y``
(higher = more in-distribution) and every rate a share of its own set:

- grid: ``np.arange(start, end, (end - start) / 100000)``; ``aupr_out`` walks the grid
  ``np.arange(end, start, -gap)`` downwards;
- ``fpr95`` (``tpr95``): the mean of ``mean(Y > δ)`` over every ``δ`` whose
  ``mean(X >= δ)`` lies in [0.9495, 0.9505] (NaN when no grid point does; ODIN divides by
  zero there); ``tnr95 = 1 - fpr95``. Here *ID* is the positive class: the share of OOD
  accepted while 95% of ID is, not OpenOOD's share of ID flagged while 95% of OOD is (the
  two differ, often by several points);
- ``detection_acc``: ``1 -`` ODIN's detection error ``min(1, min_δ (mean(X < δ) +
  mean(Y > δ)) / 2)``;
- ``auroc``: ``Σ (fpr_prev - fpr) · tpr`` along the grid with ``tpr = mean(X >= δ)``,
  ``fpr = mean(Y > δ)``, ``fpr_prev`` starting at 1, plus ``fpr · tpr`` of the last ``δ``;
- ``aupr_in``: ``Σ (recall_prev - recall) · precision`` with ``tp = mean(X >= δ)``,
  ``fp = mean(Y >= δ)``, precision ``tp / (tp + fp)`` (of the *rates*, so as if both sets
  had one size), recall ``tp``, ``recall_prev`` from 1, grid points with ``tp + fp = 0``
  skipped, plus ``recall · precision`` of the last point used;
- ``aupr_out``: the same down the falling grid with ``fp = mean(X < δ)``,
  ``tp = mean(Y < δ)``, stopping at the first ``tp + fp = 0``.

What is interpretation (named here, used by :func:`odin_metrics`):

- ``bounds``: ODIN hard-codes ``start``/``end`` per in-distribution set and method
  (baseline: [0.1, 1) for CIFAR-10, [0.01, 1) for CIFAR-100, the whole range of a
  max-softmax score; T = 1000: [0.1, 0.12) and [0.01, 0.0104)). The default here,
  ``None``, is the observed range [min, max) of the pooled ID and OOD scores, so the grid
  covers any detector's scores; pass ODIN's pair to sweep its exact thresholds.
- ``auroc``: ODIN's baseline branch counts OOD scores ``> δ``, its T = 1000 branch
  ``>= δ``; this follows the baseline (and ``tpr95``/``detection``), ``>``. The two differ
  only for an OOD score exactly on a grid threshold.
- a metric ODIN leaves undefined (it raises: no grid point in the TPR window, no point with
  ``tp + fp > 0``) is NaN.

The sweep is vectorised (counts by ``searchsorted`` on sorted scores: the same integer
counts as ODIN's comparisons, divided by the set size as ODIN does).
"""

from __future__ import annotations

import numpy as np

#: thresholds per sweep (ODIN's ``gap = (end - start) / 100000``)
ODIN_STEPS = 100_000
#: ODIN's window of ID "TPR" (share of ID scores >= δ) averaged for fpr95
TPR_WINDOW = (0.9495, 0.9505)
#: the name this rule has in result protocols
ODIN_RULE = "odin-calmetric"


def odin_grid(
    scores_in: np.ndarray, scores_out: np.ndarray, bounds=None, steps: int = ODIN_STEPS
) -> tuple[np.ndarray, np.ndarray]:
    """(rising grid, falling grid) of ODIN's sweep over ``bounds`` (default: observed range).

    All scores equal (no range to sweep): the one threshold at that score.
    """
    if bounds is None:
        pooled = np.concatenate([scores_in, scores_out])
        bounds = (float(pooled.min()), float(pooled.max()))
    start, end = (float(b) for b in bounds)
    if not end > start:
        return np.array([start]), np.array([end])
    gap = (end - start) / steps
    return np.arange(start, end, gap), np.arange(end, start, -gap)


class _Counts:
    """Shares of sorted scores below / at-or-above / above each threshold."""

    def __init__(self, scores: np.ndarray):
        self.sorted = np.sort(scores)
        self.n = self.sorted.size

    def below(self, t: np.ndarray) -> np.ndarray:  # mean(s < t)
        return np.searchsorted(self.sorted, t, side="left") / self.n

    def at_or_above(self, t: np.ndarray) -> np.ndarray:  # mean(s >= t)
        return (self.n - np.searchsorted(self.sorted, t, side="left")) / self.n

    def above(self, t: np.ndarray) -> np.ndarray:  # mean(s > t)
        return (self.n - np.searchsorted(self.sorted, t, side="right")) / self.n


def _step_area(tp: np.ndarray, fp: np.ndarray) -> float:
    """ODIN's AUPR sum over the points with ``tp + fp > 0`` (NaN when there is none)."""
    keep = (tp + fp) != 0
    tp, fp = tp[keep], fp[keep]
    if tp.size == 0:
        return float("nan")
    precision = tp / (tp + fp)
    previous = np.concatenate([[1.0], tp[:-1]])
    return float(np.sum((previous - tp) * precision) + tp[-1] * precision[-1])


def odin_metrics(scores_in, scores_out, bounds=None, steps: int = ODIN_STEPS) -> dict:
    """auroc, fpr95, tnr95, detection_acc, aupr_in, aupr_out by ODIN's calMetric sweep."""
    s_in = np.asarray(scores_in, dtype=np.float64)
    s_out = np.asarray(scores_out, dtype=np.float64)
    rising, falling = odin_grid(s_in, s_out, bounds, steps)
    x, y = _Counts(s_in), _Counts(s_out)
    tpr, fpr = x.at_or_above(rising), y.above(rising)
    window = (tpr >= TPR_WINDOW[0]) & (tpr <= TPR_WINDOW[1])
    fpr95 = float(np.mean(fpr[window])) if window.any() else float("nan")
    error = min(1.0, float(np.min((x.below(rising) + fpr) / 2.0)))
    previous = np.concatenate([[1.0], fpr[:-1]])
    auroc = float(np.sum((previous - fpr) * tpr) + fpr[-1] * tpr[-1])
    # aupr_out stops at the first empty point; the shares only fall along the falling grid,
    # so every later point is empty too and skipping them all is the same
    aupr_out = _step_area(y.below(falling), x.below(falling))
    return {
        "auroc": auroc,
        "fpr95": fpr95,
        "tnr95": 1.0 - fpr95,
        "detection_acc": 1.0 - error,
        "aupr_in": _step_area(tpr, y.at_or_above(rising)),
        "aupr_out": aupr_out,
    }
