"""Paper layouts: the generation table (methods × datasets) and the paired table.

Inputs are small hand-written frames; expected cells, rows and columns are written out by
hand, and paired statistics are worked out by hand (differences, their mean and std).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd
import pytest

from adaptivemix.report.layouts import baseline_of, generation_layout, paired_layout
from adaptivemix.report.tables import format_markdown, summary_table, write_table
from adaptivemix.report.writers import write_frame

NAN = math.nan


def summary_row(dataset, method, fid, modes=(NAN, NAN), n_seeds=3) -> dict:
    """A summary_table row: (mean, std) per metric; CIs set to mean ± 1 (unused by cells)."""
    row = {"task": "gan", "dataset": dataset, "arch": "dcgan", "method": method}
    for name, (mean, std) in (("fid", fid), ("modes", modes)):
        row |= {f"{name}_mean": mean, f"{name}_std": std}
        row |= {f"{name}_ci_low": mean - 1, f"{name}_ci_high": mean + 1}
    return row | {"n_seeds": n_seeds}


@pytest.fixture
def summary() -> pd.DataFrame:
    """d1: no mode metrics, cutmix only here; d2: modes, one single seed, one all-diverged."""
    return pd.DataFrame(
        [
            summary_row("d1", "vanilla", (12.0, 2.0)),
            summary_row("d1", "adaptivemix", (8.5, 0.70710678)),
            summary_row("d1", "cutmix", (10.0, 1.0)),
            summary_row("d2", "vanilla", (30.123, 1.5), (960.0, 10.0)),
            summary_row("d2", "adaptivemix", (20.0, NAN), (991.0, NAN), n_seeds=1),
            summary_row("d2", "glead", (NAN, NAN), (NAN, NAN), n_seeds=0),
        ]
    )


# --- generation layout -------------------------------------------------------------------


def test_generation_layout_cells_rows_and_columns(summary) -> None:
    _, shown, _ = generation_layout(summary)
    # modes d1 is "–" everywhere, so the wide LaTeX table leaves it out
    assert list(shown.columns) == ["arch", "method", "fid d1", "fid d2", "modes d2"]
    assert shown["method"].tolist() == ["vanilla", "adaptivemix", "cutmix", "glead"]
    rows = shown.set_index("method")
    assert rows.loc["vanilla"].tolist() == ["dcgan", "12.00 ± 2.00", "30.12 ± 1.50", "960.0 ± 10.0"]
    assert rows.loc["adaptivemix", "fid d1"] == "8.50 ± 0.71"
    assert rows.loc["adaptivemix", "modes d2"] == "991.0 (single seed)"
    assert rows.loc["cutmix"].tolist() == ["dcgan", "10.00 ± 1.00", "–", "–"]
    assert rows.loc["glead"].tolist() == ["dcgan", "–", "n/a", "n/a"]


def test_generation_layout_markdown_blocks(summary) -> None:
    _, _, markdown = generation_layout(summary)
    assert markdown.index("### FID ↓") < markdown.index("### MODES ↑")
    assert "### KID" not in markdown  # not in the summary
    modes = markdown.split("### MODES ↑")[1]
    header = modes.strip().splitlines()[0]
    assert [c.strip() for c in header.strip("|").split("|")] == ["arch", "method", "d1", "d2"]
    vanilla = next(line for line in modes.splitlines() if "| vanilla" in line)
    assert [c.strip() for c in vanilla.strip("|").split("|")] == [
        "dcgan", "vanilla", "–", "960.0 ± 10.0"
    ]  # fmt: skip


def test_generation_layout_long_data(summary) -> None:
    data, _, _ = generation_layout(summary)
    keys = set(zip(data["dataset"], data["method"], data["metric"], strict=True))
    fid = {(d, m, "fid") for d, m in zip(summary["dataset"], summary["method"], strict=True)}
    modes = {("d2", m, "modes") for m in ("vanilla", "adaptivemix", "glead")}
    assert keys == fid | modes and len(data) == 9
    row = data[(data["dataset"] == "d2") & (data["metric"] == "fid")].iloc[0]
    assert (row["mean"], row["std"], row["ci_low"], row["n_seeds"]) == (30.123, 1.5, 29.123, 3)
    assert bool(row["lower_is_better"]) is True
    assert not data[data["metric"] == "modes"]["lower_is_better"].any()


def test_generation_layout_metric_choice(summary) -> None:
    _, shown, markdown = generation_layout(summary, metrics=["modes"])
    assert list(shown.columns) == ["arch", "method", "modes d2"] and "FID" not in markdown
    with pytest.raises(ValueError, match=r"\['kid'\].*available: \['fid', 'modes'\]"):
        generation_layout(summary, metrics=["fid", "kid"])


def test_generation_layout_writes_latex(summary, tmp_path: Path) -> None:
    data, shown, markdown = generation_layout(summary)
    csv, md, tex = write_frame(data, shown, tmp_path / "gen", caption="FID", markdown=markdown)
    assert md.read_text() == markdown
    assert r"12.00 $\pm$ 2.00" in tex.read_text() and "--" in tex.read_text()
    assert len(pd.read_csv(csv)) == 9


# --- baselines ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("variant", "baseline", "expected"),
    [
        ("adaptivemix+ada", "vanilla", "vanilla+ada"),
        ("erm", "erm", "erm"),
        ("adaptivemix", "vanilla", "vanilla"),
        ("mixup+ada+diffaugment", "vanilla", "vanilla+ada+diffaugment"),
        ("vanilla+ada", "vanilla", "vanilla+ada"),
        ("cutmix", "erm", "erm"),
    ],
)
def test_baseline_of(variant: str, baseline: str, expected: str) -> None:
    assert baseline_of(variant, baseline) == expected


# --- paired layout -----------------------------------------------------------------------


def run(dataset, method, seed, fid, modes=NAN, status="ok") -> dict:
    return {"task": "gan", "dataset": dataset, "arch": "dcgan", "method": method, "seed": seed,
            "status": status, "fid": fid, "modes": modes}  # fmt: skip


@pytest.fixture
def runs() -> pd.DataFrame:
    return pd.DataFrame(
        [
            run("d1", "vanilla", 0, 11.0),
            run("d1", "vanilla", 1, 14.0),
            run("d1", "vanilla", 2, 11.5),
            run("d1", "vanilla", 3, 250.0, status="diverged"),  # never paired
            run("d1", "adaptivemix", 0, 10.0),
            run("d1", "adaptivemix", 1, 12.0),
            run("d1", "adaptivemix", 2, 11.0),
            run("d1", "adaptivemix", 3, 9.0),  # its baseline diverged: no pair
            run("d1", "vanilla+ada", 0, 11.0),
            run("d1", "vanilla+ada", 1, 13.0),
            run("d1", "adaptivemix+ada", 0, 10.0),
            run("d1", "adaptivemix+ada", 1, 10.0),
            run("d1", "cutmix+diffaugment", 0, 10.0),  # no vanilla+diffaugment runs
            run("d2", "vanilla", 0, 30.0, 10.0),
            run("d2", "vanilla", 1, 32.0, 12.0),
            run("d2", "adaptivemix", 0, 33.0, 14.0),
            run("d2", "adaptivemix", 1, 35.0, 13.0),
        ]
    )


def test_paired_layout_values_by_hand(runs) -> None:
    data, _, _ = paired_layout(runs, ["fid", "modes"], "vanilla")
    keys = list(zip(data["dataset"], data["method"], data["baseline"], data["metric"], strict=True))
    assert keys == [
        ("d1", "adaptivemix", "vanilla", "fid"),
        ("d1", "adaptivemix+ada", "vanilla+ada", "fid"),
        ("d2", "adaptivemix", "vanilla", "fid"),
        ("d2", "adaptivemix", "vanilla", "modes"),
    ]  # d1 has no modes values: no modes rows there
    rows = data.set_index(["dataset", "method", "metric"])
    amix = rows.loc[("d1", "adaptivemix", "fid")]
    # seeds 0-2: differences -1, -2, -0.5; mean -7/6; squared deviations sum 7/6 over 2
    assert amix["n_pairs"] == 3
    assert amix["diff_mean"] == pytest.approx(-7 / 6)
    assert amix["diff_std"] == pytest.approx(math.sqrt(7 / 12))
    assert (amix["ci_low"], amix["ci_high"]) == (-2.0, -0.5)
    assert amix["p_value"] == pytest.approx(1 - math.sqrt(7) / 3)  # t = -sqrt(7), 2 df
    assert amix["significant"] and amix["better"] is True  # lower FID
    ada = rows.loc[("d1", "adaptivemix+ada", "fid")]  # differences -1, -3
    assert (ada["diff_mean"], ada["diff_std"]) == pytest.approx((-2.0, math.sqrt(2)))
    assert (ada["ci_low"], ada["ci_high"]) == (-3.0, -1.0)
    worse = rows.loc[("d2", "adaptivemix", "fid")]  # differences 3, 3: no t, zero-width CI
    assert worse["diff_std"] == 0.0 and math.isnan(worse["p_value"])
    assert worse["significant"] and worse["better"] is False
    modes = rows.loc[("d2", "adaptivemix", "modes")]  # differences 4, 1: more modes
    assert (modes["diff_mean"], modes["ci_low"], modes["ci_high"]) == (2.5, 1.0, 4.0)
    assert modes["better"] is True


def test_paired_layout_shown_and_markdown(runs) -> None:
    _, shown, markdown = paired_layout(runs, ["fid", "modes"], "vanilla")
    assert list(shown.columns) == [
        "dataset", "arch", "method", "baseline", "fid diff ↓", "modes diff ↑", "n_pairs"
    ]  # fmt: skip
    first = shown.iloc[0].tolist()
    assert first == ["d1", "dcgan", "adaptivemix", "vanilla", "−1.17 ± 0.76 [−2.00, −0.50] *",
                     "–", "3"]  # fmt: skip
    last = shown.iloc[-1]
    assert last["fid diff ↓"] == "3.00 ± 0.00 [3.00, 3.00] *"
    assert last["modes diff ↑"] == "2.5 ± 2.1 [1.0, 4.0] *"
    assert "not paired: cutmix+diffaugment (no vanilla+diffaugment runs)" in markdown
    assert "* : the CI excludes 0" in markdown and "bootstrap" in markdown
    assert "−1.17 ± 0.76 [−2.00, −0.50] *" in markdown


def test_paired_layout_order_and_bad_metric(runs) -> None:
    data, _, _ = paired_layout(runs, ["fid"], "vanilla", method_order=["adaptivemix+ada"])
    assert data["method"].tolist()[:2] == ["adaptivemix+ada", "adaptivemix"]
    with pytest.raises(ValueError, match=r"\['kid'\] not in the runs"):
        paired_layout(runs, ["fid", "kid"], "vanilla")
    alone = runs[runs["method"] == "adaptivemix"]
    data, shown, markdown = paired_layout(alone, ["fid"], "vanilla")
    assert data.empty and shown.empty
    assert "not paired: adaptivemix (no vanilla runs)" in markdown


# --- per-dataset tables: optional metrics and LaTeX --------------------------------------


def test_tables_show_precision_recall_and_write_latex(tmp_path: Path) -> None:
    protocol = {"backbone": "b", "resize": "native", "n_gen": 10, "n_real": 10,
                "reference_split": "train"}  # fmt: skip
    runs = pd.DataFrame(
        [
            run("d1", "vanilla", 0, 10.0)
            | protocol
            | {"kid": 0.1, "precision": 0.7, "recall": 0.5},
            run("d1", "vanilla", 1, 12.0)
            | protocol
            | {"kid": 0.1, "precision": 0.8, "recall": 0.6},
        ]
    ).drop(columns="modes")
    table = summary_table(runs)
    md = format_markdown(table)
    # precision 0.75 ± sqrt(0.005) = 0.0707; recall 0.55 ± 0.0707; 3 decimals each
    assert "0.750 ± 0.071 [0.700, 0.800]" in md and "0.550 ± 0.071 [0.500, 0.600]" in md
    csv, md_path, tex = write_table(table, tmp_path / "t", caption="Digits")
    assert [p.name for p in (csv, md_path, tex)] == ["t.csv", "t.md", "t.tex"]
    assert md_path.read_text() == md + "\n"
    assert r"0.750 $\pm$ 0.071 [0.700, 0.800]" in tex.read_text()
    assert r"\caption{Digits}" in tex.read_text()
    assert "precision_t_ci_low" in pd.read_csv(csv).columns
