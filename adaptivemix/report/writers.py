"""Every table is written three ways: CSV (full precision), Markdown and LaTeX (for reading).

``write_frame(data, shown, stem)`` writes ``<stem>.csv`` from ``data`` (numbers at full
precision, for analysis) and ``<stem>.md`` / ``<stem>.tex`` from ``shown`` (formatted cells,
e.g. "3.21 ± 0.05"). All three are written atomically.

The LaTeX is written by hand rather than with ``DataFrame.to_latex``: pandas' Styler needs
per-call escaping options and emits Unicode "±" verbatim, which pdfLaTeX without extra
packages rejects; the tables here only need booktabs rules and escaped cells.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from adaptivemix.io import atomic_write

# pdfLaTeX specials, and the few Unicode symbols our cells use.
_LATEX_ESCAPES = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
    "±": r"$\pm$",
    "↑": r"$\uparrow$",
    "↓": r"$\downarrow$",
    "–": "--",
    "−": "$-$",
    "≥": r"$\geq$",
    "≤": r"$\leq$",
    "×": r"$\times$",
}


def latex_escape(text: object) -> str:
    """``text`` as a LaTeX-safe string (one pass, so escapes are never escaped twice)."""
    return "".join(_LATEX_ESCAPES.get(ch, ch) for ch in str(text))


def latex_table(shown: pd.DataFrame, caption: str | None = None) -> str:
    """A booktabs ``tabular`` of ``shown`` (all cells escaped), with an optional caption."""
    columns = [latex_escape(c) for c in shown.columns]
    lines = [
        r"\begin{table}[t]",
        r"\centering",
        *([rf"\caption{{{latex_escape(caption)}}}"] if caption else []),
        rf"\begin{{tabular}}{{{'l' * len(columns)}}}",
        r"\toprule",
        " & ".join(columns) + r" \\",
        r"\midrule",
    ]
    for row in shown.itertuples(index=False):
        lines.append(" & ".join(latex_escape(_cell(v)) for v in row) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def _cell(value: object) -> str:
    return "" if value is None or (isinstance(value, float) and pd.isna(value)) else str(value)


def markdown_table(shown: pd.DataFrame) -> str:
    """Markdown of formatted cells, kept verbatim (no number re-parsing)."""
    return shown.to_markdown(index=False, disable_numparse=True) + "\n"


def write_frame(
    data: pd.DataFrame,
    shown: pd.DataFrame,
    stem: Path | str,
    caption: str | None = None,
    markdown: str | None = None,
) -> list[Path]:
    """Write ``<stem>.csv`` (``data``), ``<stem>.md`` and ``<stem>.tex`` (``shown``).

    ``markdown`` replaces the Markdown rendering of ``shown`` when a table needs a layout of
    its own (e.g. several blocks with headings); the LaTeX is always ``shown``'s. Returns the
    three paths in that order.
    """
    stem = Path(stem)
    texts = {
        ".csv": data.to_csv(index=False),
        ".md": markdown if markdown is not None else markdown_table(shown),
        ".tex": latex_table(shown, caption),
    }
    paths = []
    for suffix, text in texts.items():
        payload = text.encode()
        target = stem.with_name(stem.name + suffix)
        paths.append(atomic_write(target, lambda f, d=payload: f.write(d)))
    return paths
