"""The three renderings of every table: CSV from the numbers, Markdown and LaTeX from cells."""

from __future__ import annotations

import pandas as pd

from adaptivemix.report.writers import latex_escape, latex_table, write_frame


def test_latex_escape_handles_specials_once():
    assert latex_escape("fid50k_full") == r"fid50k\_full"
    assert latex_escape("3.21 ± 0.05") == r"3.21 $\pm$ 0.05"
    assert latex_escape("100% & more") == r"100\% \& more"
    assert latex_escape("a\\b") == r"a\textbackslash{}b"
    assert latex_escape("{x}") == r"\{x\}"


def test_latex_table_layout_by_hand():
    shown = pd.DataFrame({"method": ["vanilla", "ada_mix"], "fid": ["3.2 ± 0.1", None]})
    expected = "\n".join(
        [
            r"\begin{table}[t]",
            r"\centering",
            r"\caption{FID on digits}",
            r"\begin{tabular}{ll}",
            r"\toprule",
            r"method & fid \\",
            r"\midrule",
            r"vanilla & 3.2 $\pm$ 0.1 \\",
            r"ada\_mix &  \\",
            r"\bottomrule",
            r"\end{tabular}",
            r"\end{table}",
        ]
    )
    assert latex_table(shown, "FID on digits") == expected + "\n"


def test_write_frame_writes_three_files(tmp_path):
    data = pd.DataFrame({"method": ["a"], "fid_mean": [1.23456789]})
    shown = pd.DataFrame({"method": ["a"], "FID": ["1.23"]})
    paths = write_frame(data, shown, tmp_path / "sub" / "t")
    assert [p.name for p in paths] == ["t.csv", "t.md", "t.tex"]
    assert pd.read_csv(paths[0])["fid_mean"].iloc[0] == 1.23456789
    assert paths[1].read_text().splitlines()[2] == "| a        | 1.23  |"
    assert r"a & 1.23 \\" in paths[2].read_text()
    custom = write_frame(data, shown, tmp_path / "u", markdown="### block\n")
    assert custom[1].read_text() == "### block\n"
    assert not list(tmp_path.rglob("*.tmp"))
