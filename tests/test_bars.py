"""Grouped bar figures: the plotted values, the files, and a clear error for a bad metric."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from adaptivemix.report.bars import bar_figure

NAN = math.nan


def row(dataset, arch, method, fid, fid_ci, modes=NAN, n_seeds=3) -> dict:
    """A summary_table row (only the fields a bar figure reads)."""
    return {
        "task": "gan", "dataset": dataset, "arch": arch, "method": method,
        "fid_mean": fid, "fid_std": 1.0, "fid_ci_low": fid_ci[0], "fid_ci_high": fid_ci[1],
        "modes_mean": modes, "modes_std": NAN, "modes_ci_low": NAN, "modes_ci_high": NAN,
        "n_seeds": n_seeds,
    }  # fmt: skip


@pytest.fixture
def summary() -> pd.DataFrame:
    return pd.DataFrame(
        [
            row("d1", "dcgan", "vanilla", 12.0, (10.0, 14.0)),
            row("d1", "dcgan", "adaptivemix", 8.5, (8.0, 9.0), n_seeds=2),
            row("d2", "dcgan", "vanilla", 30.0, (29.0, 33.0), modes=5.0),
            row("d2", "dcgan", "adaptivemix", 20.0, (NAN, NAN), modes=6.0, n_seeds=1),
        ]
    )


def test_bar_figure_files_and_plotted_values(summary, tmp_path: Path) -> None:
    png = bar_figure(summary, "fid", tmp_path / "fid_bars.png", "FID", ["adaptivemix"])
    assert png == tmp_path / "fid_bars.png"
    with Image.open(png) as image:
        assert image.format == "PNG" and image.width > 200 and image.height > 100
        assert np.asarray(image.convert("L"), dtype=float).std() > 1.0  # not blank
    assert (tmp_path / "fid_bars.pdf").read_bytes().startswith(b"%PDF")
    plotted = pd.read_csv(tmp_path / "fid_bars.csv")
    # groups d1 then d2; adaptivemix first as asked, in each group
    assert list(zip(plotted["group"], plotted["method"], strict=True)) == [
        ("d1", "adaptivemix"), ("d1", "vanilla"), ("d2", "adaptivemix"), ("d2", "vanilla")
    ]  # fmt: skip
    assert plotted["mean"].tolist() == [8.5, 12.0, 20.0, 30.0]
    assert plotted["ci_low"].tolist()[:2] == [8.0, 10.0]
    assert plotted["ci_high"].tolist()[:2] == [9.0, 14.0]
    assert math.isnan(plotted["ci_low"][2])  # one seed: no CI, drawn without an error bar
    assert plotted["n_seeds"].tolist() == [2, 3, 1, 3]


def test_bar_figure_skips_datasets_without_the_metric(summary, tmp_path: Path) -> None:
    bar_figure(summary, "modes", tmp_path / "modes.png", "Modes")
    plotted = pd.read_csv(tmp_path / "modes.csv")
    assert plotted["group"].tolist() == ["d2", "d2"]
    assert plotted["mean"].tolist() == [5.0, 6.0]


def test_bar_figure_groups_by_arch_when_several(summary, tmp_path: Path) -> None:
    more = pd.concat([summary, pd.DataFrame([row("d1", "wgan", "vanilla", 40.0, (39.0, 41.0))])])
    bar_figure(more, "fid", tmp_path / "fid.png", "FID")
    groups = pd.read_csv(tmp_path / "fid.csv")["group"].tolist()
    assert groups == ["d1/dcgan", "d1/dcgan", "d2/dcgan", "d2/dcgan", "d1/wgan"]


def test_bar_figure_names_a_missing_metric(summary, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'kid'.*available: \['fid', 'modes'\]"):
        bar_figure(summary, "kid", tmp_path / "kid.png", "KID")
    assert not (tmp_path / "kid.png").exists()
