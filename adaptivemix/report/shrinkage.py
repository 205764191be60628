"""Figures of D's feature-space shrinkage: 2-D projections of the final D's features.

Each run that trained with the feature probe leaves ``d_features.npz`` (the final D's
features of a fixed set of real training images and of G's samples, see
:mod:`adaptivemix.metrics.shrinkage`). :func:`projection_figure` shows one panel per
method: the real and fake features projected onto their first two principal components.
Every D has its own feature space, so each panel gets its own PCA, fitted on that panel's
real and fake features together. The curve of ``feature_spread`` over training needs no
code here: :func:`adaptivemix.report.figures.plot_metric_curves` draws it from the logs.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
from scipy.sparse.linalg import svds

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from adaptivemix.io import atomic_write
from adaptivemix.report.diverged import skipped_note
from adaptivemix.report.figures import add_note, log_note, placeholder_figure, save_figure
from adaptivemix.run_files import D_FEATURES_FILE

__all__ = ["load_features", "pca_2d", "projection_figure"]

PANEL_SIZE = 3.4  # inches per panel side
MAX_COLUMNS = 4


def _top_right_singular_vectors(centred: np.ndarray, k: int = 2) -> np.ndarray:
    """The top ``k`` right singular vectors (rows), largest first; a full SVD when the
    matrix is too small for ARPACK (it needs k < min(shape))."""
    if min(centred.shape) <= k:
        return np.linalg.svd(centred, full_matrices=False)[2][:k]
    start = np.full(min(centred.shape), 1.0 / np.sqrt(min(centred.shape)))
    _, values, vt = svds(centred, k=k, v0=start)
    return vt[np.argsort(values)[::-1]]


def pca_2d(x: np.ndarray) -> np.ndarray:
    """Rows of ``x`` (n, d) projected onto their first two principal components (n, 2).

    Centred, then the top right singular vectors of the centred matrix (float64). Only two
    are needed, so SciPy's truncated ``svds`` (ARPACK, fixed start vector: deterministic) is
    used; it is about 30× faster than a full SVD at 1024 × 1024, which matters with a
    panel per method;
    each component's sign is fixed so that its largest-magnitude loading is positive, which
    makes the picture independent of the SVD's arbitrary signs. Fewer than two feature
    dimensions pad with zeros.
    """
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    if x.shape[0] < 2:
        raise ValueError(f"PCA needs at least 2 samples, got {x.shape[0]}")
    if not np.isfinite(x).all():  # a diverged D's features: no SVD is defined
        raise ValueError(f"PCA needs finite features; {int((~np.isfinite(x)).sum())} are not")
    centred = x - x.mean(axis=0)
    vt = _top_right_singular_vectors(centred)
    signs = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(axis=1)])
    coords = centred @ (vt * signs[:, None]).T
    return np.pad(coords, ((0, 0), (0, 2 - coords.shape[1])))


def load_features(run_dir: Path | str) -> tuple[np.ndarray, np.ndarray, float]:
    """(real, fake, feature_spread) of a run's ``d_features.npz``."""
    path = Path(run_dir) / D_FEATURES_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path}: no D features (was the run trained with the probe?)")
    with np.load(path) as data:
        return data["real"], data["fake"], float(data["feature_spread"])


def _panel_rows(name: str, real: np.ndarray, fake: np.ndarray) -> pd.DataFrame:
    coords = pca_2d(np.concatenate([real, fake]))
    kind = ["real"] * len(real) + ["fake"] * len(fake)
    index = [*range(len(real)), *range(len(fake))]
    return pd.DataFrame(
        {"panel": name, "kind": kind, "index": index, "pc1": coords[:, 0], "pc2": coords[:, 1]}
    )


def _draw(ax: plt.Axes, rows: pd.DataFrame, title: str) -> None:
    for kind, color in (("fake", "tab:red"), ("real", "tab:blue")):
        sub = rows[rows["kind"] == kind]
        ax.scatter(
            sub["pc1"], sub["pc2"], s=4, alpha=0.5, color=color, lw=0, label=kind, rasterized=True
        )
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("PC 1", fontsize=8)
    ax.set_ylabel("PC 2", fontsize=8)
    # Each panel has its own PCA axes, so tick values mean nothing across panels; without
    # them a 9-panel figure also renders about twice as fast.
    ax.set_xticks([])
    ax.set_yticks([])
    ax.legend(fontsize=7, markerscale=3)


def _finite(real: np.ndarray, fake: np.ndarray) -> bool:
    return bool(np.isfinite(real).all() and np.isfinite(fake).all())


def projection_figure(
    run_dirs: Mapping[str, Path | str], out_png: Path | str, title: str, note: str = ""
) -> Path:
    """One panel per entry of ``run_dirs`` (panel name -> run folder, e.g. each method's
    lowest seed; the caller picks the runs): the final D's real and fake features on the
    panel's own first two principal components, titled with the name and feature_spread.

    Writes the PNG, a PDF beside it and a CSV of the drawn coordinates (panel, kind,
    index within its kind, pc1, pc2). Returns the PNG path. A run whose features are not
    all finite (its D diverged) gets no panel; it is named at the foot and in the log with
    ``note`` (what the caller left out); with no panel at all but a note the figure is a
    :func:`~adaptivemix.report.figures.placeholder_figure`.
    """
    if not run_dirs and not note:
        raise ValueError("projection_figure: no runs given")
    panels, non_finite = [], []
    for name, run_dir in run_dirs.items():
        real, fake, spread = load_features(run_dir)
        if not _finite(real, fake):
            non_finite.append(name)
            continue
        panels.append((f"{name}\nfeature_spread = {spread:.3g}", _panel_rows(name, real, fake)))
    bad = skipped_note(non_finite, "no panel", why="non-finite features (D diverged)")
    note = "; ".join(filter(None, [note, bad]))
    if not panels:
        return _empty_projection(out_png, title, note)
    cols = min(len(panels), MAX_COLUMNS)
    n_rows = -(-len(panels) // cols)
    size = (PANEL_SIZE * cols, PANEL_SIZE * n_rows + 0.4)
    fig, axes = plt.subplots(n_rows, cols, figsize=size, squeeze=False, layout="constrained")
    try:
        for ax in axes.flat[len(panels) :]:
            ax.axis("off")
        for ax, (panel_title, rows) in zip(axes.flat, panels, strict=False):
            _draw(ax, rows, panel_title)
        fig.suptitle(title)
        add_note(fig, note)
        png = save_figure(fig, Path(out_png).with_suffix(".png"))
    finally:
        plt.close(fig)
    log_note(png, note)
    table = pd.concat([rows for _, rows in panels], ignore_index=True)
    data = table.to_csv(index=False).encode()
    atomic_write(png.with_suffix(".csv"), lambda f: f.write(data))
    return png


def _empty_projection(out_png: Path | str, title: str, note: str) -> Path:
    png = placeholder_figure(out_png, title, note)
    empty = pd.DataFrame(columns=["panel", "kind", "index", "pc1", "pc2"]).to_csv(index=False)
    atomic_write(png.with_suffix(".csv"), lambda f: f.write(empty.encode()))
    return png
