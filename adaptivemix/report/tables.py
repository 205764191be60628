"""Per-method summary tables (mean, std and CI over seeds) as CSV, Markdown and LaTeX.

The CSV keeps full precision for downstream analysis (with both the bootstrap CI,
``<m>_ci_low/_ci_high``, and the Student-t CI, ``<m>_t_ci_low/_t_ci_high``); Markdown and
LaTeX are for reading, with a fixed number of decimals per metric so columns line up and no
spurious digits are shown. Their cells show the bootstrap CI (see
:mod:`adaptivemix.report.stats` on how little it says with 3 seeds).
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Iterable, Sequence
from pathlib import Path

import pandas as pd

from adaptivemix.report.diverged import DIVERGED, all_diverged_mask
from adaptivemix.report.stats import mean_std_ci
from adaptivemix.report.writers import write_frame

GROUP_COLS = ("task", "dataset", "arch", "method")
STAT_FIELDS = ("mean", "std", "ci_low", "ci_high")  # what a shown cell uses
CSV_FIELDS = (*STAT_FIELDS, "t_ci_low", "t_ci_high")  # every field kept in the CSV
CORE_METRICS = ("fid", "kid")  # every GAN run has them
# Only some runs have these (precision/recall when evaluate.pr_k > 0, mode coverage with a
# classifier backbone, feature spread where measured), so a dataset's tables show them only
# when its runs do.
OPTIONAL_METRICS = ("precision", "recall", "modes", "kl_modes", "spread_vs_noise", "feature_spread")
# Decimals shown in Markdown: FID is O(1-100), KID is O(1e-3-1e-1); precision and recall
# are fractions; modes is a count averaged over seeds (one decimal), KL over modes
# O(1e-2-1) nats; feature spread O(1e-2-10).
PRECISION = {
    "fid": 2,
    "kid": 4,
    "precision": 3,
    "recall": 3,
    "modes": 1,
    "kl_modes": 3,
    "feature_spread": 3,
    "spread_vs_noise": 3,
}
DEFAULT_PRECISION = 3
ACCURACY_PRECISION = 2  # accuracies in %: every "<name>_acc" column


def precision_of(metric: str) -> int:
    """Decimals shown in Markdown for ``metric``."""
    if metric.endswith("_acc"):
        return ACCURACY_PRECISION
    return PRECISION.get(metric, DEFAULT_PRECISION)


def rank_order(
    values: Iterable[Hashable], preferred: Sequence[Hashable] = ()
) -> dict[Hashable, int]:
    """Rank values: those in ``preferred`` first (in that order), the rest by first appearance."""
    seen = list(dict.fromkeys(values))
    ranked = [v for v in preferred if v in seen] + [v for v in seen if v not in preferred]
    return {v: i for i, v in enumerate(ranked)}


def _protocol_label(rows: pd.DataFrame) -> str:
    """E.g. 'digits-cnn/native, 1257 gen vs 1257 train', or the protocol's own ``label``;
    several labels joined by '; '."""

    def show(value: object) -> str:
        return "?" if pd.isna(value) else str(value)

    def modes(r: tuple) -> str:
        n_modes = getattr(r, "n_modes", None)
        return "" if n_modes is None or pd.isna(n_modes) else f", {n_modes} modes"

    def described(r: tuple) -> str:
        label = getattr(r, "label", None)
        if isinstance(label, str):  # the task wrote its own description
            return label
        return (
            f"{show(r.backbone)}/{show(r.resize)}, {show(r.n_gen)} gen vs "
            f"{show(r.n_real)} {show(r.reference_split)}{modes(r)}"
        )

    labels = [described(r) for r in rows.itertuples()]
    return "; ".join(dict.fromkeys(labels))


def reported_metrics(runs: pd.DataFrame) -> list[str]:
    """fid and kid, then each of ``OPTIONAL_METRICS`` some run has a value for."""
    present = [m for m in OPTIONAL_METRICS if m in runs.columns and runs[m].notna().any()]
    return [*CORE_METRICS, *present]


def _summarize_group(
    rows: pd.DataFrame, metrics: Sequence[str], confidence: float
) -> dict[str, object]:
    """Statistics over the finished runs that have every requested metric.

    Using the same runs for every metric keeps ``n_seeds`` the n behind every number in
    the row. Diverged runs are counted, not averaged; finished runs lacking a metric value
    are counted in ``n_missing`` so they cannot disappear unnoticed.
    """
    ok = rows[rows["status"] == "ok"]
    complete = ok.dropna(subset=list(metrics))
    out: dict[str, object] = {}
    for m in metrics:
        s = mean_std_ci(complete[m], confidence)
        out.update({f"{m}_{field}": s[field] for field in CSV_FIELDS})
    out["n_seeds"] = len(complete)
    out["n_diverged"] = int((rows["status"] == "diverged").sum())
    out["n_missing"] = len(ok) - len(complete)
    out["protocol"] = _protocol_label(ok if len(ok) else rows)
    return out


def summary_table(
    runs: pd.DataFrame,
    metrics: Sequence[str] | None = None,
    method_order: Sequence[str] | None = None,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """One row per (task, dataset, arch, method) with mean/std/CI per metric over seeds.

    ``runs`` is the frame of :func:`adaptivemix.report.collect.collect_runs`. By default
    each dataset reports :func:`reported_metrics` of its own runs (fid, kid and, where
    measured, modes and kl_modes); its rows hold NaN for metrics other datasets have.
    Given ``metrics``, every row reports exactly those. Rows follow the first appearance
    of task, dataset and arch; methods follow ``method_order`` (those not listed come
    after, by first appearance). The confidence level is kept in
    ``table.attrs["confidence"]`` for the Markdown header.
    """
    per_dataset = _metrics_per_dataset(runs, metrics)
    columns_metrics = list(metrics) if metrics is not None else reported_metrics(runs)
    missing = [m for m in columns_metrics if m not in runs.columns]
    if missing:
        raise ValueError(f"metrics {missing} not in the runs table (columns: {list(runs.columns)})")
    ranks = [rank_order(runs[c]) for c in GROUP_COLS[:-1]]
    ranks.append(rank_order(runs["method"], method_order or ()))
    records = []
    for key, rows in runs.groupby(list(GROUP_COLS), sort=False, dropna=False):
        summary = _summarize_group(rows, per_dataset(key[:2]), confidence)
        records.append({**dict(zip(GROUP_COLS, key, strict=True)), **summary})
    records.sort(key=lambda r: tuple(rank[r[c]] for rank, c in zip(ranks, GROUP_COLS, strict=True)))
    stat_cols = [f"{m}_{f}" for m in columns_metrics for f in CSV_FIELDS]
    columns = [*GROUP_COLS, *stat_cols, "n_seeds", "n_diverged", "n_missing", "protocol"]
    table = pd.DataFrame(records, columns=columns)
    table.attrs["confidence"] = confidence
    return table


def _metrics_per_dataset(runs: pd.DataFrame, metrics: Sequence[str] | None):
    """(task, dataset) -> the metrics its rows summarise: ``metrics``, or its own reported."""
    if metrics is not None:
        return lambda key: list(metrics)
    groups = runs.groupby(["task", "dataset"], sort=False, dropna=False)
    chosen = {key: reported_metrics(rows) for key, rows in groups}
    return lambda key: chosen[key]


def drop_unreported(table: pd.DataFrame) -> pd.DataFrame:
    """Drop optional metrics no row of ``table`` reports (e.g. one dataset's slice).

    A dataset whose runs have no mode metrics then keeps just its fid and kid columns.
    """
    absent = [
        m
        for m in OPTIONAL_METRICS
        if f"{m}_mean" in table.columns and table[f"{m}_mean"].isna().all()
    ]
    columns = [f"{m}_{f}" for m in absent for f in CSV_FIELDS]
    return table.drop(columns=[c for c in columns if c in table.columns])


def format_mean_std(mean: float, std: float, digits: int) -> str:
    """'mean ± std'; one seed gives no spread, no seeds give 'n/a'."""
    if math.isnan(mean):
        return "n/a"
    if math.isnan(std):
        return f"{mean:.{digits}f} (single seed)"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _format_cell(mean: float, std: float, low: float, high: float, digits: int) -> str:
    """'mean ± std [low, high]'; one seed gives no spread, no seeds give 'n/a'."""
    text = format_mean_std(mean, std, digits)
    if math.isnan(mean) or math.isnan(std):
        return text
    return f"{text} [{low:.{digits}f}, {high:.{digits}f}]"


def table_metrics(table: pd.DataFrame) -> list[str]:
    """Metric names present in a summary table, in column order."""
    return [c[: -len("_mean")] for c in table.columns if c.endswith("_mean")]


def format_shown(table: pd.DataFrame) -> pd.DataFrame:
    """The formatted frame Markdown and LaTeX show: one 'mean ± std [CI]' cell per metric;
    a row with no finished seed and a diverged one shows "diverged" instead."""
    confidence = table.attrs.get("confidence")
    ci = f"bootstrap {confidence:.0%} CI" if confidence is not None else "bootstrap CI"
    shown = pd.DataFrame({c: table[c] for c in GROUP_COLS if c in table.columns})
    diverged = all_diverged_mask(table).tolist()
    for m in table_metrics(table):
        digits = precision_of(m)
        cells = zip(*(table[f"{m}_{f}"] for f in STAT_FIELDS), strict=True)
        shown[f"{m} (mean ± std [{ci}])"] = [
            DIVERGED if gone else _format_cell(*c, digits)
            for c, gone in zip(cells, diverged, strict=True)
        ]
    for col in ("n_seeds", "n_diverged", "n_missing", "protocol"):
        if col in table.columns:
            shown[col] = table[col].astype(str)
    return shown


def format_markdown(table: pd.DataFrame) -> str:
    """Render a summary table as Markdown (the cells of :func:`format_shown`)."""
    return format_shown(table).to_markdown(index=False, disable_numparse=True)


def write_table(table: pd.DataFrame, stem: Path | str, caption: str | None = None) -> list[Path]:
    """Write ``<stem>.csv`` (full precision), ``<stem>.md`` and ``<stem>.tex``.

    Markdown and LaTeX render the same formatted frame (:func:`format_shown`); returns the
    three paths in that order.
    """
    return write_frame(table, format_shown(table), stem, caption=caption)
