"""OOD metrics under the openood-v1.5 and odin rules against second implementations written
here from the official formulas: OpenOOD v1.5 (openood/evaluators/metrics.py,
``auc_and_fpr_recall``) by explicit PR/ROC points and trapezoids, ODIN
(code/calMetric.py) by its threshold loops, on tied and untied scores (≤ 1e-9)."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest

from adaptivemix.ood.calmetric import ODIN_RULE, ODIN_STEPS, odin_grid, odin_metrics
from adaptivemix.ood.metrics import (
    HARNESS_RULE,
    METRIC_NAMES,
    OPENOOD_RULE,
    metric_rule,
    ood_metrics,
)

TOL = 1e-9


def _scores(seed: int, tied: bool, n_in: int = 150, n_out: int = 110):
    rng = np.random.default_rng(seed)
    s_in = rng.normal(1.0, 1.0, n_in)
    s_out = rng.normal(0.0, 1.2, n_out)
    if tied:  # a coarse lattice: many ties within and across the two sets
        s_in, s_out = np.round(s_in * 4) / 4, np.round(s_out * 4) / 4
    return s_in, s_out


# --- OpenOOD v1.5: trapezoid area under the PR points, ROC with collinear points dropped --


def pr_trapezoid(positives: np.ndarray, negatives: np.ndarray) -> float:
    """Area by trapezoids through (recall, precision) at every distinct score, highest
    first (a score's ties make one point), and the point (recall 0, precision 1)."""
    values = np.concatenate([positives, negatives])
    points = [(0.0, 1.0)]
    for t in np.unique(values)[::-1]:
        tp, fp = np.sum(positives >= t), np.sum(negatives >= t)
        points.append((tp / len(positives), tp / (tp + fp)))
    return sum((r1 - r0) * (p0 + p1) / 2 for (r0, p0), (r1, p1) in pairwise(points))


def roc_points_dropped(s_in: np.ndarray, s_out: np.ndarray) -> list[tuple[float, float]]:
    """(FPR, TPR) ranking by -score, one point per distinct score, then every point whose
    count steps to its neighbours are equal (a straight run) dropped, then (0, 0) first."""
    oodness_in, oodness_out = -s_in, -s_out
    counts = [
        (np.sum(oodness_in >= t), np.sum(oodness_out >= t))
        for t in np.unique(np.concatenate([oodness_in, oodness_out]))[::-1]
    ]
    kept = [
        c
        for i, c in enumerate(counts)
        if i in (0, len(counts) - 1)
        or np.subtract(counts[i + 1], c).tolist() != np.subtract(c, counts[i - 1]).tolist()
    ]
    return [(0.0, 0.0)] + [(fp / len(s_in), tp / len(s_out)) for fp, tp in kept]


def openood_reference(s_in: np.ndarray, s_out: np.ndarray) -> dict[str, float]:
    points = roc_points_dropped(s_in, s_out)
    fpr95 = next(f for f, t in points if t >= 0.95)
    auroc = sum((f1 - f0) * (t0 + t1) / 2 for (f0, t0), (f1, t1) in pairwise(points))
    return {
        "auroc": auroc,
        "fpr95": fpr95,
        "tnr95": 1 - fpr95,
        "aupr_in": pr_trapezoid(s_in, s_out),  # ID positive, ranked by score
        "aupr_out": pr_trapezoid(-s_out, -s_in),  # OOD positive, ranked by -score
    }


def test_benchmarks_map_to_their_rules():
    assert metric_rule("openood-v1.5") == OPENOOD_RULE == "openood-v1.5"
    assert metric_rule("odin") == ODIN_RULE == "odin-calmetric"
    assert metric_rule("embedded") == HARNESS_RULE and metric_rule("other") == HARNESS_RULE
    with pytest.raises(ValueError, match=r"rule: got 'openood'; expected one of"):
        ood_metrics([1.0], [0.0], "openood")


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_openood_rule_equals_openood_formulas(seed, tied):
    s_in, s_out = _scores(seed, tied)
    got = ood_metrics(s_in, s_out, OPENOOD_RULE)
    assert list(got) == list(METRIC_NAMES)
    for name, want in openood_reference(s_in, s_out).items():
        assert got[name] == pytest.approx(want, abs=TOL), name
    # detection accuracy is not an OpenOOD metric: the harness rule's
    harness = ood_metrics(s_in, s_out, HARNESS_RULE)
    assert got["detection_acc"] == harness["detection_acc"]


def test_openood_aupr_is_not_average_precision_on_a_hand_case():
    # ID 3, 1; OOD 2 (higher = more ID). AUPR-in (ID positive, by score): points
    # (0, 1), (1/2, 1) at t = 3, (1/2, 1/2) at t = 2, (1, 2/3) at t = 1 ->
    # trapezoids 1/2 * 1 + 0 + 1/2 * (1/2 + 2/3) / 2 = 1/2 + 7/24 = 19/24.
    # Average precision is 1/2 * 1 + 1/2 * 2/3 = 5/6.
    s_in, s_out = np.array([3.0, 1.0]), np.array([2.0])
    assert ood_metrics(s_in, s_out, OPENOOD_RULE)["aupr_in"] == pytest.approx(19 / 24, abs=TOL)
    assert ood_metrics(s_in, s_out, HARNESS_RULE)["aupr_in"] == pytest.approx(5 / 6, abs=TOL)


def test_openood_fpr95_reads_the_far_end_of_a_tied_diagonal_run():
    # 20 OOD, 20 ID. 18 OOD lie below all ID; then two scores each hold one OOD and one ID
    # (a diagonal run (0, .90) -> (.05, .95) -> (.10, 1.0)). sklearn's default
    # drop_intermediate (OpenOOD's call) drops the middle point: FPR95 = 0.10; the
    # harness rule keeps it: 0.05.
    s_out = np.concatenate([np.arange(18.0), [100.0, 101.0]])
    s_in = np.concatenate([[100.0, 101.0], np.arange(200.0, 218.0)])
    assert ood_metrics(s_in, s_out, OPENOOD_RULE)["fpr95"] == pytest.approx(0.10, abs=TOL)
    assert ood_metrics(s_in, s_out, HARNESS_RULE)["fpr95"] == pytest.approx(0.05, abs=TOL)


# --- ODIN calMetric: loops over the threshold grid, as calMetric.py writes them ----------


def odin_reference(s_in, s_out, start, end, steps) -> dict[str, float]:
    """calMetric.py's tpr95, detection, auroc (baseline branch), auprIn and auprOut loops,
    X = ID, Y = OOD scores, shares by np.sum / len; undefined results NaN."""
    x, y = np.asarray(s_in, float), np.asarray(s_out, float)
    gap = (end - start) / steps
    fpr_sum, total, error = 0.0, 0.0, 1.0
    auroc, fpr_prev = 0.0, 1.0
    for delta in np.arange(start, end, gap):
        tpr = np.sum(x >= delta) / float(len(x))
        fpr = np.sum(y > delta) / float(len(y))
        if 0.9495 <= tpr <= 0.9505:
            fpr_sum, total = fpr_sum + fpr, total + 1
        error = min(error, (np.sum(x < delta) / float(len(x)) + fpr) / 2.0)
        auroc += (fpr_prev - fpr) * tpr
        fpr_prev = fpr
    auroc += fpr * tpr
    aupr_in, recall_prev, last = 0.0, 1.0, None
    for delta in np.arange(start, end, gap):
        tp = np.sum(x >= delta) / float(len(x))
        fp = np.sum(y >= delta) / float(len(y))
        if tp + fp == 0:
            continue
        precision = tp / (tp + fp)
        aupr_in += (recall_prev - tp) * precision
        recall_prev, last = tp, tp * precision
    aupr_in = aupr_in + last if last is not None else np.nan
    aupr_out, recall_prev, last = 0.0, 1.0, None
    for delta in np.arange(end, start, -gap):
        fp = np.sum(x < delta) / float(len(x))
        tp = np.sum(y < delta) / float(len(y))
        if tp + fp == 0:
            break
        precision = tp / (tp + fp)
        aupr_out += (recall_prev - tp) * precision
        recall_prev, last = tp, tp * precision
    aupr_out = aupr_out + last if last is not None else np.nan
    fpr95 = fpr_sum / total if total else np.nan
    return {
        "auroc": auroc,
        "fpr95": fpr95,
        "tnr95": 1 - fpr95,
        "detection_acc": 1 - error,
        "aupr_in": aupr_in,
        "aupr_out": aupr_out,
    }


def _assert_close(got: dict, want: dict) -> None:
    assert list(got) == list(METRIC_NAMES)
    for name in METRIC_NAMES:
        if np.isnan(want[name]):
            assert np.isnan(got[name]), name
        else:
            assert got[name] == pytest.approx(want[name], abs=TOL), name


@pytest.mark.parametrize("tied", [False, True])
@pytest.mark.parametrize("seed", [0, 1])
def test_odin_rule_equals_calmetric_loops_on_observed_range(seed, tied):
    # 2,000 ID scores: a TPR step of 1/2000 = 0.0005, so the [0.9495, 0.9505] window holds
    # grid points; the grid is [min, max) of the pooled scores
    s_in, s_out = _scores(seed, tied, n_in=2000, n_out=900)
    pooled = np.concatenate([s_in, s_out])
    steps = 4000
    want = odin_reference(s_in, s_out, pooled.min(), pooled.max(), steps)
    assert tied or not np.isnan(want["fpr95"])  # tied: the TPR jumps over the window
    _assert_close(odin_metrics(s_in, s_out, steps=steps), want)


def test_odin_rule_with_odins_cifar10_bounds_and_thresholds_on_scores():
    # max-softmax-like scores in [0.1, 1] on a 1/64 lattice, ODIN's CIFAR-10 baseline bounds
    # [0.1, 1): many scores sit exactly on grid thresholds, where >, >= and < differ
    rng = np.random.default_rng(7)
    s_in = np.clip(np.round(rng.beta(5, 1, 2000) * 64) / 64, 0.1, 1.0)
    s_out = np.clip(np.round(rng.beta(2, 2, 1000) * 64) / 64, 0.1, 1.0)
    want = odin_reference(s_in, s_out, 0.1, 1.0, 900)  # gap 0.001
    _assert_close(odin_metrics(s_in, s_out, bounds=(0.1, 1.0), steps=900), want)
    lattice = (0.0, 1.0)  # gap 1/64: every threshold is a lattice value
    want = odin_reference(s_in, s_out, *lattice, 64)
    _assert_close(odin_metrics(s_in, s_out, bounds=lattice, steps=64), want)


def test_odin_rule_through_ood_metrics_uses_the_default_grid():
    s_in, s_out = _scores(3, False, n_in=300, n_out=200)
    got = ood_metrics(s_in, s_out, ODIN_RULE)
    assert got == odin_metrics(s_in, s_out)
    rising, falling = odin_grid(s_in, s_out)
    pooled = np.concatenate([s_in, s_out])
    gap = (pooled.max() - pooled.min()) / ODIN_STEPS
    assert ODIN_STEPS == 100_000
    np.testing.assert_array_equal(rising, np.arange(pooled.min(), pooled.max(), gap))
    np.testing.assert_array_equal(falling, np.arange(pooled.max(), pooled.min(), -gap))


def test_odin_detection_error_and_fpr95_by_hand():
    # ID 0.7 (x20), 0.8 (x20), 0.9 (x40); OOD 0.2, 0.65; grid [0, 1) in steps of 1/8.
    # (share ID < δ + share OOD > δ) / 2: δ <= 1/8: (0 + 1) / 2; δ = 1/4 ... 5/8: (0 + 1/2) / 2;
    # δ = 3/4: (1/4 + 0) / 2 = 0.125 (the minimum); δ = 7/8: (1/2 + 0) / 2.
    s_in = np.repeat([0.7, 0.8, 0.9], [20, 20, 40])
    s_out = np.array([0.2, 0.65])
    got = odin_metrics(s_in, s_out, bounds=(0.0, 1.0), steps=8)
    assert got["detection_acc"] == pytest.approx(1 - 0.125, abs=TOL)
    # ID TPR (share >= δ) takes 1, 3/4 and 1/2 only: no grid point in [0.9495, 0.9505]
    assert np.isnan(got["fpr95"]) and np.isnan(got["tnr95"])
