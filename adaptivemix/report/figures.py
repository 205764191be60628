"""Figures: metric-vs-step curves with seed bands, and side-by-side sample grids.

Figures are rendered headless (Agg) into memory and written atomically, so a crashed or
interrupted job never leaves a truncated PNG/PDF that a later step would take as done.
What a figure leaves out (e.g. methods that diverged on every seed) is said in a note at its
foot and in a line on stderr (the job's log); a figure with nothing to draw is still written,
as a page saying why (:func:`placeholder_figure`), since the workflow expects the file.
"""

from __future__ import annotations

import io
import sys
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from PIL import Image

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from adaptivemix.io import atomic_write

BAND_NOTE = "shaded: min–max over seeds"
LINESTYLES = ("-", "--", ":", "-.")
MAX_PANELS_PER_ROW = 5  # sample grids wrap into rows beyond this


def _save(fig: Figure, path: Path, fmt: str) -> Path:
    """Render to memory, then write atomically; no timestamp so PDFs are reproducible."""
    buf = io.BytesIO()
    metadata = {"CreationDate": None} if fmt == "pdf" else None
    fig.savefig(buf, format=fmt, dpi=150, bbox_inches="tight", metadata=metadata)
    data = buf.getvalue()
    return atomic_write(path, lambda f: f.write(data))


def save_figure(fig: Figure, png: Path) -> Path:
    """Write ``fig`` as ``png`` and as a PDF beside it (both atomically); returns the PNG."""
    _save(fig, png, "png")
    _save(fig, png.with_suffix(".pdf"), "pdf")
    return png


def log_note(path: Path | str, note: str) -> None:
    """One line on stderr (the aggregation job's log): which figure left what out."""
    if note:
        print(f"{Path(path).name}: {note}", file=sys.stderr)


def add_note(fig: Figure, note: str) -> None:
    """``note`` in small type at the figure's foot (the tight bounding box keeps it)."""
    if note:
        fig.text(0.01, -0.02, note, fontsize=7, ha="left", va="top", wrap=True)


def placeholder_figure(png: Path | str, title: str, note: str, pdf: bool = True) -> Path:
    """A page with ``title`` and why nothing is drawn (``note``), as PNG (and PDF); the
    note is also logged. Returns the PNG path."""
    png = Path(png).with_suffix(".png")
    fig = plt.figure(figsize=(6.0, 1.6))
    try:
        fig.text(0.5, 0.7, title, ha="center", va="center", fontsize=10, wrap=True)
        fig.text(0.5, 0.3, note, ha="center", va="center", fontsize=8, wrap=True)
        if pdf:
            save_figure(fig, png)
        else:
            _save(fig, png, "png")
    finally:
        plt.close(fig)
    log_note(png, note)
    return png


def _series_label(arch: str, method: str, several_archs: bool) -> str:
    """Method name, prefixed by the architecture only when a panel mixes architectures."""
    return f"{arch}/{method}" if several_archs else str(method)


def _plot_panel(ax: plt.Axes, data: pd.DataFrame, colors: Mapping[Hashable, str]) -> None:
    """One dataset: per (arch, method) the mean over seeds and the min–max band.

    Colour marks the method, line style the architecture; series follow the order of
    ``colors`` (the method order) so legends agree across panels.
    """
    several_archs = data["arch"].nunique() > 1
    styles = {a: LINESTYLES[i % len(LINESTYLES)] for i, a in enumerate(dict.fromkeys(data["arch"]))}
    rank = {m: i for i, m in enumerate(colors)}
    groups = sorted(data.groupby(["arch", "method"], sort=False), key=lambda g: rank[g[0][1]])
    for (arch, method), sub in groups:
        by_step = sub.groupby("step")["value"].agg(["mean", "min", "max"]).sort_index()
        steps = by_step.index.to_numpy(dtype=float)
        n = sub["seed"].nunique()
        label = f"{_series_label(arch, method, several_archs)} (n={n})"
        color = colors[method]
        marker = "o" if len(steps) == 1 else None  # one evaluation (e.g. then diverged)
        ax.plot(
            steps, by_step["mean"], color=color, ls=styles[arch], label=label, lw=1.6,
            marker=marker,
        )  # fmt: skip
        ax.fill_between(steps, by_step["min"], by_step["max"], color=color, alpha=0.2, lw=0)
    handles, _ = ax.get_legend_handles_labels()
    handles.append(Patch(color="grey", alpha=0.3, label=BAND_NOTE))
    ax.legend(handles=handles, fontsize=7)
    ax.set_xlabel("training step")
    ax.grid(alpha=0.3)


def plot_metric_curves(
    curves: pd.DataFrame,
    metric: str,
    out: Path | str,
    title: str,
    method_order: Sequence[str] | None = None,
    note: str = "",
) -> Path:
    """Plot ``metric`` against training step, one subplot per dataset; PNG plus PDF.

    ``curves`` is the long frame of :func:`adaptivemix.report.collect.collect_curves`.
    Each method gets the same colour in every panel. The line is the mean over the seeds
    evaluated at that step (a diverged seed stops contributing after its last evaluation);
    the band spans min to max over seeds. Returns the PNG path; the PDF and a CSV of the
    plotted values (mean, min, max and seed count per series and step) sit beside it.
    ``note`` (e.g. the methods that diverged) is printed at the foot and logged; with no
    evaluation of ``metric`` at all the figure is a :func:`placeholder_figure`.
    """
    data = curves[curves["metric"] == metric]
    if data.empty:
        why = f"no '{metric}' evaluation of a finished step to draw"
        png = placeholder_figure(out, title, "; ".join(filter(None, [why, note])))
        empty = curve_data(data).to_csv(index=False).encode()
        atomic_write(png.with_suffix(".csv"), lambda f: f.write(empty))
        return png
    methods = list(dict.fromkeys([*(method_order or ()), *data["method"]]))
    palette = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    colors = {m: palette[i % len(palette)] for i, m in enumerate(methods)}
    datasets = list(dict.fromkeys(data["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(4.5 * len(datasets), 3.6), squeeze=False)
    try:
        for ax, dataset in zip(axes[0], datasets, strict=True):
            _plot_panel(ax, data[data["dataset"] == dataset], colors)
            ax.set_title(str(dataset))
            ax.set_ylabel(metric.upper() if metric in ("fid", "kid") else metric)
        fig.suptitle(title)
        add_note(fig, note)
        png = save_figure(fig, Path(out).with_suffix(".png"))
    finally:
        plt.close(fig)
    log_note(png, note)
    plotted = curve_data(data).to_csv(index=False).encode()
    atomic_write(png.with_suffix(".csv"), lambda f: f.write(plotted))
    return png


def curve_data(data: pd.DataFrame) -> pd.DataFrame:
    """The values a curve figure draws: per dataset, arch, method and step, over seeds."""
    keys = ["dataset", "arch", "method", "step"]
    stats = data.groupby(keys, sort=False)["value"].agg(["mean", "min", "max", "count"])
    return stats.rename(columns={"count": "n_seeds"}).reset_index()


def _load_image(path: Path) -> tuple[np.ndarray, str | None]:
    """Pixels as an array plus the colormap a single-channel image needs."""
    with Image.open(path) as img:
        if img.mode in ("L", "I", "F", "1"):
            return np.asarray(img.convert("L")), "gray"
        return np.asarray(img.convert("RGB")), None


def sample_grid_figure(
    sample_pngs: Mapping[str, Path | str], out: Path | str, title: str, note: str = ""
) -> Path:
    """Show each method's sample grid side by side, titled by its key; writes a PNG.

    The keys are used verbatim as panel titles (e.g. 'adaptivemix (seed 0)'). ``note`` (what
    was left out) is printed at the foot and logged; with no images but a note the figure
    is a :func:`placeholder_figure`.
    """
    if not sample_pngs:
        if not note:
            raise ValueError("no sample images given")
        return placeholder_figure(out, title, note, pdf=False)
    n = len(sample_pngs)
    cols = min(n, MAX_PANELS_PER_ROW)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.2 * cols, 3.4 * rows + 0.3), squeeze=False)
    try:
        for ax in axes.flat[n:]:
            ax.axis("off")
        for ax, (name, path) in zip(axes.flat, sample_pngs.items(), strict=False):
            pixels, cmap = _load_image(Path(path))
            ax.imshow(pixels, cmap=cmap, interpolation="nearest")
            ax.set_title(str(name), fontsize=9)
            ax.axis("off")
        fig.suptitle(title)
        add_note(fig, note)
        png = _save(fig, Path(out).with_suffix(".png"), "png")
    finally:
        plt.close(fig)
    log_note(png, note)
    return png
