"""Does a method's gain grow as the training set shrinks? The limited-data table.

A limited-data set is a cut of a full one, measured against the full set's reals
(``evaluate.metric_data``: ``digits-25pct: digits``, as FFHQ-5k is measured against FFHQ).
Per full set, its cuts and every method run on all of them: the metric's mean ± std on each
set, the method's paired difference to the baseline on each set (over the seeds both
finished), and how that difference changes from the full set to the cut — per seed
``(method − baseline on the cut) − (method − baseline on the full set)``, its mean and
bootstrap CI. For FID a negative change means the method's advantage grows as data shrinks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from adaptivemix.report.collect import check_fingerprints, collect_runs
from adaptivemix.report.layouts import CONFIDENCE, _seed_values, arrow, format_paired
from adaptivemix.report.staging import staged, unstaged
from adaptivemix.report.stats import N_BOOT, mean_std_ci, paired_difference
from adaptivemix.report.tables import format_mean_std, precision_of, rank_order
from adaptivemix.report.writers import write_frame

STEM = "limited_data"
BASELINE_CELL = "(baseline)"


def _gap(rows: pd.DataFrame, method: str, baseline: str, metric: str) -> dict[int, float]:
    """seed -> method − baseline on the seeds both finished."""
    mine, base = _seed_values(rows, method, metric), _seed_values(rows, baseline, metric)
    return {s: mine[s] - base[s] for s in sorted(set(mine) & set(base))}


def _set_cells(rows: pd.DataFrame, method: str, baseline: str, metric: str) -> tuple[dict, dict]:
    stats = mean_std_ci(rows.loc[(rows["method"] == method) & (rows["status"] == "ok"), metric])
    diff = paired_difference(
        _seed_values(rows, method, metric), _seed_values(rows, baseline, metric), CONFIDENCE,
        N_BOOT,
    )  # fmt: skip
    return stats, diff


def limited_data_layout(
    runs: pd.DataFrame, groups: Mapping[str, Sequence[str]], baseline: str, metric: str = "fid",
    method_order: Sequence[str] = (),
) -> tuple[pd.DataFrame, pd.DataFrame, str]:  # fmt: skip
    """(data, shown, markdown): a row per (full set, cut, method) with every method that ran
    on both, the baseline included (its own difference is 0 by definition, left out)."""
    digits = precision_of(metric)
    records, shown = [], []
    rank = rank_order(runs["method"], method_order)
    for full, cuts in groups.items():
        for cut in cuts:
            both = runs[runs["dataset"].isin([full, cut])]
            on_full = set(both.loc[both["dataset"] == full, "method"])
            on_cut = set(both.loc[both["dataset"] == cut, "method"])
            for method in sorted(on_full & on_cut, key=rank.__getitem__):
                record, row = _row(both, full, cut, method, baseline, metric, digits)
                records.append(record)
                shown.append(row)
    data, shown = pd.DataFrame(records), pd.DataFrame(shown)
    legend = (
        f"{metric.upper()} {arrow(metric)} on each full set and its cut (the cut is measured "
        f"against the full set's reals). Cells: mean ± std over seeds; − {baseline}: paired "
        f"difference over the seeds both finished ± std [{CONFIDENCE:.0%} bootstrap CI, "
        f"{N_BOOT:,} resamples], * : the CI excludes 0; change: per seed, (method − "
        f"{baseline}) on the cut minus (method − {baseline}) on the full set, so for FID a "
        "negative change means the method's advantage grows as the data shrinks."
    )
    table = (
        shown.to_markdown(index=False, disable_numparse=True)
        if len(shown)
        else "(no method ran on a full set and its cut)"
    )
    return data, shown, legend + "\n\n" + table + "\n"


def _row(rows, full, cut, method, baseline, metric, digits) -> tuple[dict, dict]:
    full_rows, cut_rows = rows[rows["dataset"] == full], rows[rows["dataset"] == cut]
    record = {"full": full, "cut": cut, "method": method, "baseline": baseline, "metric": metric}
    shown = {"full set": full, "cut": cut, "method": method}
    for label, part in (("full", full_rows), ("cut", cut_rows)):
        stats, diff = _set_cells(part, method, baseline, metric)
        record |= {f"{label}_mean": stats["mean"], f"{label}_std": stats["std"],
                   f"{label}_n": stats["n"]}  # fmt: skip
        shown[f"{metric} {label}"] = format_mean_std(stats["mean"], stats["std"], digits)
        shown[f"− {baseline}, {label}"] = BASELINE_CELL
        if method != baseline:
            record |= {
                f"{label}_diff_{k}": diff[k] for k in ("diff_mean", "ci_low", "ci_high", "n_pairs")
            }
            shown[f"− {baseline}, {label}"] = format_paired(diff, digits)
    shown["change (cut − full)"] = BASELINE_CELL
    if method != baseline:
        change = paired_difference(
            _gap(cut_rows, method, baseline, metric), _gap(full_rows, method, baseline, metric),
            CONFIDENCE, N_BOOT,
        )  # fmt: skip
        record |= {
            f"change_{k}": change[k]
            for k in ("diff_mean", "diff_std", "ci_low", "ci_high", "n_pairs", "p_value")
        }
        shown["change (cut − full)"] = format_paired(change, digits)
    return record, shown


def aggregate_limited_data(
    metrics_paths: Sequence[Path | str], groups: Mapping[str, Sequence[str]], baseline: str,
    tables_dir: Path | str, method_order: Sequence[str] = (),
) -> list[Path]:  # fmt: skip
    """``tables/limited_data.{csv,md,tex}`` (FID; KID in the CSV rows too)."""
    runs = collect_runs(metrics_paths)
    check_fingerprints(runs)  # one protocol per dataset
    finals = (Path(tables_dir),)
    with staged(*finals) as (tables,):
        parts = [
            limited_data_layout(runs, groups, baseline, m, method_order) for m in ("fid", "kid")
        ]
        data = pd.concat([p[0] for p in parts], ignore_index=True)
        fid_shown, fid_markdown = parts[0][1], parts[0][2]
        caption = "Limited data: each method's gain on a full set and on its cut"
        written = write_frame(data, fid_shown, tables / STEM, caption, fid_markdown)
    return unstaged(written, (tables,), finals)
