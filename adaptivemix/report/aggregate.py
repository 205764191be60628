"""End-to-end GAN report: finished runs in, tables and figures out.

This is what the workflow's ``aggregate_gan`` rule calls. It refuses to mix evaluation
protocols within a dataset (see :func:`check_fingerprints`) before anything is written.

Per dataset: ``gan_<d>`` (every metric, mean ± std [bootstrap CI]), ``fid_curve_<d>`` and
``shrinkage_curve_<d>`` (over training, seed bands), ``shrinkage_projection_<d>`` (the
final D's features in 2-D) and ``samples_<d>``. Across datasets: ``gan_summary``,
``generation`` (the paper's layout, methods × datasets), ``gan_paired`` (each method
against its baseline on the same seeds), ``fid_trend`` (whether each FID curve still falls,
is flat or turned at the end: :mod:`adaptivemix.report.trend`) and ``bars_fid``.

Runs that diverged are counted, never averaged (:mod:`adaptivemix.report.diverged`): a
method whose every seed diverged is a table row that says so, and figures draw finished
runs only, naming what they leave out. The files appear together or not at all
(:func:`adaptivemix.report.staging.staged`).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from adaptivemix.report.bars import bar_figure
from adaptivemix.report.collect import check_fingerprints, collect_curves, collect_runs
from adaptivemix.report.diverged import OK, diverged_groups, skipped_note
from adaptivemix.report.figures import plot_metric_curves, sample_grid_figure
from adaptivemix.report.layouts import generation_layout, paired_layout
from adaptivemix.report.shrinkage import projection_figure
from adaptivemix.report.staging import staged, unstaged
from adaptivemix.report.tables import (
    CORE_METRICS,
    drop_unreported,
    reported_metrics,
    summary_table,
    write_table,
)
from adaptivemix.report.trend import curve_trends, trend_layout
from adaptivemix.report.writers import write_frame

SAMPLES = "samples.png"
FEATURES = "d_features.npz"
SPREAD = "spread_vs_noise"
CURVES = {  # metric -> (file prefix, title)
    "fid": ("fid_curve", "FID during training (line: mean over seeds)"),
    SPREAD: (
        "shrinkage_curve",
        "Feature-space shrinkage during training: spread of D's real features / distance "
        "to its features of fixed noise images (lower: tighter)",
    ),
}


def _representative(runs: pd.DataFrame, filename: str) -> pd.Series | None:
    """The run that represents a method: its lowest finished seed that wrote ``filename``.

    A diverged run's outputs show the collapse (or NaN features) rather than the method, so
    only finished runs qualify; None when there is none.
    """
    have = runs[[(Path(d) / filename).is_file() for d in runs["run_dir"]]]
    have = have[have["status"] == OK]
    return None if have.empty else have.sort_values("seed").iloc[0]


def _panels(
    runs: pd.DataFrame, filename: str, method_order: Sequence[str] | None
) -> tuple[dict[str, Path], str] | None:
    """(panel title -> file, note), one panel per (arch, method) in method order (arch
    shown if several); None when no run has the file (runs made before it existed).

    Methods whose every run diverged are named in the note; finished methods without the
    file are left out with a warning.
    """
    if not any((Path(d) / filename).is_file() for d in runs["run_dir"]):
        return None
    several_archs = runs["arch"].nunique() > 1
    arch_rank = {a: i for i, a in enumerate(dict.fromkeys(runs["arch"]))}
    methods = list(dict.fromkeys([*(method_order or ()), *runs["method"]]))
    method_rank = {m: i for i, m in enumerate(methods)}
    groups = sorted(
        runs.groupby(["arch", "method"], sort=False),
        key=lambda item: (arch_rank[item[0][0]], method_rank[item[0][1]]),
    )
    panels: dict[str, Path] = {}
    diverged = []
    for (arch, method), sub in groups:
        chosen = _representative(sub, filename)
        name = f"{arch}/{method}" if several_archs else str(method)
        if chosen is None and OK not in set(sub["status"]):
            diverged.append(name)
        elif chosen is None:
            warnings.warn(f"no {filename} for {name}; left out", stacklevel=2)
        else:
            panels[f"{name} (seed {chosen['seed']})"] = Path(chosen["run_dir"]) / filename
    return panels, skipped_note(diverged, "no panel")


def _curve_note(runs: pd.DataFrame) -> str:
    """Methods that diverged on every seed: their lines end at their last evaluation."""
    several_archs = runs["arch"].nunique() > 1
    labels = diverged_groups(runs, ["arch", "method"] if several_archs else ["method"])
    return skipped_note(labels, "drawn up to their last evaluation (if any)")


def _dataset_figures(
    runs: pd.DataFrame, curves: pd.DataFrame, dataset: str, figures_dir: Path, order
) -> list[Path]:
    written = []
    for metric, (prefix, title) in CURVES.items():
        data = curves[(curves["dataset"] == dataset) & (curves["metric"] == metric)]
        if data.empty and metric not in runs.columns:  # not measured by these runs
            continue
        out = figures_dir / f"{prefix}_{dataset}.png"
        png = plot_metric_curves(data, metric, out, title, order, _curve_note(runs))
        written += [png, png.with_suffix(".pdf"), png.with_suffix(".csv")]
    samples = _panels(runs, SAMPLES, order)
    if samples is not None:
        title = f"{dataset}: samples (lowest finished seed)"
        out = figures_dir / f"samples_{dataset}.png"
        written.append(sample_grid_figure(*samples[:1], out, title, note=samples[1]))
    features = _panels(runs, FEATURES, order)
    if features is not None:
        title = f"{dataset}: D's features of real and generated images (2-D PCA per panel)"
        out = figures_dir / f"shrinkage_projection_{dataset}.png"
        dirs = {name: path.parent for name, path in features[0].items()}
        png = projection_figure(dirs, out, title, note=features[1])
        written += [png, png.with_suffix(".pdf"), png.with_suffix(".csv")]
    return written


def _cross_dataset_tables(
    runs: pd.DataFrame, summary: pd.DataFrame, tables_dir: Path, baseline: str, order
) -> list[Path]:
    data, shown, markdown = generation_layout(summary)
    caption = "Generation: mean ± std over seeds, methods × datasets"
    written = write_frame(data, shown, tables_dir / "generation", caption, markdown)
    # every run diverged: fid and kid, whose cells then say so
    metrics = [m for m in reported_metrics(runs) if runs[m].notna().any()] or list(CORE_METRICS)
    data, shown, markdown = paired_layout(runs, metrics, baseline, order)
    caption = f"Each method minus {baseline} on the same seeds (bootstrap 95% CI)"
    written += write_frame(data, shown, tables_dir / "gan_paired", caption, markdown)
    return written + write_table(summary, tables_dir / "gan_summary", "GAN runs: every metric")


def aggregate_gan(
    metrics_paths: Sequence[Path | str],
    tables_dir: Path | str,
    figures_dir: Path | str,
    method_order: Sequence[str] | None = None,
    baseline: str = "vanilla",
) -> dict[str, list[Path]]:
    """Write the GAN track's tables and figures (see the module docstring for the list).

    Returns ``{"tables": [...], "figures": [...]}`` with every path written. Nothing is
    written unless everything is (:func:`adaptivemix.report.staging.staged`).
    """
    tables_dir, figures_dir = Path(tables_dir), Path(figures_dir)
    runs = collect_runs(metrics_paths)
    if runs.empty:
        raise ValueError("no runs to aggregate")
    other = sorted(set(runs["task"].astype(str)) - {"gan"})
    if other:
        raise ValueError(f"aggregate_gan got runs of other tasks: {other}")
    check_fingerprints(runs)
    finals = (tables_dir, figures_dir)
    with staged(*finals) as temps:
        written = _write_gan(runs, metrics_paths, *temps, method_order, baseline)
    return {kind: unstaged(paths, temps, finals) for kind, paths in written.items()}


def _write_gan(
    runs: pd.DataFrame, metrics_paths, tables_dir: Path, figures_dir: Path, method_order,
    baseline: str,
) -> dict[str, list[Path]]:  # fmt: skip
    curves = collect_curves(metrics_paths)
    summary = summary_table(runs, method_order=method_order)
    written: dict[str, list[Path]] = {"tables": [], "figures": []}
    for dataset in dict.fromkeys(runs["dataset"]):
        part = drop_unreported(summary[summary["dataset"] == dataset])
        part.attrs = summary.attrs
        written["tables"] += write_table(part, tables_dir / f"gan_{dataset}", f"GAN: {dataset}")
        subset = runs[runs["dataset"] == dataset]
        written["figures"] += _dataset_figures(subset, curves, dataset, figures_dir, method_order)
    written["tables"] += _cross_dataset_tables(runs, summary, tables_dir, baseline, method_order)
    data, shown, markdown = trend_layout(curve_trends(curves, "fid", method_order=method_order))
    caption = "Where each FID curve stands at the end of training"
    written["tables"] += write_frame(data, shown, tables_dir / "fid_trend", caption, markdown)
    fid = figures_dir / "bars_fid.png"
    written["figures"] += [bar_figure(summary, "fid", fid, "FID (lower is better)", method_order)]
    return written
