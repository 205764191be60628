"""Grouped bar figures of one metric: a group per dataset, a bar per method.

Bar height is the mean over seeds, the error bar the bootstrap CI of the mean (asymmetric;
see :mod:`adaptivemix.report.stats` on how narrow it is with 3 seeds). Every method keeps
one colour in every group, and the legend gives the seed count behind its bars. The values
drawn are written as a CSV beside the PNG/PDF so the figure can be checked and redrawn.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from adaptivemix.io import atomic_write
from adaptivemix.report.diverged import all_diverged_mask, skipped_note
from adaptivemix.report.figures import add_note, log_note, placeholder_figure, save_figure
from adaptivemix.report.layouts import arrow
from adaptivemix.report.tables import rank_order, table_metrics

BAR_COLUMNS = ("group", "dataset", "arch", "method", "mean", "ci_low", "ci_high", "n_seeds")


def bar_data(
    summary: pd.DataFrame, metric: str, method_order: Sequence[str] | None = None
) -> pd.DataFrame:
    """The values :func:`bar_figure` draws (:data:`BAR_COLUMNS`), in drawing order.

    Rows with no mean for ``metric`` (dataset without it, no finished seed) are left out.
    ``group`` is the dataset, or "dataset/arch" when the summary has several architectures.
    """
    data = _bar_rows(summary, metric, method_order)
    if data.empty:
        raise ValueError(f"metric {metric!r} has no values in the summary to plot")
    return data


def _group_labels(rows: pd.DataFrame, several_archs: bool) -> pd.Series:
    group = rows["dataset"].astype(str)
    return group + "/" + rows["arch"].astype(str) if several_archs else group


def _bar_rows(
    summary: pd.DataFrame, metric: str, method_order: Sequence[str] | None
) -> pd.DataFrame:
    """:func:`bar_data`, possibly empty (no row has a value)."""
    available = table_metrics(summary)
    if metric not in available:
        raise ValueError(f"metric {metric!r} not in the summary; available: {available}")
    rows = summary[summary[f"{metric}_mean"].notna()].reset_index(drop=True)
    several_archs = summary["arch"].nunique() > 1
    group = _group_labels(rows, several_archs)
    seeds = rows["n_seeds"] if "n_seeds" in rows.columns else pd.Series(np.nan, rows.index)
    data = pd.DataFrame(
        {
            "group": group,
            "dataset": rows["dataset"],
            "arch": rows["arch"],
            "method": rows["method"],
            **{f: rows[f"{metric}_{f}"] for f in ("mean", "ci_low", "ci_high")},
            "n_seeds": seeds,
        }
    )
    groups = rank_order(data["group"])
    methods = rank_order(summary["method"], method_order or ())
    keys = zip(data["group"], data["method"], strict=True)
    order = sorted(range(len(data)), key=[(groups[g], methods[m]) for g, m in keys].__getitem__)
    return data.iloc[order].reset_index(drop=True)


def _legend_label(method: str, seeds: pd.Series) -> str:
    """'method (n=3)', or 'method (n=2–3)' when its seed counts differ across groups."""
    counts = sorted({int(n) for n in seeds if not pd.isna(n)})
    if not counts:
        return str(method)
    span = str(counts[0]) if len(counts) == 1 else f"{counts[0]}–{counts[-1]}"
    return f"{method} (n={span})"


def _errors(rows: pd.DataFrame) -> np.ndarray:
    """Asymmetric error lengths [below, above]; none (0) where the CI is undefined."""
    below = (rows["mean"] - rows["ci_low"]).to_numpy(dtype=float)
    above = (rows["ci_high"] - rows["mean"]).to_numpy(dtype=float)
    errors = np.vstack([below, above])
    return np.clip(np.nan_to_num(errors, nan=0.0), 0.0, None)


def method_colors(
    summary: pd.DataFrame, method_order: Sequence[str] | None = None
) -> dict[Hashable, str]:
    """A colour per method, by its rank in ``method_order`` then appearance.

    Derived from the whole summary, so a method keeps its colour in every figure drawn from
    it, also where another method has no bar.
    """
    ranks = rank_order(summary["method"], method_order or ())
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    if len(ranks) > len(palette):  # more methods than default colours: 20 distinct ones
        palette = [matplotlib.colors.to_hex(c) for c in plt.get_cmap("tab20").colors]
    return {m: palette[i % len(palette)] for m, i in ranks.items()}


def _draw(
    ax: plt.Axes, data: pd.DataFrame, metric: str, colors: Mapping[Hashable, str], note: str
) -> None:
    """Bars at group position + method offset; one legend entry per method."""
    groups = list(dict.fromkeys(data["group"]))
    methods = list(dict.fromkeys(data["method"]))
    width = 0.8 / len(methods)
    position = {g: i for i, g in enumerate(groups)}
    for k, method in enumerate(methods):
        rows = data[data["method"] == method]
        x = np.array([position[g] for g in rows["group"]]) - 0.4 + width * (k + 0.5)
        ax.bar(
            x, rows["mean"], width, yerr=_errors(rows), capsize=3,
            color=colors[method], label=_legend_label(method, rows["n_seeds"]),
        )  # fmt: skip
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel(f"{metric} {arrow(metric)}")
    ax.legend(fontsize=7, title=note, title_fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1))
    ax.grid(axis="y", alpha=0.3)


def bar_figure(
    summary: pd.DataFrame,
    metric: str,
    out_png: Path | str,
    title: str,
    method_order: Sequence[str] | None = None,
) -> Path:
    """Grouped bars of ``metric``; writes ``<out>.png``, ``<out>.pdf`` and ``<out>.csv``.

    ``summary`` is :func:`adaptivemix.report.tables.summary_table`'s frame. A group per
    dataset (per dataset/arch with several architectures), a bar per method in
    ``method_order`` (others after, by appearance), one colour per method throughout. Bars
    are means, error bars the bootstrap CI (``<metric>_ci_low/_ci_high``); the legend shows
    seeds per method. A metric the summary lacks raises ``ValueError`` naming the metric
    and the available ones. Methods with no finished seed in a group, all runs diverged,
    are named at the foot and in the log (:func:`diverged_note`); with no bar at all the
    figure is a :func:`~adaptivemix.report.figures.placeholder_figure`. Returns the PNG path.
    """
    data = _bar_rows(summary, metric, method_order)
    note = diverged_note(summary)
    if data.empty:
        png = placeholder_figure(out_png, title, note or f"no value of {metric} to draw")
        empty = data.to_csv(index=False).encode()
        atomic_write(png.with_suffix(".csv"), lambda f: f.write(empty))
        return png
    n_groups, n_methods = data["group"].nunique(), data["method"].nunique()
    width = max(4.0, 0.9 + n_groups * (0.5 + 0.35 * n_methods))
    fig, ax = plt.subplots(figsize=(width, 3.8))
    try:
        confidence = summary.attrs.get("confidence", 0.95)
        legend = f"error bars: bootstrap {confidence:.0%} CI\nof the mean over seeds"
        _draw(ax, data, metric, method_colors(summary, method_order), legend)
        ax.set_title(title)
        add_note(fig, note)
        png = save_figure(fig, Path(out_png).with_suffix(".png"))
    finally:
        plt.close(fig)
    log_note(png, note)
    plotted = data.to_csv(index=False).encode()
    atomic_write(png.with_suffix(".csv"), lambda f: f.write(plotted))
    return png


def diverged_note(summary: pd.DataFrame) -> str:
    """'diverged on every seed, no bar: digits/blowup' for the summary rows with no finished
    seed and a diverged run ('' when none)."""
    rows = summary[all_diverged_mask(summary)]
    several_archs = summary["arch"].nunique() > 1
    labels = _group_labels(rows, several_archs) + "/" + rows["method"].astype(str)
    return skipped_note(labels, "no bar")
