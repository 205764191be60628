"""The FID trend, limited-data and sweep tables, against values worked out by hand.

Runs are written in the trainers' format (``metrics.json`` and ``log.jsonl``) with chosen
numbers, then read back through the real collectors, so every cell below is arithmetic on
those numbers, not the code's own output.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from adaptivemix.io import write_json
from adaptivemix.report.collect import collect_curves, collect_runs
from adaptivemix.report.limited_data import aggregate_limited_data, limited_data_layout
from adaptivemix.report.sweep import aggregate_sweep, sweep_layout
from adaptivemix.report.trend import curve_trends, trend_layout, trend_of

PROTOCOL = {"backbone": "digits-cnn", "resize": "native", "n_gen": 300, "n_real": 1257,
            "reference_split": "train"}  # fmt: skip


def run(root: Path, dataset: str, method: str, seed: int, fid: float, curve=()) -> Path:
    run_dir = root / "runs/gan" / dataset / "dcgan" / method / f"seed{seed}"
    run_dir.mkdir(parents=True)
    write_json(run_dir / "metrics.json", {
        "task": "gan", "dataset": dataset, "arch": "dcgan", "method": method, "seed": seed,
        "status": "ok", "diverged_at_step": None, "steps": 40, "train_seconds": 1.0,
        "metrics": {"fid": fid, "kid": fid / 100}, "protocol": PROTOCOL,
        "protocol_fingerprint": f"fp-{dataset}",
    })  # fmt: skip
    rows = [{"step": 100 * (i + 1), "fid": v} for i, v in enumerate(curve)]
    (run_dir / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return run_dir / "metrics.json"


# --- trend -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "trend", "change", "best", "best_step"),
    [
        ([15.0, 7.0, 6.0, 7.0, 8.0], "turned", 1 / 7, 6.0, 300),  # 8 is 33% above 6
        ([20.0, 10.0, 8.0], "falling", -0.2, 8.0, 300),
        ([10.0, 9.0, 9.2], "flat", 0.2 / 9, 9.0, 200),  # 2.2% above the best: within 5%
        ([10.0, 9.0, 8.8], "flat", -0.2 / 9, 8.8, 300),
    ],
)
def test_trend_of_a_curve(values, trend, change, best, best_step):
    steps = [100 * (i + 1) for i in range(len(values))]
    got = trend_of(steps, values)
    assert got["trend"] == trend
    assert got["change"] == pytest.approx(change)
    assert (got["best"], got["best_step"], got["last"]) == (best, best_step, values[-1])


def test_curve_trends_average_the_seeds_and_count_those_rising(tmp_path):
    paths = [
        run(tmp_path, "digits", "vanilla", 0, 9.0, [20.0, 8.0, 9.0]),
        run(tmp_path, "digits", "vanilla", 1, 9.0, [18.0, 6.0, 5.0]),
        run(tmp_path, "digits", "adaptivemix", 0, 5.0, [30.0, 10.0, 6.0]),
    ]
    trends = curve_trends(collect_curves(paths), method_order=["vanilla", "adaptivemix"])
    vanilla, mix = trends.iloc[0], trends.iloc[1]
    assert vanilla["method"] == "vanilla"
    assert vanilla["last_values"] == [19.0, 7.0, 7.0]  # means of the two seeds
    assert vanilla["trend"] == "flat" and vanilla["change"] == 0.0
    assert (vanilla["seeds_rising"], vanilla["n_seeds"]) == (1, 2)  # seed 0: 8 -> 9
    assert mix["trend"] == "falling" and mix["change"] == pytest.approx(-0.4)
    data, shown, markdown = trend_layout(trends)
    assert list(shown["trend"]) == ["flat", "falling"]
    assert "100: 19.00, 200: 7.00, 300: 7.00" in markdown and "−40.0%" in markdown
    assert data.loc[0, "last_steps"] == "100 200 300"


# --- limited data ----------------------------------------------------------------------


def limited_runs(root: Path) -> list[Path]:
    """FIDs chosen so that AdaptiveMix gains 1 on digits and 3, 4, 5 on the cut."""
    fids = {
        ("digits", "vanilla"): [10.0, 11.0, 12.0],
        ("digits", "adaptivemix"): [9.0, 10.0, 11.0],
        ("digits-25pct", "vanilla"): [20.0, 22.0, 24.0],
        ("digits-25pct", "adaptivemix"): [17.0, 18.0, 19.0],
        ("digits", "mixup"): [10.0, 11.0, 12.0],  # not on the cut: not in the table
    }
    return [run(root, d, m, s, v) for (d, m), vs in fids.items() for s, v in enumerate(vs)]


def test_limited_data_table_by_hand(tmp_path):
    runs = collect_runs(limited_runs(tmp_path))
    data, shown, markdown = limited_data_layout(runs, {"digits": ["digits-25pct"]}, "vanilla")
    assert list(shown["method"]) == ["vanilla", "adaptivemix"]
    row = data.set_index("method").loc["adaptivemix"]
    assert row["full_mean"] == pytest.approx(10.0) and row["cut_mean"] == pytest.approx(18.0)
    assert row["full_diff_diff_mean"] == pytest.approx(-1.0)
    assert row["cut_diff_diff_mean"] == pytest.approx(-4.0)  # −3, −4, −5
    # per seed: (−3 − −1, −4 − −1, −5 − −1) = (−2, −3, −4)
    assert row["change_diff_mean"] == pytest.approx(-3.0)
    assert row["change_diff_std"] == pytest.approx(1.0)
    assert row["change_ci_high"] < 0
    assert shown.set_index("method").loc["vanilla", "change (cut − full)"] == "(baseline)"
    assert "−3.00 ± 1.00" in markdown
    written = aggregate_limited_data(
        limited_runs(tmp_path / "again"), {"digits": ["digits-25pct"]}, "vanilla",
        tmp_path / "tables",
    )  # fmt: skip
    assert [p.name for p in written] == ["limited_data.csv", "limited_data.md", "limited_data.tex"]
    assert set(pd.read_csv(written[0])["metric"]) == {"fid", "kid"}


# --- sweep -----------------------------------------------------------------------------

SWEEP = {"name": "abl", "method": "adaptivemix", "dataset": "digits-25pct",
         "grid": {"noise_std": [0.0, 0.05], "alpha": [1.0]}}  # fmt: skip
CONFIGURED = {"alpha": 1.0, "noise_std": 0.05, "distance": "cosine"}


def sweep_runs(root: Path) -> list[Path]:
    fids = {
        "adaptivemix@alpha=1.0,noise_std=0.0": [14.0, 16.0],
        "adaptivemix": [12.0, 13.0],  # the configured point
        "vanilla": [20.0, 19.0],
    }
    return [run(root, "digits-25pct", m, s, v) for m, vs in fids.items() for s, v in enumerate(vs)]


def test_sweep_table_by_hand(tmp_path):
    runs = collect_runs(sweep_runs(tmp_path))
    data, shown, _ = sweep_layout(runs, SWEEP, CONFIGURED, "vanilla")
    assert list(shown["noise_std"]) == ["0.0", "0.05"] and list(shown["alpha"]) == ["1.0", "1.0"]
    first, configured = data.iloc[0], data.iloc[1]
    assert first["fid_mean"] == pytest.approx(15.0)
    assert first["fid_vs_configured_diff_mean"] == pytest.approx(2.5)  # +2, +3
    assert first["fid_vs_vanilla_diff_mean"] == pytest.approx(-4.5)  # −6, −3
    assert configured["method"] == "adaptivemix"
    assert configured["fid_vs_vanilla_diff_mean"] == pytest.approx(-7.0)  # −8, −6
    assert math.isnan(configured["fid_vs_configured_diff_mean"] or math.nan)
    assert shown.loc[1, "fid − configured"] == "(configured)"


def test_sweep_files_and_figure(tmp_path):
    written = aggregate_sweep(
        sweep_runs(tmp_path), SWEEP, CONFIGURED, "vanilla", tmp_path / "t", tmp_path / "f"
    )
    names = sorted(p.name for paths in written.values() for p in paths)
    assert names == sorted(f"sweep_abl.{e}" for e in ("csv", "md", "tex", "png", "pdf", "csv"))
    plotted = pd.read_csv(tmp_path / "f/sweep_abl.csv")
    assert list(plotted["mean"]) == pytest.approx([15.0, 12.5])
    with Image.open(tmp_path / "f/sweep_abl.png") as image:
        assert image.width > 300
