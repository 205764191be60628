"""A sweep's table and figure: a method's final FID (and KID) over its grid of options.

Runs come in with their method names (``adaptivemix@alpha=0.2,noise_std=0.0``; the point
equal to the configured options keeps the plain name, :mod:`adaptivemix.sweeps`). Per grid
point: mean ± std over seeds, and two paired differences over the seeds both finished —
against the configured point (what the option changes) and against the baseline on the
same dataset (what the method gives at that point), each with its bootstrap CI.

The figure draws the metric against the first grid key, a line per combination of the other
keys, error bars the std over seeds, the baseline as a dashed line with its min–max band.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from pathlib import Path

import matplotlib
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from adaptivemix.io import atomic_write
from adaptivemix.report.collect import check_fingerprints, collect_runs
from adaptivemix.report.figures import save_figure
from adaptivemix.report.layouts import CONFIDENCE, _seed_values, format_paired
from adaptivemix.report.staging import staged, unstaged
from adaptivemix.report.stats import N_BOOT, mean_std_ci, paired_difference
from adaptivemix.report.tables import format_mean_std, precision_of
from adaptivemix.report.writers import write_frame
from adaptivemix.sweeps import grid_values, point_names

METRICS = ("fid", "kid")


def grid_points(sweep: dict, configured: dict) -> list[tuple[dict, str]]:
    """(values, method name) per grid point, in the DAG's order (:mod:`adaptivemix.sweeps`)."""
    return list(zip(grid_values(sweep["grid"]), point_names(sweep, configured), strict=True))


def _diff_cell(runs: pd.DataFrame, method: str, other: str, metric: str) -> dict:
    if other not in set(runs["method"]):
        return {"n_pairs": 0, "note": f"no {other} runs"}
    result = paired_difference(
        _seed_values(runs, method, metric), _seed_values(runs, other, metric), CONFIDENCE, N_BOOT
    )
    return result | {"note": "" if result["n_pairs"] else "no pair"}


def _point_cells(
    runs: pd.DataFrame, name: str, reference: str, baseline: str, metric: str
) -> tuple[dict, dict]:
    """(shown cells, CSV values) of one grid point and metric."""
    mine = runs.loc[(runs["method"] == name) & (runs["status"] == "ok"), metric]
    stats = mean_std_ci(mine)
    to_base = _diff_cell(runs, name, baseline, metric)
    to_ref = _diff_cell(runs, name, reference, metric) if name != reference else None
    digits = precision_of(metric)
    shown = {
        metric: format_mean_std(stats["mean"], stats["std"], digits),
        f"{metric} − configured": format_paired(to_ref, digits) if to_ref else "(configured)",
        f"{metric} − {baseline}": format_paired(to_base, digits),
    }
    values = {f"{metric}_{k}": stats[k] for k in ("mean", "std", "n", "ci_low", "ci_high")}
    for label, diff in (("configured", to_ref), (baseline, to_base)):
        for k in ("diff_mean", "ci_low", "ci_high", "n_pairs"):
            values[f"{metric}_vs_{label}_{k}"] = diff.get(k) if diff else None
    return shown, values


def sweep_layout(
    runs: pd.DataFrame, sweep: dict, configured: dict, baseline: str
) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(data, shown, markdown): a row per grid point (see the module docstring)."""
    records, shown_rows = [], []
    reference = sweep["method"]
    for point, name in grid_points(sweep, configured):
        record, shown = {"method": name, **point}, {k: str(v) for k, v in point.items()}
        for m in (m for m in METRICS if m in runs.columns):
            cells, values = _point_cells(runs, name, reference, baseline, m)
            shown |= cells
            record |= values
        records.append(record)
        shown_rows.append(shown)
    data, shown = pd.DataFrame(records), pd.DataFrame(shown_rows)
    legend = (
        f"{sweep['method']} on {sweep['dataset']} over its options {list(sweep['grid'])}. "
        "Cells: mean ± std over seeds; differences: paired over the seeds both finished, "
        f"± std [{CONFIDENCE:.0%} bootstrap CI], * : the CI excludes 0. configured: the "
        f"point the main matrix trains ({configured}); {baseline}: the baseline on the "
        "same dataset and seeds."
    )
    markdown = legend + "\n\n" + shown.to_markdown(index=False, disable_numparse=True) + "\n"
    return data, shown, markdown


def sweep_figure(
    runs: pd.DataFrame, sweep: dict, configured: dict, baseline: str, out: Path,
    metric: str = "fid",
) -> Path:  # fmt: skip
    """PNG (and PDF, and the plotted values as CSV) of ``metric`` over the grid."""
    keys = list(sweep["grid"])
    first, rest = keys[0], keys[1:]
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    plotted = []
    names = {tuple(sorted(v.items())): n for v, n in grid_points(sweep, configured)}
    for other in itertools.product(*(sweep["grid"][k] for k in rest)):
        fixed = dict(zip(rest, other, strict=True))
        label = ", ".join(f"{k}={v}" for k, v in fixed.items()) or sweep["method"]
        xs, means, stds = [], [], []
        for i, value in enumerate(sweep["grid"][first]):
            point = {first: value, **fixed}
            method = names[tuple(sorted(point.items()))]
            stats = mean_std_ci(runs.loc[(runs["method"] == method) & (runs["status"] == "ok"),
                                         metric])  # fmt: skip
            xs.append(i)
            means.append(stats["mean"])
            stds.append(0.0 if math.isnan(stats["std"]) else stats["std"])
            plotted.append({**point, "method": method, "mean": stats["mean"],
                            "std": stats["std"], "n_seeds": stats["n"]})  # fmt: skip
        ax.errorbar(xs, means, yerr=stds, marker="o", capsize=3, label=label)
    _draw_baseline(ax, runs, baseline, metric)
    ax.set_xticks(range(len(sweep["grid"][first])), [str(v) for v in sweep["grid"][first]])
    ax.set_xlabel(first)
    ax.set_ylabel(f"{metric.upper()} (lower is better)")
    ax.set_title(f"{sweep['method']} on {sweep['dataset']}: {metric.upper()} over {keys}")
    ax.legend(fontsize=8)
    png = save_figure(fig, out)
    plt.close(fig)
    csv = pd.DataFrame(plotted).to_csv(index=False)
    atomic_write(out.with_suffix(".csv"), lambda f: f.write(csv.encode()))
    return png


def _draw_baseline(ax, runs: pd.DataFrame, baseline: str, metric: str) -> None:
    values = runs.loc[(runs["method"] == baseline) & (runs["status"] == "ok"), metric].dropna()
    if values.empty:
        return
    ax.axhline(values.mean(), color="grey", linestyle="--", label=f"{baseline} (n={len(values)})")
    ax.axhspan(values.min(), values.max(), color="grey", alpha=0.15)


def aggregate_sweep(
    metrics_paths: Sequence[Path | str], sweep: dict, configured: dict, baseline: str,
    tables_dir: Path | str, figures_dir: Path | str,
) -> dict[str, list[Path]]:  # fmt: skip
    """``tables/sweep_<name>.{csv,md,tex}`` and ``figures/sweep_<name>.{png,pdf,csv}``."""
    runs = collect_runs(metrics_paths)
    check_fingerprints(runs)
    finals = (Path(tables_dir), Path(figures_dir))
    stem = f"sweep_{sweep['name']}"
    with staged(*finals) as (tables, figures):
        data, shown, markdown = sweep_layout(runs, sweep, configured, baseline)
        caption = f"Sweep {sweep['name']}: {sweep['method']} over {list(sweep['grid'])}"
        written = {"tables": write_frame(data, shown, tables / stem, caption, markdown)}
        png = sweep_figure(runs, sweep, configured, baseline, figures / f"{stem}.png")
        written["figures"] = [png, png.with_suffix(".pdf"), png.with_suffix(".csv")]
    return {kind: unstaged(paths, (tables, figures), finals) for kind, paths in written.items()}
