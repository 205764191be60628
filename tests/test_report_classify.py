"""Classification and OOD reports: paper-layout tables and ROC figures from run files.

The run files are written here by hand (the format of ``metrics.json`` / ``ood.json``) and
the expected cells worked out by hand, not with the code under test.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from adaptivemix.io import write_json
from adaptivemix.report.classify import aggregate_classify, collect_ood, ood_summary

GRID = [0.0, 0.5, 1.0]


def write_cls_run(root: Path, method: str, seed: int, accs: dict, status="ok", label="p") -> Path:
    run_dir = root / "runs/classify/digits-0to5/wrn-10-2" / method / f"seed{seed}"
    run_dir.mkdir(parents=True)
    proto = {"label": label, "split": "test", "n_test": 216}
    record = {
        "task": "classify", "dataset": "digits-0to5", "arch": "wrn-10-2", "method": method,
        "seed": seed, "status": status, "diverged_at_step": None, "steps": 10,
        "train_seconds": 1.0, "metrics": accs, "protocol": proto,
        "protocol_fingerprint": label,
    }  # fmt: skip
    return write_json(run_dir / "metrics.json", record)


def write_ood_run(root: Path, method: str, seed: int, auroc: dict, tpr=(0.0, 0.5, 1.0)) -> Path:
    """auroc: OOD set -> value (fraction); the other metrics are derived from it simply."""
    run_dir = root / "runs/classify/digits-0to5/wrn-10-2" / method / f"seed{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for name, value in auroc.items():
        group = "near" if name == "digits-6to9" else "far"
        proto = {"label": f"embedded: {name}", "benchmark": "embedded", "group": group}
        metrics = {"auroc": value, "fpr95": 1 - value, "tnr95": value, "detection_acc": value,
                   "aupr_in": value, "aupr_out": value}  # fmt: skip
        results.append({"detector": "msp", "ood_set": name, "protocol": proto,
                        "protocol_fingerprint": name, "metrics": metrics,
                        "roc_tpr": list(tpr)})  # fmt: skip
    record = {"task": "ood", "dataset": "digits-0to5", "arch": "wrn-10-2", "method": method,
              "seed": seed, "status": "ok", "roc_fpr_grid": GRID, "results": results}  # fmt: skip
    return write_json(run_dir / "ood.json", record)


@pytest.fixture
def runs(tmp_path):
    metrics = [
        write_cls_run(tmp_path, "erm", 0, {"clean_acc": 0.98, "fgsm_acc": 0.5, "val_acc": 0.99}),
        write_cls_run(tmp_path, "erm", 1, {"clean_acc": 0.96, "fgsm_acc": 0.3, "val_acc": 0.97}),
        write_cls_run(
            tmp_path, "adaptivemix", 0, {"clean_acc": 0.97, "fgsm_acc": 0.6, "val_acc": 0.98}
        ),
    ]
    ood = [
        write_ood_run(tmp_path, "erm", 0, {"digits-6to9": 0.80, "noise": 0.90}, (0.0, 0.4, 1.0)),
        write_ood_run(tmp_path, "erm", 1, {"digits-6to9": 0.70, "noise": 1.00}, (0.0, 0.6, 1.0)),
        write_ood_run(tmp_path, "adaptivemix", 0, {"digits-6to9": 0.85, "noise": 0.95}),
    ]
    return tmp_path, metrics, ood


def test_accuracy_table_in_percent_with_attacks_in_order(runs):
    root, metrics, ood = runs
    aggregate_classify(metrics, ood, root / "tables", root / "figures", ["adaptivemix", "erm"])
    table = pd.read_csv(root / "tables/classify_digits-0to5.csv")
    assert list(table["method"]) == ["adaptivemix", "erm"]
    erm = table[table["method"] == "erm"].iloc[0]
    assert erm["clean_acc_mean"] == pytest.approx(97.0)  # (98 + 96) / 2
    assert erm["fgsm_acc_mean"] == pytest.approx(40.0)
    assert erm["clean_acc_std"] == pytest.approx(2**0.5)  # sample std of 98, 96
    md = (root / "tables/classify_digits-0to5.md").read_text()
    header = md.splitlines()[0]
    assert header.index("clean_acc") < header.index("fgsm_acc") < header.index("val_acc")
    assert "97.00 ± 1.41" in md and "97.00 (single seed)" in md
    assert md.splitlines()[2].rstrip(" |").endswith("| p")  # the protocol's own label


def test_ood_table_pivots_sets_with_near_first_and_hand_means(runs):
    root, metrics, ood = runs
    aggregate_classify(metrics, ood, root / "tables", root / "figures")
    table = pd.read_csv(root / "tables/ood_digits-0to5.csv")
    row = table[(table["method"] == "erm") & (table["ood_set"] == "digits-6to9")].iloc[0]
    assert row["auroc_mean"] == pytest.approx(75.0) and row["n_seeds"] == 2
    assert row["fpr95_mean"] == pytest.approx(25.0)
    md = (root / "tables/ood_digits-0to5.md").read_text()
    auroc_block = md.split("### AUROC")[1].split("###")[0]
    assert auroc_block.index("digits-6to9") < auroc_block.index("noise")
    assert "75.00 ± 7.07" in auroc_block and "95.00 ± 7.07" in auroc_block
    assert "85.00 (single seed)" in auroc_block
    assert "FPR at 95% TPR" in md and "embedded: noise" in md


def test_roc_figure_plots_the_mean_tpr_over_seeds(runs):
    root, metrics, ood = runs
    aggregate_classify(metrics, ood, root / "tables", root / "figures")
    data = pd.read_csv(root / "figures/roc_digits-0to5.csv")
    erm = data[(data["method"] == "erm") & (data["ood_set"] == "noise")]
    assert list(erm["tpr_mean"]) == pytest.approx([0.0, 0.5, 1.0])  # (0.4 + 0.6) / 2 at 0.5
    assert set(erm["n_seeds"]) == {2}
    with Image.open(root / "figures/roc_digits-0to5.png") as image:
        assert image.width > 200 and image.height > 100
    assert (root / "figures/roc_digits-0to5.pdf").stat().st_size > 0


def test_mixed_protocols_are_refused(tmp_path):
    metrics = [
        write_cls_run(tmp_path, "erm", 0, {"clean_acc": 0.9}, label="eps=0.1"),
        write_cls_run(tmp_path, "erm", 1, {"clean_acc": 0.9}, label="eps=0.2"),
    ]
    with pytest.raises(ValueError, match="different protocols"):
        aggregate_classify(metrics, [], tmp_path / "t", tmp_path / "f")


def test_ood_results_of_different_protocols_are_refused(runs):
    root, _, ood = runs
    frame, _ = collect_ood(ood)
    assert len(frame) == 6 and frame["auroc"].max() == pytest.approx(100.0)
    other = write_ood_run(root / "other", "cutmix", 0, {"noise": 0.5})
    record = other.read_text().replace('"protocol_fingerprint": "noise"',
                                       '"protocol_fingerprint": "noise-2"')  # fmt: skip
    other.write_text(record)
    with pytest.raises(ValueError, match="different protocols"):
        aggregate_classify([], [*ood, other], root / "t", root / "f")


def test_diverged_runs_are_counted_not_averaged(runs):
    root, metrics, _ = runs
    bad = write_cls_run(root / "x", "cutmix", 0, {"clean_acc": None}, status="diverged")
    aggregate_classify([*metrics, bad], [], root / "tables", root / "figures")
    table = pd.read_csv(root / "tables/classify_summary.csv")
    cutmix = table[table["method"] == "cutmix"].iloc[0]
    assert cutmix["n_diverged"] == 1 and cutmix["n_seeds"] == 0
    frame, _ = collect_ood([])
    assert frame.empty and ood_summary is not None
