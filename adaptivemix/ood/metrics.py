"""OOD detection metrics, with OOD as the positive class (the convention of OpenOOD v1.5).

Detector scores are "higher = more in-distribution", so every curve ranks samples by
``-score``: a threshold ``t`` flags a sample as OOD when ``-score >= t``. Then

- ``auroc``: area under the ROC curve (TPR = OOD flagged, FPR = ID flagged); the probability
  that a random OOD sample scores below a random ID sample, ties counting one half;
- ``fpr95``: the FPR at the first ROC point whose TPR reaches 0.95 (OpenOOD's rule: the ROC
  of ``sklearn.metrics.roc_curve`` and the first index with ``tpr >= 0.95``); ``tnr95`` is
  ``1 - fpr95``;
- ``detection_acc``: the detection accuracy of ODIN (Liang et al., ICLR 2018), the best
  balanced accuracy over thresholds, ``max 0.5 * (tpr + 1 - fpr)`` over ROC points;
- ``aupr_in``: average precision with ID as the positive class, ranking by ``score``;
- ``aupr_out``: average precision with OOD as the positive class, ranking by ``-score``.

:func:`roc_on_grid` samples a ROC curve at fixed FPR values so curves of several seeds can
be averaged vertically. Example::

    values = ood_metrics(scores_id, scores_ood)  # {"auroc": ..., "fpr95": ..., ...}
    tpr = roc_on_grid(scores_id, scores_ood, FPR_GRID)  # (101,), monotone, tpr[-1] == 1
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

METRIC_NAMES = ("auroc", "fpr95", "tnr95", "detection_acc", "aupr_in", "aupr_out")
#: the FPR values at which result files store each ROC curve
FPR_GRID = np.linspace(0.0, 1.0, 101)
#: the TPR (share of OOD samples flagged) at which ``fpr95`` is read
TPR_LEVEL = 0.95
#: slack when comparing an FPR of the curve (a ratio of counts) with a grid value, so that
#: e.g. 7/100 is not missed because ``np.linspace`` gives 0.07000000000000001 or 0.0699...
_GRID_SLACK = 1e-9


def _checked(name: str, scores) -> np.ndarray:
    """``scores`` as a 1-D float64 array; empty or non-finite input raises ValueError."""
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"{name}: expected a 1-D array of scores, got shape {values.shape}")
    if values.size == 0:
        raise ValueError(f"{name}: no scores (empty array)")
    bad = int(np.count_nonzero(~np.isfinite(values)))
    if bad:
        raise ValueError(f"{name}: {bad} of {values.size} scores are not finite (NaN or inf)")
    return values


def _ranked(scores_in, scores_out) -> tuple[np.ndarray, np.ndarray]:
    """Labels (1 = OOD) and the OOD-ness ``-score`` of ID then OOD samples."""
    s_in = _checked("scores_in", scores_in)
    s_out = _checked("scores_out", scores_out)
    is_ood = np.concatenate([np.zeros(s_in.size, np.int64), np.ones(s_out.size, np.int64)])
    return is_ood, -np.concatenate([s_in, s_out])


def _roc(is_ood: np.ndarray, oodness: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    # every distinct threshold, from (0, 0) to (1, 1): the first-index rule of fpr95 and
    # the step-wise grid sampling then see the whole staircase
    fpr, tpr, _ = roc_curve(is_ood, oodness, drop_intermediate=False)
    return fpr, tpr


def ood_metrics(scores_in, scores_out) -> dict[str, float]:
    """The metrics of :data:`METRIC_NAMES` for ID scores vs OOD scores (higher = more ID)."""
    is_ood, oodness = _ranked(scores_in, scores_out)
    fpr, tpr = _roc(is_ood, oodness)
    # tpr ends at 1, so some index reaches the level
    fpr95 = float(fpr[int(np.argmax(tpr >= TPR_LEVEL))])
    return {
        "auroc": float(roc_auc_score(is_ood, oodness)),
        "fpr95": fpr95,
        "tnr95": 1.0 - fpr95,
        "detection_acc": float(np.max(0.5 * (tpr + 1.0 - fpr))),
        "aupr_in": float(average_precision_score(1 - is_ood, -oodness)),
        "aupr_out": float(average_precision_score(is_ood, oodness)),
    }


def roc_on_grid(scores_in, scores_out, fpr_grid=FPR_GRID) -> np.ndarray:
    """TPR (share of OOD flagged) at each FPR of ``fpr_grid``: the best TPR at FPR <= it.

    The ROC is a staircase; at a grid value ``g`` we take the highest TPR among its points
    with FPR <= ``g`` (no interpolation), so the sampled curve is non-decreasing in ``g``,
    and it is 1 at ``g = 1``. Averaging these over seeds is vertical ROC averaging.
    """
    grid = np.asarray(fpr_grid, dtype=np.float64)
    if grid.ndim != 1 or grid.size == 0:
        raise ValueError(f"fpr_grid: expected a non-empty 1-D array, got shape {grid.shape}")
    if not np.all(np.isfinite(grid)) or grid.min() < 0.0 or grid.max() > 1.0:
        raise ValueError("fpr_grid: values must lie in [0, 1]")
    fpr, tpr = _roc(*_ranked(scores_in, scores_out))
    # fpr and tpr are non-decreasing along the curve and fpr[0] == 0, so the last point with
    # fpr <= g exists and carries the highest TPR among those points
    last = np.searchsorted(fpr, grid + _GRID_SLACK, side="right") - 1
    return tpr[last].astype(np.float64)
