"""OOD metrics against values computed independently (pair counts, threshold sweeps, hand
derivations), never by the same scikit-learn calls the module makes."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from adaptivemix.ood.metrics import FPR_GRID, METRIC_NAMES, ood_metrics, roc_on_grid

# A hand-made case: 20 OOD scores 1, 2, ..., 20 and 20 ID scores 10.5, 19.5, 19.6, 30, ..., 46.
# A threshold t flags a sample as OOD when its score <= t (OOD ranks by -score).
#   t = 18: TPR 18/20 = 0.90 (not yet 0.95), FPR 1/20 (10.5)
#   t = 19: TPR 19/20 = 0.95 (first reaching 0.95), FPR 1/20 -> fpr95 = 0.05, tnr95 = 0.95
#   detection accuracy 0.5 * (TPR + 1 - FPR) over the thresholds:
#     t = 10: 0.5 * (0.50 + 1.00) = 0.750     t = 10.5: 0.5 * (0.50 + 0.95) = 0.725
#     t = 19: 0.5 * (0.95 + 0.95) = 0.950     t = 19.5: 0.5 * (0.95 + 0.90) = 0.925
#     t = 19.6: 0.5 * (0.95 + 0.85) = 0.900   t = 20: 0.5 * (1.00 + 0.85) = 0.925
#     larger t only raise the FPR, smaller t lower the TPR -> detection_acc = 0.95
#   AUROC = P(OOD score < ID score): ID 10.5 beats 10 OOD, 19.5 and 19.6 beat 19 each, the 17
#     others beat all 20 -> (10 + 19 + 19 + 17 * 20) / 400 = 388 / 400 = 0.97
#   ROC on a grid (best TPR at FPR <= g): g = 0 -> 10/20 (OOD 1..10 lie below every ID
#     score); g = 0.04 -> 0.5; g = 0.05 and 0.1 -> 0.95; g = 0.15 -> 1.0
HAND_OOD = np.arange(1.0, 21.0)
HAND_ID = np.concatenate([[10.5, 19.5, 19.6], np.arange(30.0, 47.0)])


def brute_auroc(s_in: np.ndarray, s_out: np.ndarray) -> float:
    """P(random OOD score < random ID score) with ties counting 1/2, over all pairs."""
    below = (s_out[:, None] < s_in[None, :]).sum()
    ties = (s_out[:, None] == s_in[None, :]).sum()
    return float((below + 0.5 * ties) / (len(s_in) * len(s_out)))


def sweep(s_in: np.ndarray, s_out: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(FPR, TPR) at every threshold 'flag score <= t', t from -inf over all distinct scores."""
    thresholds = np.concatenate([[-np.inf], np.unique(np.concatenate([s_in, s_out]))])
    fpr = np.array([(s_in <= t).mean() for t in thresholds])
    tpr = np.array([(s_out <= t).mean() for t in thresholds])
    return fpr, tpr


def step_ap(positives: np.ndarray, negatives: np.ndarray) -> float:
    """Σ precision × Δrecall down the ranking by decreasing value (no ties assumed)."""
    values = np.concatenate([positives, negatives])
    is_pos = np.concatenate([np.ones(len(positives)), np.zeros(len(negatives))])
    order = np.argsort(-values, kind="stable")
    total, hits = 0.0, 0
    for rank, i in enumerate(order, start=1):
        if is_pos[i]:
            hits += 1
            total += (hits / rank) * (1.0 / len(positives))
    return total


def test_metric_names_and_grid():
    assert METRIC_NAMES == ("auroc", "fpr95", "tnr95", "detection_acc", "aupr_in", "aupr_out")
    assert list(ood_metrics(HAND_ID, HAND_OOD)) == list(METRIC_NAMES)
    assert len(FPR_GRID) == 101 and FPR_GRID[0] == 0.0 and FPR_GRID[-1] == 1.0


def test_hand_made_case():
    m = ood_metrics(HAND_ID, HAND_OOD)
    assert m["fpr95"] == pytest.approx(0.05)
    assert m["tnr95"] == pytest.approx(0.95)
    assert m["detection_acc"] == pytest.approx(0.95)
    assert m["auroc"] == pytest.approx(0.97)
    assert all(isinstance(v, float) for v in m.values())


def test_hand_made_roc_on_grid():
    grid = np.array([0.0, 0.04, 0.05, 0.1, 0.15, 1.0])
    tpr = roc_on_grid(HAND_ID, HAND_OOD, grid)
    np.testing.assert_allclose(tpr, [0.5, 0.5, 0.95, 0.95, 1.0, 1.0])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_auroc_against_pair_count_with_ties(seed):
    rng = np.random.default_rng(seed)
    s_in = rng.integers(0, 8, size=57).astype(float)  # few distinct values: many ties
    s_out = rng.integers(-3, 6, size=41).astype(float)
    expected = brute_auroc(s_in, s_out)
    assert 0.0 < expected < 1.0
    assert ood_metrics(s_in, s_out)["auroc"] == pytest.approx(expected, abs=1e-12)
    labels = np.r_[np.zeros(len(s_in)), np.ones(len(s_out))]
    assert expected == pytest.approx(roc_auc_score(labels, -np.r_[s_in, s_out]), abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_fpr95_and_detection_acc_against_threshold_sweep(seed):
    rng = np.random.default_rng(seed)
    s_in = np.round(rng.normal(1.0, 1.0, size=200), 1)  # rounded: ties across the two sets
    s_out = np.round(rng.normal(-1.0, 1.0, size=150), 1)
    fpr, tpr = sweep(s_in, s_out)
    first = np.flatnonzero(tpr >= 0.95)[0]
    m = ood_metrics(s_in, s_out)
    assert m["fpr95"] == pytest.approx(fpr[first], abs=1e-12)
    assert m["tnr95"] == pytest.approx(1.0 - fpr[first], abs=1e-12)
    assert m["detection_acc"] == pytest.approx(np.max(0.5 * (tpr + 1 - fpr)), abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_aupr_against_step_sum(seed):
    rng = np.random.default_rng(seed)
    s_in = rng.normal(0.8, 1.0, size=60)  # continuous: no ties
    s_out = rng.normal(-0.3, 1.2, size=45)
    m = ood_metrics(s_in, s_out)
    assert m["aupr_in"] == pytest.approx(step_ap(s_in, s_out), abs=1e-12)
    assert m["aupr_out"] == pytest.approx(step_ap(-s_out, -s_in), abs=1e-12)
    assert m["aupr_in"] != pytest.approx(m["aupr_out"], abs=1e-6)


def test_perfect_and_swapped_separation():
    s_in, s_out = np.array([5.0, 6.0, 7.0, 8.0]), np.array([-1.0, 0.0, 1.0])
    m = ood_metrics(s_in, s_out)
    assert m["auroc"] == 1.0 and m["fpr95"] == 0.0 and m["tnr95"] == 1.0
    assert m["detection_acc"] == 1.0 and m["aupr_in"] == 1.0 and m["aupr_out"] == 1.0
    swapped = ood_metrics(s_out, s_in)
    assert swapped["auroc"] == 0.0 and swapped["fpr95"] == 1.0
    assert swapped["detection_acc"] == 0.5  # only the trivial all-ID / all-OOD thresholds


@pytest.mark.parametrize("seed", [0, 3])
def test_roc_on_grid_monotone_with_endpoints(seed):
    rng = np.random.default_rng(seed)
    s_in = np.round(rng.normal(0.5, 1.0, size=90), 1)
    s_out = np.round(rng.normal(-0.5, 1.0, size=70), 1)
    tpr = roc_on_grid(s_in, s_out, FPR_GRID)
    assert tpr.shape == FPR_GRID.shape and tpr.dtype == np.float64
    assert np.all(np.diff(tpr) >= 0) and tpr[-1] == 1.0
    # independent: best TPR among sweep points with FPR <= g (counts avoid rounding issues)
    fpr, sweep_tpr = sweep(s_in, s_out)
    for g, value in zip(FPR_GRID, tpr, strict=True):
        allowed = np.round(fpr * len(s_in)) <= np.round(g * len(s_in), 9)
        assert value == pytest.approx(sweep_tpr[allowed].max(), abs=1e-12)
    assert tpr[0] == pytest.approx(np.mean(s_out < s_in.min()))


def test_grid_value_equal_to_a_curve_fpr_is_not_missed():
    # 100 ID scores: FPR steps of 1/100 land exactly on grid values like 0.07
    s_in = np.arange(100.0)
    s_out = np.arange(100.0) - 0.5  # each OOD score just below one ID score
    tpr = roc_on_grid(s_in, s_out, FPR_GRID)
    # the best point with FPR k/100 is the threshold t = k - 0.5 (an OOD score): it flags the
    # ID scores 0 .. k - 1 (FPR k/100) and the OOD scores -0.5 .. k - 0.5 (k + 1 of 100)
    np.testing.assert_allclose(tpr, np.minimum(np.arange(101) + 1, 100) / 100)
    # a grid value a rounding error below 7/100 still counts as FPR 7/100
    assert roc_on_grid(s_in, s_out, [0.07 - 1e-13])[0] == pytest.approx(0.08)


@pytest.mark.parametrize(
    ("s_in", "s_out", "message"),
    [
        ([], [1.0], "scores_in: no scores"),
        ([1.0], [], "scores_out: no scores"),
        ([1.0, np.nan, 2.0], [0.0], "scores_in: 1 of 3 scores are not finite"),
        ([1.0], [np.nan, np.inf, 0.0, 1.0, 2.0], "scores_out: 2 of 5 scores are not finite"),
    ],
)
def test_bad_scores_raise(s_in, s_out, message):
    with pytest.raises(ValueError, match=message):
        ood_metrics(s_in, s_out)
    with pytest.raises(ValueError, match=message):
        roc_on_grid(s_in, s_out, FPR_GRID)


def test_bad_grid_raises():
    with pytest.raises(ValueError, match="fpr_grid"):
        roc_on_grid([1.0], [0.0], [0.0, 1.5])
