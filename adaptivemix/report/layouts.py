"""The paper's table layouts, as frames ready for :func:`adaptivemix.report.writers.write_frame`.

Every layout returns ``(data, shown, markdown)``: ``data`` is a long numeric frame (the CSV,
full precision), ``shown`` one formatted wide frame (the LaTeX), ``markdown`` the text for
reading (blocks with headings where a table has several metrics).

- :func:`generation_layout`: methods × datasets, one block per metric, cells mean ± std.
- :func:`paired_layout`: each method against its baseline over the seeds both ran: mean
  paired difference ± std, bootstrap CI and a paired t-test p-value.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from adaptivemix.report.diverged import DIVERGED, OK, all_diverged, all_diverged_mask, unpaired_cell
from adaptivemix.report.stats import N_BOOT, paired_difference
from adaptivemix.report.tables import (
    CORE_METRICS,
    format_mean_std,
    precision_of,
    rank_order,
    table_metrics,
)
from adaptivemix.report.writers import markdown_table
from adaptivemix.variant_names import baseline_of

GENERATION_METRICS = (
    "fid", "kid", "precision", "recall", "modes", "kl_modes", "spread_vs_noise", "feature_spread",
)  # fmt: skip
LOWER_IS_BETTER = frozenset(
    {"fid", "kid", "kl_modes", "fpr95", "spread_vs_noise", "feature_spread"}
)
MISSING = "–"  # a dataset without the metric, or a method not run there
CONFIDENCE = 0.95
SUMMARY_KEYS = ("task", "dataset", "arch", "method")
CELL_FIELDS = ("mean", "std", "ci_low", "ci_high")
GENERATION_NOTE = (
    "Cells: mean ± std over seeds (n and CIs in the CSV); – : not measured or not run; "
    "diverged: no seed finished (every run diverged)."
)
PAIRED_COLUMNS = (
    "task", "dataset", "arch", "method", "baseline", "metric", "n_pairs", "diff_mean",
    "diff_std", "ci_low", "ci_high", "p_value", "significant", "better",
)  # fmt: skip


def arrow(metric: str) -> str:
    """'↓' for metrics where lower is better (:data:`LOWER_IS_BETTER`), else '↑'."""
    return "↓" if metric in LOWER_IS_BETTER else "↑"


def _generation_metrics(summary: pd.DataFrame, metrics: Sequence[str] | None) -> list[str]:
    """The requested metrics (checked), or each of GENERATION_METRICS some row has (fid
    and kid when no row has any: every run diverged, which the cells then say)."""
    available = table_metrics(summary)
    if metrics is None:
        measured = [
            m for m in GENERATION_METRICS if m in available and summary[f"{m}_mean"].notna().any()
        ]
        return measured or [m for m in CORE_METRICS if m in available]
    unknown = [m for m in metrics if m not in available]
    if unknown:
        raise ValueError(f"metrics {unknown} not in the summary; available: {available}")
    return list(metrics)


def _dataset_labels(summary: pd.DataFrame) -> pd.Series:
    """Column label per row: the dataset, prefixed by the task when several tasks are shown."""
    if summary["task"].nunique() > 1:
        return summary["task"].astype(str) + "/" + summary["dataset"].astype(str)
    return summary["dataset"].astype(str)


def _long_generation(summary: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """A row per summary row and metric its (task, dataset) reports, and per row with no
    finished seed but a diverged one and fid/kid; NaN mean: no seed."""
    labels = _dataset_labels(summary)
    diverged = all_diverged_mask(summary)
    records = []
    for m in metrics:
        means = summary[f"{m}_mean"]
        reported = means.notna().groupby([summary["task"], summary["dataset"]]).transform("any")
        keep = reported.astype(bool) | (diverged & (m in CORE_METRICS))
        for i in summary.index[keep]:
            row = summary.loc[i]
            records.append(
                {
                    **{k: row[k] for k in SUMMARY_KEYS},
                    "metric": m,
                    "lower_is_better": m in LOWER_IS_BETTER,
                    **{f: float(row.get(f"{m}_{f}", math.nan)) for f in CELL_FIELDS},
                    "n_seeds": row.get("n_seeds", math.nan),
                    "n_diverged": row.get("n_diverged", 0),  # not in the CSV
                    "label": labels[i],
                }
            )
    columns = [*SUMMARY_KEYS, "metric", "lower_is_better", *CELL_FIELDS, "n_seeds", "n_diverged"]
    columns.append("label")
    return pd.DataFrame(records, columns=columns)


def _block(long: pd.DataFrame, metric: str, labels: list[str], rows: pd.DataFrame) -> pd.DataFrame:
    """One metric's cells: a row per (arch, method) of ``rows``, a column per dataset label."""
    digits = precision_of(metric)
    part = long[long["metric"] == metric]
    cells = {
        (r.arch, r.method, r.label): (
            DIVERGED if all_diverged(r._asdict()) else format_mean_std(r.mean, r.std, digits)
        )
        for r in part.itertuples()
    }
    block = rows.copy()
    keys = list(zip(rows["arch"], rows["method"], strict=True))
    for label in labels:
        block[label] = [cells.get((arch, method, label), MISSING) for arch, method in keys]
    return block


def _arch_method_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """Distinct (arch, method) pairs: archs by first appearance, methods in summary order."""
    arch_rank, method_rank = rank_order(summary["arch"]), rank_order(summary["method"])
    pairs = dict.fromkeys(zip(summary["arch"], summary["method"], strict=True))
    ordered = sorted(pairs, key=lambda p: (arch_rank[p[0]], method_rank[p[1]]))
    return pd.DataFrame(ordered, columns=["arch", "method"])


def generation_layout(
    summary: pd.DataFrame, metrics: Sequence[str] | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """The paper's generation table: methods × datasets, one block per metric.

    ``summary`` is :func:`adaptivemix.report.tables.summary_table`'s frame (a row per task,
    dataset, arch, method with ``<m>_mean/_std/_ci_low/_ci_high``). Rows are (arch, method)
    in the summary's order; columns are datasets in order of appearance. Metrics default to
    those of :data:`GENERATION_METRICS` some row reports. A cell is "mean ± std" at the
    metric's precision; a dataset without the metric (or a method not run there) shows "–",
    a group with no finished seed "diverged" when its runs diverged, else "n/a".

    Returns ``data`` (long: a row per summary row and metric, full precision), ``shown``
    (one wide table, columns "<metric> <dataset>", for LaTeX; all-"–" columns are left out)
    and ``markdown`` (a "### <METRIC> ↓/↑" block per metric).
    """
    chosen = _generation_metrics(summary, metrics)
    long = _long_generation(summary, chosen)
    labels = list(dict.fromkeys(_dataset_labels(summary)))
    rows = _arch_method_rows(summary)
    shown = rows.copy()
    blocks = [GENERATION_NOTE]
    for m in chosen:
        block = _block(long, m, labels, rows)
        blocks.append(f"### {m.upper()} {arrow(m)}\n\n{_markdown(block)}")
        for label in labels:
            if (block[label] != MISSING).any():
                shown[f"{m} {label}"] = block[label]
    return long.drop(columns=["n_diverged", "label"]), shown, "\n\n".join(blocks) + "\n"


def _markdown(frame: pd.DataFrame) -> str:
    return markdown_table(frame).rstrip("\n")


def _seed_values(rows: pd.DataFrame, method: str, metric: str) -> dict[int, float]:
    """seed -> value of ``metric`` over the finished runs of ``method``."""
    mine = rows[(rows["method"] == method) & (rows["status"] == "ok")]
    return {int(s): float(v) for s, v in zip(mine["seed"], mine[metric], strict=True)}


def _better(metric: str, result: dict) -> bool | None:
    """True/False when the difference is significant (good/bad direction), else None."""
    if not result["significant"]:
        return None
    lower = result["diff_mean"] < 0
    return bool(lower if metric in LOWER_IS_BETTER else not lower)


def _paired_rows(
    key: tuple, rows: pd.DataFrame, metrics: Sequence[str], baseline: str, method_rank: dict
) -> tuple[list[dict], list[str]]:
    """Paired records of one (task, dataset, arch), and its "not paired" notes."""
    records, unpaired = [], []
    present = set(rows["method"])
    finished = set(rows.loc[rows["status"] == OK, "method"])
    # no finished run here at all: every requested metric, each cell saying who diverged
    reported = [m for m in metrics if rows[m].notna().any()] or list(metrics)
    for method in sorted(present, key=method_rank.__getitem__):
        base = baseline_of(method, baseline)
        if base == method:
            continue
        if base not in present:
            where = "/".join(str(k) for k in key[1:])
            unpaired.append(f"not paired: {method} (no {base} runs) in {where}")
            continue
        for m in reported:
            result = paired_difference(
                _seed_values(rows, method, m), _seed_values(rows, base, m), CONFIDENCE, N_BOOT
            )
            names = dict(zip(SUMMARY_KEYS[:3], key, strict=True))
            paired = result["n_pairs"] > 0
            why = "" if paired else unpaired_cell(method in finished, base in finished)
            records.append(
                {**names, "method": method, "baseline": base, "metric": m, **result,
                 "better": _better(m, result), "note": why}
            )  # fmt: skip
    return records, unpaired


def _signed(value: float, digits: int) -> str:
    """Fixed decimals with a true minus sign; a value rounding to zero has no sign."""
    text = f"{value:.{digits}f}"
    if float(text) == 0.0:
        text = text.lstrip("-")
    return text.replace("-", "−")


def format_paired(row: pd.Series | dict, digits: int) -> str:
    """'−1.23 ± 0.40 [−1.70, −0.80] *' (the star: the CI excludes 0); without a pair the
    record's ``note`` (e.g. "no pair: method diverged"), else "n/a"."""
    if row["n_pairs"] == 0:
        return row.get("note") or "n/a"
    mean = _signed(row["diff_mean"], digits)
    if row["n_pairs"] == 1:
        return f"{mean} (single pair)"
    low, high = _signed(row["ci_low"], digits), _signed(row["ci_high"], digits)
    star = " *" if row["significant"] else ""
    return f"{mean} ± {_signed(row['diff_std'], digits)} [{low}, {high}]{star}"


def _paired_shown(data: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """Wide: a row per (task, dataset, arch, method), a column per metric's difference.

    ``n_pairs`` lists the distinct pair counts over the row's metrics ("3", or "3/2" when
    a metric is missing on some seeds).
    """
    keys = ["task", "dataset", "arch", "method", "baseline"]
    rows = [tuple(r) for r in data[keys].drop_duplicates().itertuples(index=False)]
    shown = pd.DataFrame(rows, columns=keys)
    if shown["task"].nunique() <= 1:
        shown = shown.drop(columns="task")
    counts: dict[tuple, list[str]] = {r: [] for r in rows}
    for m in metrics:
        part = data[data["metric"] == m]
        if part.empty:
            continue
        cells = {}
        for _, record in part.iterrows():
            key = tuple(record[keys])
            cells[key] = format_paired(record, precision_of(m))
            counts[key].append(str(record["n_pairs"]))
        shown[f"{m} diff {arrow(m)}"] = [cells.get(r, MISSING) for r in rows]
    shown["n_pairs"] = ["/".join(dict.fromkeys(counts[r])) for r in rows]
    return shown


def paired_layout(
    runs: pd.DataFrame,
    metrics: Sequence[str],
    baseline: str,
    method_order: Sequence[str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """Each method against its baseline (:func:`baseline_of`), paired over seeds.

    ``runs`` is :func:`adaptivemix.report.collect.collect_runs`'s frame. Per (task, dataset,
    arch) and every method whose baseline has runs there, and every metric of ``metrics``
    the group's runs report: :func:`adaptivemix.report.stats.paired_difference` over the
    seeds both finished (status ok). ``better`` is True/False for a significant difference
    in the good/bad direction (:data:`LOWER_IS_BETTER`), None otherwise. A comparison
    without a seed finished on both sides keeps its row, ``n_pairs`` 0 and a ``note`` saying
    which side diverged (:func:`adaptivemix.report.diverged.unpaired_cell`) in its cell.

    Returns ``data`` (:data:`PAIRED_COLUMNS`, a row per comparison and metric), ``shown``
    (a row per comparison, a "<metric> diff ↓/↑" column each, cells
    "−1.23 ± 0.40 [−1.70, −0.80] *") and ``markdown`` (legend, table, "not paired" notes).
    """
    missing = [m for m in metrics if m not in runs.columns]
    if missing:
        raise ValueError(f"metrics {missing} not in the runs; columns: {list(runs.columns)}")
    method_rank = rank_order(runs["method"], method_order or ())
    records, unpaired = [], []
    for key, rows in runs.groupby(list(SUMMARY_KEYS[:3]), sort=False):
        found, notes = _paired_rows(key, rows, metrics, baseline, method_rank)
        records += found
        unpaired += notes
    data = pd.DataFrame(records, columns=[*PAIRED_COLUMNS, "note"])
    data["better"] = pd.Series(  # keep None beside True/False (no inferred bool dtype)
        [r["better"] for r in records], index=data.index, dtype=object
    )
    shown = _paired_shown(data, metrics)
    data = data.drop(columns="note")  # the reason is in the shown cell; the CSV keeps n_pairs 0
    legend = (
        f"Cells: mean paired difference, method − its baseline ({baseline} with the same "
        "augmentations), over the seeds both finished ± its std "
        f"[{CONFIDENCE:.0%} percentile-bootstrap CI of the mean difference, {N_BOOT:,} "
        "resamples]; * : the CI excludes 0. With 3 seeds this CI spans about [min, max] of "
        "the differences; paired t-test p-values are in the CSV. ↓: lower is better, ↑: "
        "higher is better. n_pairs: seeds paired per metric; no pair: no seed finished on "
        "both sides (which side diverged on every seed is said)."
    )
    parts = [legend, _markdown(shown) if len(shown) else "(no method has its baseline here)"]
    if unpaired:
        parts.append("\n".join(unpaired))
    return data, shown, "\n\n".join(parts) + "\n"
