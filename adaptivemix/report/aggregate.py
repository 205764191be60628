"""End-to-end GAN report: finished runs in, tables and figures out.

This is what the workflow's report rule calls. It refuses to mix evaluation protocols
within a dataset (see :func:`check_fingerprints`) before anything is written.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from adaptivemix.report.collect import check_fingerprints, collect_curves, collect_runs
from adaptivemix.report.figures import plot_metric_curves, sample_grid_figure
from adaptivemix.report.tables import drop_unreported, summary_table, write_table


def _sample_choice(runs: pd.DataFrame) -> pd.Series | None:
    """The run whose samples represent a method: lowest finished seed, else lowest seed.

    A diverged run's samples show the collapse rather than the method, so a finished seed
    is preferred; only runs that actually wrote ``samples.png`` qualify.
    """
    have = runs[[(Path(d) / "samples.png").is_file() for d in runs["run_dir"]]]
    if have.empty:
        return None
    have = have.assign(_failed=have["status"] != "ok").sort_values(["_failed", "seed"])
    return have.iloc[0]


def _samples_figure(
    runs: pd.DataFrame, dataset: str, out: Path, method_order: Sequence[str] | None
) -> Path | None:
    """Side-by-side samples of one dataset, one panel per (arch, method) in method order."""
    several_archs = runs["arch"].nunique() > 1
    arch_rank = {a: i for i, a in enumerate(dict.fromkeys(runs["arch"]))}
    methods = list(dict.fromkeys([*(method_order or ()), *runs["method"]]))
    method_rank = {m: i for i, m in enumerate(methods)}
    groups = sorted(
        runs.groupby(["arch", "method"], sort=False),
        key=lambda item: (arch_rank[item[0][0]], method_rank[item[0][1]]),
    )
    panels: dict[str, Path] = {}
    for (arch, method), sub in groups:
        chosen = _sample_choice(sub)
        name = f"{arch}/{method}" if several_archs else str(method)
        if chosen is None:
            warnings.warn(f"{dataset}: no samples.png for {name}; left out", stacklevel=2)
            continue
        panels[f"{name} (seed {chosen['seed']})"] = Path(chosen["run_dir"]) / "samples.png"
    if not panels:
        return None
    return sample_grid_figure(panels, out, f"{dataset}: samples (lowest finished seed)")


def aggregate_gan(
    metrics_paths: Sequence[Path | str],
    tables_dir: Path | str,
    figures_dir: Path | str,
    method_order: Sequence[str] | None = None,
) -> dict[str, list[Path]]:
    """Write per-dataset tables/figures and a combined summary for GAN runs.

    Per dataset: ``gan_<dataset>.csv/.md`` (fid, kid and, where the runs have them, modes
    and kl_modes), ``fid_curve_<dataset>.png/.pdf`` and ``samples_<dataset>.png``; across
    datasets: ``gan_summary.csv/.md`` (a dataset without a metric shows n/a). Returns
    ``{"tables": [...], "figures": [...]}`` with every path written.
    """
    tables_dir, figures_dir = Path(tables_dir), Path(figures_dir)
    runs = collect_runs(metrics_paths)
    if runs.empty:
        raise ValueError("no runs to aggregate")
    other = sorted(set(runs["task"].astype(str)) - {"gan"})
    if other:
        raise ValueError(f"aggregate_gan got runs of other tasks: {other}")
    check_fingerprints(runs)
    curves = collect_curves(metrics_paths)
    summary = summary_table(runs, method_order=method_order)
    written: dict[str, list[Path]] = {"tables": [], "figures": []}
    for dataset in dict.fromkeys(runs["dataset"]):
        part = drop_unreported(summary[summary["dataset"] == dataset])
        written["tables"] += write_table(part, tables_dir / f"gan_{dataset}")
        title = "FID during training (line: mean over seeds)"
        png = plot_metric_curves(
            curves[curves["dataset"] == dataset],
            "fid",
            figures_dir / f"fid_curve_{dataset}.png",
            title,
            method_order=method_order,
        )
        written["figures"] += [png, png.with_suffix(".pdf")]
        samples = _samples_figure(
            runs[runs["dataset"] == dataset],
            dataset,
            figures_dir / f"samples_{dataset}.png",
            method_order,
        )
        if samples is not None:
            written["figures"].append(samples)
    written["tables"] += write_table(summary, tables_dir / "gan_summary")
    return written
