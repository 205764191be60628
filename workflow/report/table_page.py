"""A results table as a standalone HTML page, for ``snakemake --report``.

Snakemake's report shows images, PDFs and HTML pages but offers Markdown and CSV only as
downloads, so the rule ``report_tables`` (workflow/rules/report.smk) turns each table's Markdown
(``adaptivemix.report.writers.write_frame``: caption lines, ``###`` headings and pipe tables of
formatted "mean ± std [CI]" cells) into one self-contained page, with the full-precision CSV
embedded as a download link. Only that Markdown subset is understood: every other line is kept
as a plain paragraph. Run by Snakemake's ``script:`` directive, or importable for its functions.
"""

import base64
import html
from pathlib import Path

STYLE = """
body { font-family: system-ui, sans-serif; font-size: 14px; margin: 1.5em; color: #111; }
table { border-collapse: collapse; margin: 0.5em 0 1.5em; }
th, td { border-bottom: 1px solid #ccc; padding: 0.25em 0.6em; white-space: nowrap; }
th { border-bottom: 2px solid #333; background: #f4f4f4; }
h1 { font-size: 1.3em; } h2, h3, h4 { font-size: 1.1em; margin-top: 1.2em; }
"""
ALIGN = {(True, False): "left", (False, True): "right", (True, True): "center"}


def _cells(line: str) -> list[str]:
    """The cells of one pipe-table row, stripped."""
    body = line.strip()
    body = body[1:] if body.startswith("|") else body
    body = body[:-1] if body.endswith("|") else body
    return [cell.strip() for cell in body.split("|")]


def _alignments(separator: str) -> list[str]:
    """Column alignments from a separator row such as ``|:---|---:|``."""
    spans = [cell or "-" for cell in _cells(separator)]
    return [ALIGN.get((s.startswith(":"), s.endswith(":")), "left") for s in spans]


def _is_separator(line: str) -> bool:
    return all(set(cell) <= set(":-") and "-" in cell for cell in _cells(line))


def table_html(rows: list[str]) -> str:
    """An HTML ``<table>`` from pipe-table lines: header, separator, then body rows."""
    if len(rows) < 2 or not _is_separator(rows[1]):
        raise ValueError(f"a pipe table needs a header and a separator row; got {rows[:2]!r}")
    align = _alignments(rows[1])

    def row(line: str, tag: str) -> str:
        cells = _cells(line)
        return (
            "<tr>"
            + "".join(
                f'<{tag} style="text-align:{align[i] if i < len(align) else "left"}">'
                f"{html.escape(cell)}</{tag}>"
                for i, cell in enumerate(cells)
            )
            + "</tr>"
        )

    body = "\n".join(row(line, "td") for line in rows[2:])
    return f"<table>\n<thead>{row(rows[0], 'th')}</thead>\n<tbody>\n{body}\n</tbody>\n</table>"


def markdown_html(text: str) -> str:
    """HTML of the Markdown subset our tables use: headings, pipe tables, plain lines."""
    parts: list[str] = []
    table: list[str] = []
    for line in [*text.splitlines(), ""]:
        if line.lstrip().startswith("|"):
            table.append(line)
            continue
        if table:
            parts.append(table_html(table))
            table = []
        stripped = line.strip()
        level = len(stripped) - len(stripped.lstrip("#"))
        if 1 <= level <= 6 and stripped[level : level + 1] == " ":
            parts.append(f"<h{level}>{html.escape(stripped[level:].strip())}</h{level}>")
        elif stripped:
            parts.append(f"<p>{html.escape(stripped)}</p>")
    return "\n".join(parts)


def page(title: str, markdown: str, csv: bytes | None = None, csv_name: str = "") -> str:
    """A complete HTML page: the title, the rendered Markdown and a CSV download link."""
    link = ""
    if csv is not None:
        uri = "data:text/csv;charset=utf-8;base64," + base64.b64encode(csv).decode()
        link = (
            f'<p><a download="{html.escape(csv_name)}" href="{uri}">'
            f"{html.escape(csv_name)}</a> (every statistic at full precision)</p>"
        )
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f"<h1>{html.escape(title)}</h1>\n{markdown_html(markdown)}\n{link}\n</body>\n</html>\n"
    )


def write_pages(markdowns: list[str], csvs: list[str], pages: list[str]) -> list[str]:
    """Write ``pages[i]`` from ``markdowns[i]`` and ``csvs[i]`` (the three lists align).

    Returns one line per page written, for the job's log.
    """
    if not len(markdowns) == len(csvs) == len(pages):
        raise ValueError(
            f"got {len(markdowns)} Markdown tables, {len(csvs)} CSVs and {len(pages)} pages"
        )
    done = []
    for md_path, csv_path, page_path in zip(markdowns, csvs, pages, strict=True):
        md, csv, out = Path(md_path), Path(csv_path), Path(page_path)
        text = page(md.stem, md.read_text(encoding="utf-8"), csv.read_bytes(), csv.name)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
        done.append(f"{out}: {md.name} and {csv.name}, {len(text)} characters")
    return done


if "snakemake" in globals():  # run by the rule's script: directive
    smk = globals()["snakemake"]
    lines = write_pages(list(smk.input.md), list(smk.input.csv), list(smk.output))
    Path(smk.log[0]).write_text("\n".join(lines) + "\n", encoding="utf-8")
