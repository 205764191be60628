"""The selection_bias table from hand-written ``metrics.json`` records, cells worked by hand."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from adaptivemix.io import write_json
from adaptivemix.report.classify import aggregate_classify


def at(epoch: int, val: float, test: float) -> dict:
    return {"epoch": epoch, "step": 10 * epoch, "val_acc": val, "test_acc": test}


def write_run(root: Path, method: str, seed: int, by_val, best, status="ok", protocol="val"):
    run_dir = root / "runs/classify/digits-0to5/wrn-10-1" / method / f"seed{seed}"
    run_dir.mkdir(parents=True)
    selection = None
    if by_val is not None:
        selection = {
            "protocol": protocol, "optimistic": protocol == "test", "n_evaluations": 4,
            "val_selected": by_val, "best_test": best,
            "test_optimism": best["test_acc"] - by_val["test_acc"],
        }  # fmt: skip
    record = {
        "task": "classify", "dataset": "digits-0to5", "arch": "wrn-10-1", "method": method,
        "seed": seed, "status": status, "diverged_at_step": None, "steps": 40,
        "train_seconds": 1.0, "protocol": {"label": "p"}, "protocol_fingerprint": "p",
        "metrics": {"clean_acc": 0.9, "val_acc": 0.9}, "selection": selection,
    }  # fmt: skip
    return write_json(run_dir / "metrics.json", record)


@pytest.fixture
def tables(tmp_path):
    paths = [
        write_run(tmp_path, "erm", 0, at(3, 0.97, 0.90), at(4, 0.96, 0.95)),
        write_run(tmp_path, "erm", 1, at(2, 0.99, 0.80), at(2, 0.99, 0.80)),
        write_run(tmp_path, "adaptivemix", 0, at(4, 0.98, 0.85), at(1, 0.90, 0.91)),
        write_run(tmp_path, "adaptivemix", 1, None, None, status="diverged"),
        write_run(tmp_path, "mixup", 0, at(1, 0.9, 0.8), at(2, 0.8, 0.9), protocol="test"),
    ]
    out = tmp_path / "tables"
    aggregate_classify(paths, [], out, tmp_path / "figures", ["erm", "adaptivemix", "mixup"])
    return out


def test_per_method_cells_are_hand_means(tables):
    data = pd.read_csv(tables / "selection_bias.csv")
    summary = data[data["row"] == "mean over seeds"].set_index("method")
    # erm: test at the val choice 90, 80 -> 85 ± 7.0711; best 95, 80 -> 87.5 ± 10.6066;
    # optimism 5, 0 -> 2.5 ± 3.5355 percentage points
    assert summary.loc["erm", "test_at_val_choice_mean"] == pytest.approx(85.0)
    assert summary.loc["erm", "test_at_val_choice_std"] == pytest.approx(7.0710678)
    assert summary.loc["erm", "best_test_mean"] == pytest.approx(87.5)
    assert summary.loc["erm", "best_test_std"] == pytest.approx(10.6066017)
    assert summary.loc["erm", "optimism_mean"] == pytest.approx(2.5)
    assert summary.loc["erm", "optimism_std"] == pytest.approx(3.5355339)
    # adaptivemix: one finished seed (85 vs 91: 6 points), the diverged one only counted
    assert summary.loc["adaptivemix", "optimism_mean"] == pytest.approx(6.0)
    assert summary.loc["adaptivemix", "n_seeds"] == 1
    assert summary.loc["adaptivemix", "n_diverged"] == 1
    runs = data[data["row"] == "run"]
    assert list(runs["method"]) == ["erm", "erm", "adaptivemix", "adaptivemix", "mixup"]
    assert list(runs["optimism"].round(6))[:3] == [5.0, 0.0, 6.0]


def test_markdown_shows_both_accuracies_and_marks_test_selection(tables):
    md = (tables / "selection_bias.md").read_text()
    assert "| erm " in md and "85.00 ± 7.07" in md and "87.50 ± 10.61" in md
    assert "2.50 ± 3.54" in md and "6.00 (single seed)" in md
    assert "test (OPTIMISTIC)" in md and "not recorded" in md and "val/not" not in md
    assert "3/30" in md  # erm seed 0 chose epoch 3, step 30
    tex = (tables / "selection_bias.tex").read_text()
    assert r"85.00 $\pm$ 7.07" in tex and "optimism (pp)" in tex
