"""OOD detection metrics, with OOD as the positive class, by the rule of each benchmark.

Detector scores are "higher = more in-distribution", so every curve ranks samples by
``-score``: a threshold ``t`` flags a sample as OOD when ``-score >= t``. Every rule returns
the metrics of :data:`METRIC_NAMES`; which formula each uses depends on the benchmark
(protocol) of the OOD set, :func:`metric_rule`, so a number is computed as the paper it is
compared with computes it:

``harness`` (every benchmark without a rule of its own, e.g. the embedded sets):

- ``auroc``: area under the ROC curve (TPR = OOD flagged, FPR = ID flagged); the probability
  that a random OOD sample scores below a random ID sample, ties counting one half;
- ``fpr95``: the FPR at the first ROC point whose TPR reaches 0.95, on the ROC with every
  distinct threshold; ``tnr95`` is ``1 - fpr95``;
- ``detection_acc``: the best balanced accuracy over thresholds, ``max 0.5 * (tpr + 1 -
  fpr)`` over ROC points (ODIN's detection accuracy, read off the exact ROC);
- ``aupr_in`` / ``aupr_out``: *average precision* (``sklearn.metrics.average_precision_score``,
  a step sum, not an area) with ID / OOD as the positive class.

``openood-v1.5`` (OpenOOD v1.5, ``openood/evaluators/metrics.py``, ``auc_and_fpr_recall``):

- ``auroc``: ``auc(fpr, tpr)`` of ``roc_curve(is_ood, -score)``;
- ``fpr95``: ``fpr[argmax(tpr >= 0.95)]`` on that curve *with* sklearn's default
  ``drop_intermediate=True`` (collinear points dropped: on a diagonal run of tied ID/OOD
  scores this is the run's far end, where the harness rule reads its first point);
- ``aupr_in``: ``auc(recall, precision)`` of ``precision_recall_curve(1 - is_ood, score)``,
  ``aupr_out`` likewise of ``precision_recall_curve(is_ood, -score)``: the trapezoid area
  under the PR points (one per distinct score, ties one point, plus recall 0 / precision
  1), not average precision;
- ``detection_acc``: not reported by OpenOOD v1.5; the harness rule's.

``odin-calmetric`` (ODIN, ``code/calMetric.py``): a threshold sweep over a uniform grid,
:mod:`adaptivemix.ood.calmetric`; its ``fpr95`` takes ID as the positive class (OOD accepted
at 95% of ID accepted), as ODIN's Table 2 reports it.

:func:`roc_on_grid` samples a ROC curve at fixed FPR values so curves of several seeds can
be averaged vertically (the full ROC, whatever the rule). Example::

    values = ood_metrics(scores_id, scores_ood, metric_rule("openood-v1.5"))
    tpr = roc_on_grid(scores_id, scores_ood, FPR_GRID)  # (101,), monotone, tpr[-1] == 1
"""

from __future__ import annotations

import numpy as np
from sklearn.metrics import (
    auc,
    average_precision_score,
    precision_recall_curve,
    roc_auc_score,
    roc_curve,
)

from adaptivemix.ood.calmetric import ODIN_RULE, odin_metrics

METRIC_NAMES = ("auroc", "fpr95", "tnr95", "detection_acc", "aupr_in", "aupr_out")
HARNESS_RULE = "harness"
OPENOOD_RULE = "openood-v1.5"
#: an OOD set's benchmark (its protocol) -> the rule of its metrics; others: HARNESS_RULE
BENCHMARK_RULES = {"openood-v1.5": OPENOOD_RULE, "odin": ODIN_RULE}
RULES = (HARNESS_RULE, OPENOOD_RULE, ODIN_RULE)
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


def metric_rule(benchmark: str) -> str:
    """The rule computing the metrics of an OOD set of ``benchmark`` (see the module doc)."""
    return BENCHMARK_RULES.get(benchmark, HARNESS_RULE)


def ood_metrics(scores_in, scores_out, rule: str = HARNESS_RULE) -> dict[str, float]:
    """The metrics of :data:`METRIC_NAMES` for ID vs OOD scores (higher = more ID) by ``rule``."""
    if rule not in _RULES:
        raise ValueError(f"rule: got {rule!r}; expected one of {list(RULES)}")
    values = _RULES[rule](*_ranked(scores_in, scores_out))
    return {name: float(values[name]) for name in METRIC_NAMES}


def _harness_metrics(is_ood: np.ndarray, oodness: np.ndarray) -> dict[str, float]:
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


def _openood_metrics(is_ood: np.ndarray, oodness: np.ndarray) -> dict[str, float]:
    """OpenOOD v1.5's ``auc_and_fpr_recall`` (conf = ``-oodness``), the same sklearn calls."""
    fpr, tpr, _ = roc_curve(is_ood, oodness)  # drop_intermediate=True, sklearn's default
    fpr95 = float(fpr[int(np.argmax(tpr >= TPR_LEVEL))])
    precision_in, recall_in, _ = precision_recall_curve(1 - is_ood, -oodness)
    precision_out, recall_out, _ = precision_recall_curve(is_ood, oodness)
    return _harness_metrics(is_ood, oodness) | {
        "auroc": float(auc(fpr, tpr)),
        "fpr95": fpr95,
        "tnr95": 1.0 - fpr95,
        "aupr_in": float(auc(recall_in, precision_in)),
        "aupr_out": float(auc(recall_out, precision_out)),
    }


def _odin_metrics(is_ood: np.ndarray, oodness: np.ndarray) -> dict[str, float]:
    return odin_metrics(-oodness[is_ood == 0], -oodness[is_ood == 1])


_RULES = {
    HARNESS_RULE: _harness_metrics,
    OPENOOD_RULE: _openood_metrics,
    ODIN_RULE: _odin_metrics,
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
