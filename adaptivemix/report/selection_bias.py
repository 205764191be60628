"""The ``selection_bias`` table: what choosing the checkpoint on the test split adds.

Every classifier run measures validation and test accuracy at each evaluation
(:mod:`adaptivemix.classify.selection`) and its ``metrics.json`` carries a ``selection``
block: the evaluation the validation split picks, the best test accuracy seen, and
``test_optimism``, their difference. This table shows, per run and as mean ± std over the
finished seeds of each (dataset, arch, method), the test accuracy at the validation choice
beside the best test accuracy seen and the difference in percentage points: what a number
chosen the official code's way (best test accuracy over training) gains over an honest one,
to be subtracted before comparing a paper's number with ours. Runs whose records predate
the block show "not recorded"; a diverged run is counted (``n_diverged``), never averaged,
its missing values show "diverged", and so does a method none of whose seeds finished.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from adaptivemix.io import read_json
from adaptivemix.report.diverged import DIVERGED, OK, all_diverged
from adaptivemix.report.stats import mean_std_ci
from adaptivemix.report.tables import format_mean_std, rank_order
from adaptivemix.report.writers import markdown_table, write_frame

KEY = ("dataset", "arch", "method")
VALUES = ("test_at_val_choice", "best_test", "optimism")  # in %, optimism in points
TITLES = {
    "test_at_val_choice": "test acc @ val choice (%)",
    "best_test": "best test acc seen (%)",
    "optimism": "optimism (pp)",
}
DIGITS = 2
SELECTION_SHOWN = {"val": "val", "test": "test (OPTIMISTIC)"}
LEGEND = (
    "Test accuracy (%) of the checkpoint chosen on the validation split, beside the best "
    "test accuracy seen at any evaluation of the same run; optimism = their difference in "
    "percentage points. Choosing on the test split, as the official AdaptiveMix code does "
    "(test set every 30 iterations, best kept), reports the best test accuracy: subtract the "
    "optimism from such a number before comparing it with a validation-selected one. "
    "Evaluations: once per epoch under `selection: val` (fewer looks than upstream's, so "
    "this optimism is a lower bound on upstream's); every 30 iterations under "
    "`selection: test`. Cells: mean ± std over finished seeds."
)


def _pct(value) -> float:
    return math.nan if value is None else 100.0 * float(value)


def run_row(record: dict) -> dict:
    """One run's row from its ``metrics.json`` record (NaN where nothing was recorded)."""
    block = record.get("selection") or {}
    by_val, best = block.get("val_selected") or {}, block.get("best_test") or {}
    return {
        **{k: record[k] for k in (*KEY, "seed", "status")},
        "selection": block.get("protocol"),
        "optimistic": block.get("optimistic"),
        "n_evaluations": block.get("n_evaluations"),
        "val_choice_epoch": by_val.get("epoch"),
        "val_choice_step": by_val.get("step"),
        "val_acc_at_val_choice": _pct(by_val.get("val_acc")),
        "test_at_val_choice": _pct(by_val.get("test_acc")),
        "best_test": _pct(best.get("test_acc")),
        "best_test_epoch": best.get("epoch"),
        "best_test_step": best.get("step"),
        "optimism": _pct(block.get("test_optimism")),
    }


RUN_COLUMNS = list(run_row({k: None for k in (*KEY, "seed", "status")}))


def collect_selection(metrics_paths: Sequence[Path | str], method_order=None) -> pd.DataFrame:
    """A row per run (:func:`run_row`), ordered by dataset, arch, method (``method_order``
    first) and seed."""
    rows = [run_row(read_json(Path(p))) for p in metrics_paths]
    runs = pd.DataFrame(rows, columns=RUN_COLUMNS)
    if runs.empty:
        return runs
    ranks = {c: rank_order(runs[c]) for c in ("dataset", "arch")}
    ranks["method"] = rank_order(runs["method"], method_order or ())
    order = sorted(
        range(len(runs)),
        key=lambda i: (*(ranks[c][runs[c].iloc[i]] for c in KEY), runs["seed"].iloc[i]),
    )
    return runs.iloc[order].reset_index(drop=True)


SUMMARY_COLUMNS = [
    *KEY,
    "selection",
    *(f"{v}_{f}" for v in VALUES for f in ("mean", "std", "ci_low", "ci_high")),
    "n_seeds",
    "n_diverged",
]


def summarise(runs: pd.DataFrame) -> pd.DataFrame:
    """Mean, std, bootstrap CI over the finished runs of each (dataset, arch, method)."""
    records = []
    for key, rows in runs.groupby(list(KEY), sort=False):
        ok = rows[rows["status"] == "ok"]
        record = dict(zip(KEY, key, strict=True))
        shown = dict.fromkeys(str(s) for s in rows["selection"].dropna())
        record["selection"] = "/".join(shown) or "none"
        for v in VALUES:
            stats = mean_std_ci(ok[v])
            record |= {f"{v}_{f}": stats[f] for f in ("mean", "std", "ci_low", "ci_high")}
        record["n_seeds"] = int(ok[list(VALUES)].notna().all(axis=1).sum())
        record["n_diverged"] = int((rows["status"] != "ok").sum())
        records.append(record)
    return pd.DataFrame(records, columns=SUMMARY_COLUMNS)


def _selection_text(value) -> str:
    return "/".join(SELECTION_SHOWN.get(s, "not recorded") for s in str(value).split("/"))


def summary_shown(summary: pd.DataFrame) -> pd.DataFrame:
    shown = summary[list(KEY)].copy()
    shown["selection"] = summary["selection"].map(_selection_text)
    gone = [all_diverged(row) for _, row in summary.iterrows()]
    for v in VALUES:
        cells = zip(summary[f"{v}_mean"], summary[f"{v}_std"], gone, strict=True)
        shown[TITLES[v]] = [DIVERGED if g else format_mean_std(m, s, DIGITS) for m, s, g in cells]
    shown["n_seeds"] = summary["n_seeds"].astype(str)
    shown["n_diverged"] = summary["n_diverged"].astype(str)
    return shown


def runs_shown(runs: pd.DataFrame) -> pd.DataFrame:
    def cell(value: float, status: str) -> str:
        if not math.isnan(value):
            return f"{value:.{DIGITS}f}"
        return "not recorded" if status == OK else DIVERGED

    def where(epoch, step) -> str:
        return "–" if epoch is None or pd.isna(epoch) else f"{int(epoch)}/{int(step)}"

    shown = runs[[*KEY, "seed", "status"]].copy()
    shown["selection"] = [SELECTION_SHOWN.get(s, "not recorded") for s in runs["selection"]]
    shown["val choice (epoch/step)"] = list(
        map(where, runs["val_choice_epoch"], runs["val_choice_step"])
    )
    shown["best test at (epoch/step)"] = list(
        map(where, runs["best_test_epoch"], runs["best_test_step"])
    )
    for v in VALUES:
        shown[TITLES[v]] = list(map(cell, runs[v], runs["status"]))
    return shown


def selection_bias_table(
    metrics_paths: Sequence[Path | str], stem: Path | str, method_order=None
) -> list[Path]:
    """Write ``<stem>.csv`` (run rows, then per-method rows, full precision), ``.md``
    (legend, per-method table, per-run table) and ``.tex`` (per-method table)."""
    runs = collect_selection(metrics_paths, method_order)
    summary = summarise(runs)
    shown = summary_shown(summary)
    data = pd.concat(
        [runs.assign(row="run"), summary.assign(row="mean over seeds")], ignore_index=True
    )
    markdown = "\n\n".join(
        [
            LEGEND,
            "### Per method\n\n" + markdown_table(shown).rstrip("\n"),
            "### Per run\n\n" + markdown_table(runs_shown(runs)).rstrip("\n"),
        ]
    )
    caption = "Selection bias: test accuracy at the validation choice vs best test seen (%)"
    return write_frame(data, shown, stem, caption, markdown + "\n")
