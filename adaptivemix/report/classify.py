"""Reports of the classification and OOD tracks: paper-layout tables and ROC figures.

Accuracy tables (one per in-distribution set): a row per method, columns clean / attack
accuracies in %, mean ± std [CI] over seeds, as the paper's robustness table. OOD tables
(one per in-distribution set): for each metric a block with a row per (detector, training
method) and a column per OOD set, so "with and without AdaptiveMix" sit next to each
other under every detector. The long CSV beside keeps every statistic at full precision.
Runs evaluated under different protocols are never put in one column. Diverged runs are
counted (``n_diverged``), never averaged; a method with no finished seed is a row showing
"diverged", and figures leave it out with a note (:mod:`adaptivemix.report.diverged`). The
files appear together or not at all (:func:`adaptivemix.report.staging.staged`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import matplotlib
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from adaptivemix.io import atomic_write, read_json
from adaptivemix.report.bars import bar_figure
from adaptivemix.report.collect import (
    PROTOCOL_FIELDS,
    check_fingerprints,
    collect_runs,
    flatten_protocol,
    protocol_mismatch,
)
from adaptivemix.report.diverged import DIVERGED, all_diverged, diverged_groups, skipped_note
from adaptivemix.report.figures import add_note, log_note, placeholder_figure, save_figure
from adaptivemix.report.layouts import paired_layout
from adaptivemix.report.selection_bias import selection_bias_table
from adaptivemix.report.staging import staged, unstaged
from adaptivemix.report.stats import mean_std_ci
from adaptivemix.report.tables import format_mean_std, rank_order, summary_table, write_table
from adaptivemix.report.writers import write_frame

ACC_SUFFIX = "_acc"
OOD_METRICS = ("auroc", "fpr95", "tnr95", "detection_acc", "aupr_in", "aupr_out")
OOD_TITLES = {
    "auroc": "AUROC (%) ↑",
    "fpr95": "FPR at 95% TPR (%) ↓",
    "tnr95": "TNR at 95% TPR (%) ↑",
    "detection_acc": "Detection accuracy (%) ↑",
    "aupr_in": "AUPR-in (%) ↑",
    "aupr_out": "AUPR-out (%) ↑",
}
OOD_KEY = ("dataset", "arch", "detector", "method", "ood_set")
PAIRED_OOD = ("auroc", "fpr95")  # the paper's OOD columns
#: benchmark -> how its metrics are computed (adaptivemix.ood.metrics); others: HARNESS_NOTE
RULE_NOTES = {
    "openood-v1.5": "OpenOOD v1.5's formulas (AUPR: trapezoid area under the PR curve)",
    "odin": "ODIN's calMetric threshold sweep (FPR95: mean FPR over ID TPR 94.95-95.05%)",
}
HARNESS_NOTE = "FPR95 at the first ROC point reaching TPR 95%, AUPR as average precision"


def accuracy_metrics(runs: pd.DataFrame) -> list[str]:
    """clean_acc, then each attack's accuracy in order of appearance, then val_acc: those
    some run has a value of; for classifier runs that all diverged (no values), every
    accuracy column (their cells then say "diverged")."""
    named = [c for c in runs.columns if c.endswith(ACC_SUFFIX)]
    finished = runs[runs["status"] == "ok"]
    accs = [c for c in named if finished[c].notna().any()]
    if not accs and len(runs) and set(runs["task"]) == {"classify"}:
        accs = named
    middle = [c for c in accs if c not in ("clean_acc", "val_acc")]
    return [c for c in ("clean_acc", *middle, "val_acc") if c in accs]


def as_percent(runs: pd.DataFrame, metrics: Sequence[str]) -> pd.DataFrame:
    """``runs`` with the accuracy columns ``metrics`` in %, as the paper reports them."""
    return runs.assign(**{m: runs[m] * 100.0 for m in metrics})


def accuracy_tables(
    metrics_paths: Sequence[Path | str],
    tables_dir: Path,
    figures_dir: Path,
    method_order: Sequence[str] | None,
    baseline: str,
) -> list[Path]:
    """Accuracy tables per dataset and overall, each method paired with ``baseline``, and a
    bar figure of clean accuracy."""
    runs = collect_runs(metrics_paths)
    check_fingerprints(runs)
    metrics = accuracy_metrics(runs)
    runs = as_percent(runs, metrics)
    summary = summary_table(runs, metrics=metrics, method_order=method_order)
    written = []
    for dataset in dict.fromkeys(summary["dataset"]):
        part = summary[summary["dataset"] == dataset]
        part.attrs = summary.attrs
        caption = f"Classification on {dataset}: accuracy (%)"
        written += write_table(part, tables_dir / f"classify_{dataset}", caption)
    written += write_table(summary, tables_dir / "classify_summary", "Classification: accuracy (%)")
    if "clean_acc" not in metrics:  # runs without accuracies: nothing to pair or plot
        return written
    paired = [m for m in metrics if m != "val_acc"]
    data, shown, markdown = paired_layout(runs, paired, baseline, method_order)
    caption = f"Accuracy (%): each method minus {baseline} on the same seeds"
    written += write_frame(data, shown, tables_dir / "classify_paired", caption, markdown)
    title = "Clean test accuracy (%)"
    return [*written, bar_figure(summary, "clean_acc", figures_dir / "bars_clean_acc", title)]


def collect_ood(ood_paths: Sequence[Path | str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Long frames: one row per (run, detector, OOD set) with metrics; ROC points likewise."""
    rows, roc_rows = [], []
    for path in map(Path, ood_paths):
        record = read_json(path)
        run = {k: record[k] for k in ("dataset", "arch", "method", "seed", "status")}
        grid = record["roc_fpr_grid"]
        for r in record["results"]:
            key = {**run, "detector": r["detector"], "ood_set": r["ood_set"]}
            proto = r["protocol"]
            rows.append(
                key
                | {"group": proto["group"], "benchmark": proto["benchmark"]}
                | {"protocol": proto["label"], "protocol_fingerprint": r["protocol_fingerprint"]}
                | {PROTOCOL_FIELDS: flatten_protocol(proto)}
                | {m: r["metrics"].get(m) for m in OOD_METRICS}
            )
            for fpr, tpr in zip(grid, r["roc_tpr"] or [], strict=False):
                roc_rows.append(key | {"fpr": fpr, "tpr": tpr})
    info = ["seed", "status", "group", "benchmark", "protocol", "protocol_fingerprint"]
    info.append(PROTOCOL_FIELDS)
    frame = pd.DataFrame(rows, columns=[*OOD_KEY, *info, *OOD_METRICS])
    for m in OOD_METRICS:
        frame[m] = pd.to_numeric(frame[m]).astype(float) * 100.0
    return frame, pd.DataFrame(roc_rows, columns=[*OOD_KEY, "seed", "fpr", "tpr"])


def _check_ood_protocols(frame: pd.DataFrame) -> None:
    """Refuse OOD results of one (ID set, OOD set) column measured under different protocols.

    The message is :func:`protocol_mismatch`'s, as for accuracies and GAN metrics: it names
    the differing fields of the flattened protocols :func:`collect_ood` keeps per row.
    """
    for (dataset, ood_set), rows in frame.groupby(["dataset", "ood_set"], sort=False):
        if rows["protocol_fingerprint"].nunique(dropna=False) > 1:
            where = f"OOD results for {dataset} vs {ood_set}"
            run_columns = ("detector", "method", "seed")
            raise ValueError(protocol_mismatch(where, rows, run_columns))


def ood_summary(frame: pd.DataFrame, method_order: Sequence[str] | None) -> pd.DataFrame:
    """Mean/std/CI over finished seeds per (dataset, arch, detector, method, OOD set)."""
    records = []
    for key, rows in frame.groupby(list(OOD_KEY), sort=False):
        ok = rows[rows["status"] == "ok"]
        record = dict(zip(OOD_KEY, key, strict=True))
        record |= {"group": rows["group"].iloc[0], "benchmark": rows["benchmark"].iloc[0]}
        record |= {"protocol": rows["protocol"].iloc[0]}
        for m in OOD_METRICS:
            stats = mean_std_ci(ok[m])
            record |= {f"{m}_{f}": stats[f] for f in ("mean", "std", "ci_low", "ci_high")}
        record |= {"n_seeds": int(ok[list(OOD_METRICS)].notna().all(axis=1).sum())}
        record |= {"n_diverged": int((rows["status"] != "ok").sum())}
        records.append(record)
    table = pd.DataFrame(records)
    ranks = {c: rank_order(frame[c]) for c in ("dataset", "arch", "detector", "ood_set")}
    ranks["method"] = rank_order(frame["method"], method_order or ())
    order = table.apply(lambda r: tuple(ranks[c][r[c]] for c in OOD_KEY), axis=1)
    return table.iloc[sorted(range(len(table)), key=lambda i: order.iloc[i])].reset_index(drop=True)


def ood_markdown(table: pd.DataFrame) -> str:
    """One block per metric: rows detector × method, a column per OOD set (near sets first)."""
    sets = list(
        dict.fromkeys(table.sort_values("group", kind="stable", key=_near_first)["ood_set"])
    )
    blocks = []
    for m in OOD_METRICS:
        cells = table.assign(cell=ood_cells(table, m))
        pivot = cells.pivot_table(
            index=["detector", "method"], columns="ood_set", values="cell", aggfunc="first",
            sort=False,
        )[sets]  # fmt: skip
        blocks.append(f"### {OOD_TITLES[m]}\n\n" + pivot.reset_index().to_markdown(index=False))
    protocols = "\n".join(
        f"- {s}: {table[table['ood_set'] == s]['protocol'].iloc[0]}" for s in sets
    )
    seeds = int(table["n_seeds"].min())
    head = f"Mean ± std over seeds (n = {seeds} per cell at least); OOD is the positive class.\n"
    head += "diverged: every seed of the method diverged (none finished).\n"
    for benchmark in dict.fromkeys(table["benchmark"]):
        head += f"Metrics of {benchmark} sets: {RULE_NOTES.get(benchmark, HARNESS_NOTE)}.\n"
    return head + "\n\n".join(blocks) + "\n\nProtocols:\n" + protocols + "\n"


def ood_cells(table: pd.DataFrame, metric: str) -> list[str]:
    """'mean ± std' of ``metric`` per row, "diverged" for a row with no finished seed."""
    mean, std = table[f"{metric}_mean"], table[f"{metric}_std"]
    gone = [all_diverged(row) for _, row in table.iterrows()]
    cells = zip(mean, std, gone, strict=True)
    return [DIVERGED if g else format_mean_std(a, b, 2) for a, b, g in cells]


def _near_first(groups: pd.Series) -> pd.Series:
    return groups.map({"near": 0, "far": 1})


def roc_figure(roc: pd.DataFrame, dataset: str, out: Path, method_order, note: str = "") -> Path:
    """ROC curves (mean TPR over seeds at each FPR): rows detectors, columns OOD sets.

    Diverged runs have no ROC; ``note`` (e.g. the methods that diverged on every seed) is
    printed at the foot and logged, and with no curve at all the figure is a
    :func:`~adaptivemix.report.figures.placeholder_figure`.
    """
    data = roc[roc["dataset"] == dataset]
    mean = data.groupby(["detector", "ood_set", "method", "fpr"], sort=False)["tpr"]
    curves = mean.agg(["mean", "count"]).rename(columns={"count": "n_seeds"}).reset_index()
    if data.empty:
        title = f"{dataset}: ROC, OOD positive"
        png = placeholder_figure(out, title, note or "no ROC of a finished run to draw")
        empty = curves.rename(columns={"mean": "tpr_mean"}).to_csv(index=False).encode()
        atomic_write(png.with_suffix(".csv"), lambda f: f.write(empty))
        return png
    detectors, sets = list(dict.fromkeys(data["detector"])), list(dict.fromkeys(data["ood_set"]))
    methods = list(dict.fromkeys([*(method_order or ()), *data["method"]]))
    methods = [m for m in methods if m in set(data["method"])]
    fig, axes = plt.subplots(
        len(detectors), len(sets), figsize=(2.6 * len(sets), 2.4 * len(detectors)),
        squeeze=False, sharex=True, sharey=True,
    )  # fmt: skip
    try:
        for i, det in enumerate(detectors):
            for j, name in enumerate(sets):
                ax = axes[i][j]
                for method in methods:
                    c = curves[(curves.detector == det) & (curves.ood_set == name)]
                    c = c[c.method == method]
                    ax.plot(c["fpr"], c["mean"], lw=1.2, label=method)
                ax.plot([0, 1], [0, 1], color="grey", lw=0.5, ls=":")
                ax.set_title(f"{det} vs {name}", fontsize=8)
                ax.tick_params(labelsize=7)
        for ax in axes[-1]:
            ax.set_xlabel("FPR (ID flagged OOD)", fontsize=7)
        for ax in axes[:, 0]:
            ax.set_ylabel("TPR (OOD detected)", fontsize=7)
        axes[0][0].legend(fontsize=6)
        fig.suptitle(f"{dataset}: ROC, OOD positive (mean over seeds)")
        add_note(fig, note)
        png = save_figure(fig, Path(out).with_suffix(".png"))
    finally:
        plt.close(fig)
    log_note(png, note)
    data_csv = curves.rename(columns={"mean": "tpr_mean"}).to_csv(index=False).encode()
    atomic_write(png.with_suffix(".csv"), lambda f: f.write(data_csv))
    return png


def ood_paired(frame: pd.DataFrame, baseline: str, method_order) -> tuple:
    """AUROC and FPR@95 of each method minus ``baseline``'s, per (OOD set, detector), paired
    over seeds: the OOD frame reshaped to :func:`paired_layout`'s runs (dataset = "ID vs
    OOD set", arch = detector)."""
    runs = frame.assign(
        task="ood",
        dataset=frame["dataset"] + " vs " + frame["ood_set"],
        arch=frame["detector"],
    )
    data, shown, markdown = paired_layout(runs, PAIRED_OOD, baseline, method_order)
    note = "Rows: dataset = in-distribution vs OOD set, arch = detector.\n\n"
    return data, shown, note + markdown


def ood_reports(
    ood_paths: Sequence[Path | str], tables_dir: Path, figures_dir: Path, method_order,
    baseline: str,
) -> list[Path]:  # fmt: skip
    frame, roc = collect_ood(ood_paths)
    _check_ood_protocols(frame)
    summary = ood_summary(frame, method_order)
    written = []
    for dataset in dict.fromkeys(summary["dataset"]):
        part = summary[summary["dataset"] == dataset]
        caption = f"OOD detection, in-distribution {dataset} (%)"
        stem = tables_dir / f"ood_{dataset}"
        written += write_frame(part, ood_shown(part), stem, caption, ood_markdown(part))
        note = skipped_note(diverged_groups(frame[frame["dataset"] == dataset], ["method"]))
        out = figures_dir / f"roc_{dataset}.png"
        written.append(roc_figure(roc, dataset, out, method_order, note))
        data, shown, markdown = ood_paired(
            frame[frame["dataset"] == dataset], baseline, method_order
        )
        caption = f"OOD detection on {dataset}: each method minus {baseline}, same seeds"
        written += write_frame(data, shown, tables_dir / f"ood_paired_{dataset}", caption, markdown)
    return written


def ood_shown(table: pd.DataFrame) -> pd.DataFrame:
    """One flat table for LaTeX: a row per (detector, method, OOD set), AUROC and FPR@95."""
    shown = table[["detector", "method", "ood_set", "group"]].copy()
    for m in PAIRED_OOD:
        shown[OOD_TITLES[m]] = ood_cells(table, m)
    shown["n_seeds"] = table["n_seeds"].astype(str)
    shown["n_diverged"] = table["n_diverged"].astype(str)
    return shown


def aggregate_classify(
    metrics_paths: Sequence[Path | str],
    ood_paths: Sequence[Path | str],
    tables_dir: Path | str,
    figures_dir: Path | str,
    method_order: Sequence[str] | None = None,
    baseline: str = "erm",
) -> list[Path]:
    """Accuracy tables for every classification run, OOD tables and ROC figures, each
    method paired with ``baseline`` on the same seeds, and the selection-bias table. Nothing
    is written unless everything is (:func:`adaptivemix.report.staging.staged`)."""
    finals = (Path(tables_dir), Path(figures_dir))
    with staged(*finals) as (tables, figures):
        args = (metrics_paths, ood_paths, tables, figures, method_order, baseline)
        written = _write_classify(*args)
    return unstaged(written, (tables, figures), finals)


def _write_classify(
    metrics_paths, ood_paths, tables_dir: Path, figures_dir: Path, method_order, baseline: str
) -> list[Path]:
    written = accuracy_tables(metrics_paths, tables_dir, figures_dir, method_order, baseline)
    written += selection_bias_table(metrics_paths, tables_dir / "selection_bias", method_order)
    if ood_paths:
        written += ood_reports(ood_paths, tables_dir, figures_dir, method_order, baseline)
    return written
