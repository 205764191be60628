"""`snakemake --report` on the real smoke DAG, then the report opened in headless Chromium.

The smoke profile runs end to end in a temporary directory (as in tests/test_workflow.py), the
report is built from it, and tests/chromium.py drives the report's own UI in Debian's Chromium
(installed with apt-get when missing): every category is opened, every result's view button
pressed, and every figure must be decoded by the browser with a non-zero size. What the report
must hold is derived from the run's files, not from the rules: every PNG under figures/ and an
HTML page for every Markdown table under tables/.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import re
import time
from pathlib import Path

import pytest
from PIL import Image
from test_workflow import snakemake

from tests.chromium import BrowserError, ensure_chromium, probe_report

#: The slow tier (`make test-all`): this module installs and drives a headless Chromium.
pytestmark = pytest.mark.heavy

# The tasks the smoke profile runs, named as the report's categories (workflow/rules/report.smk).
SMOKE_CATEGORIES = {
    # "ablation": the smoke profile's sweep (its table and figure)
    "Generation (GAN)": {"digits", "stacked-digits", "digits-25pct", "all datasets", "ablation"},
    "Feature-space shrinkage": {"digits", "stacked-digits", "digits-25pct"},
    "Classification & robustness": {"digits-0to5", "all datasets"},
    "Out-of-distribution detection": {"digits-0to5"},
    "Claims: reproduced vs reported": {"all datasets"},
}


def embedded(report_html: str, name: str):
    """A JSON value the report embeds as ``var <name> = ...;`` in ``<script id="<name>">``."""
    script_id = name.replace("_", "-")
    pattern = rf'<script id="{script_id}">\s*var {name} = (.*?);\s*</script>'
    match = re.search(pattern, report_html, flags=re.DOTALL)
    assert match, f"the report embeds no `{name}`"
    return json.loads(match.group(1))


@pytest.fixture(scope="module")
def browser() -> str:
    start = time.monotonic()
    try:
        path = ensure_chromium()
    except BrowserError as error:
        pytest.fail(f"no headless Chromium: {error}", pytrace=False)
    print(f"chromium ready in {time.monotonic() - start:.0f} s: {path}")
    return path


@pytest.fixture(scope="module")
def smoke_report(smoke_run, repo_root):
    """(results/smoke, report.html, the report's text): ``--report`` of the session's smoke DAG."""
    out, workdir, config = smoke_run
    start = time.monotonic()
    report = out / "report.html"
    result = snakemake(repo_root, workdir, "--report", str(report), "--configfile", config)
    assert result.returncode == 0, result.stderr[-3000:]
    print(f"smoke report: {time.monotonic() - start:.0f} s")
    return out, report, report.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def probed(browser, smoke_report, tmp_path_factory) -> dict:
    _, report, _ = smoke_report
    start = time.monotonic()
    found = probe_report(browser, report, tmp_path_factory.mktemp("probe"))
    print(f"report probed in Chromium: {time.monotonic() - start:.0f} s")
    return found


def test_table_page_renders_pipe_tables_headings_and_escapes():
    module = load_table_page()
    text = "Mean ± std over seeds.\n### AUROC (%) ↑\n\n| m | a<b |\n|:--|--:|\n| x | 1 ± 2 |\n"
    html = module.markdown_html(text)
    assert "<p>Mean ± std over seeds.</p>" in html
    assert "<h3>AUROC (%) ↑</h3>" in html
    assert '<th style="text-align:left">m</th><th style="text-align:right">a&lt;b</th>' in html
    assert '<td style="text-align:left">x</td><td style="text-align:right">1 ± 2</td>' in html
    with pytest.raises(ValueError, match="separator"):
        module.table_html(["| a |", "| b |"])


@pytest.mark.slow
def test_report_holds_every_figure_and_table_with_a_caption(smoke_report):
    out, _, text = smoke_report
    root = out.parent.parent
    results = embedded(text, "results")
    figures = {str(p.relative_to(root)) for p in out.glob("figures/*.png")}
    tables = [p for p in out.glob("tables/*.md") if not p.stem.endswith("_summary")]
    pages = {str(p.relative_to(root).with_suffix(".html")) for p in tables}
    # at least 2 GAN sets × (FID curve, samples) + the ROC figure, and 2 GAN + 1 classification
    # + 1 OOD table; every figure and table the run wrote, whatever rule wrote it
    assert len(figures) >= 5 and len(pages) >= 4, (figures, pages)
    shown = {p for p, r in results.items() if r["mime_type"] == "image/png"}
    assert not figures - shown, f"figures written but not in the report: {figures - shown}"
    shown = {p for p, r in results.items() if r["mime_type"] == "text/html"}
    assert not pages - shown, f"tables written but not in the report: {pages - shown}"
    assert set(results) == figures | pages
    for path, result in results.items():
        assert len(result["caption"]) > 100, f"{path} has no caption"
        assert result["labels"]["result"], f"{path} has no title"
        assert embedded_bytes(result) == (root / path).read_bytes(), f"{path} is not embedded"


@pytest.mark.slow
def test_results_are_grouped_by_task_and_dataset(smoke_report):
    _, _, text = smoke_report
    categories = embedded(text, "categories")
    assert {c: set(subs) for c, subs in categories.items()} == SMOKE_CATEGORIES
    description = embedded(text, "workflow_desc")  # workflow/report/workflow.rst, as HTML
    assert "AdaptiveMix reproducibility harness" in description
    assert "profile <tt" in description or "smoke" in description


@pytest.mark.slow
def test_table_pages_show_the_tables_rows(smoke_report):
    out, _, text = smoke_report
    pages = {p: r for p, r in embedded(text, "results").items() if r["mime_type"] == "text/html"}
    assert len(pages) >= 4, sorted(pages)  # 2 GAN tables, 1 classification, 1 OOD
    for path, result in pages.items():
        page = embedded_bytes(result).decode()
        markdown = (out.parent.parent / path).with_suffix(".md").read_text()
        rows = [line for line in markdown.splitlines() if line.startswith("| ")]
        assert page.count("<tr>") == len(rows), path  # header + body rows; separators dropped
        assert "download=" in page, path
        if not rows:  # an empty table (no claim reproduced) says so in words
            assert "No claim" in page and "<table>" not in page, path
            continue
        # every results table names the methods; the claims tables name the papers' methods
        expected = "GLeaD" if Path(path).stem.startswith("claims_") else "adaptivemix"
        assert "<table>" in page and expected in page, path


@pytest.mark.slow
def test_every_category_and_figure_renders_in_chromium(smoke_report, probed):
    _, _, text = smoke_report
    categories = embedded(text, "categories")
    assert probed["done"] and not probed["errors"], probed["errors"]
    for category in categories:
        assert category in probed["menu"], f"{category!r} is not in the report's menu"
    paths = {p for subs in categories.values() for ps in subs.values() for p in ps}
    images = {p for p, r in embedded(text, "results").items() if r["mime_type"] == "image/png"}
    assert {i["path"] for i in probed["images"]} == images
    root = smoke_report[0].parent.parent
    for image in probed["images"]:
        assert image["shown"] and image["decoded"], f"{image['path']} did not render: {image}"
        # matplotlib's figures are opaque: a transparent pixel was left undecoded
        assert image["transparent"] == 0, f"{image['path']} rendered in part: {image}"
        # the size the browser decoded is the PNG's own, and the whole file decodes
        with Image.open(root / image["path"]) as png:
            png.load()
            assert (image["width"], image["height"]) == png.size, image
    assert {f["path"] for f in probed["frames"]} == paths - images
    assert all(frame["shown"] for frame in probed["frames"]), probed["frames"]


@pytest.mark.slow
@pytest.mark.parametrize("cut", [6, 0.5], ids=["signature-only", "half"])
def test_the_probe_sees_a_broken_figure(browser, smoke_report, tmp_path, cut):
    """A negative control: one figure's embedded PNG cut short (unreadable, or half drawn)."""
    _, _, text = smoke_report
    results = embedded(text, "results")
    victim = next(p for p, r in results.items() if r["mime_type"] == "image/png")
    raw = embedded_bytes(results[victim])
    short = raw[: cut if isinstance(cut, int) else int(len(raw) * cut)]
    uri = results[victim]["data_uri"]
    broken_uri = uri.split("base64,", 1)[0] + "base64," + base64.b64encode(short).decode()
    broken = tmp_path / "broken.html"
    broken.write_text(text.replace(uri, broken_uri), encoding="utf-8")
    found = probe_report(browser, broken, tmp_path)
    failed = {
        i["path"] for i in found["images"] if not (i["decoded"] and i["width"] > 0)
        or i["transparent"] > 0
    }  # fmt: skip
    assert failed == {victim}


def embedded_bytes(result: dict) -> bytes:
    """The file a report result embeds (its base64 data URI), decoded."""
    return base64.b64decode(result["data_uri"].split("base64,", 1)[1])


def load_table_page():
    path = Path(__file__).resolve().parent.parent / "workflow/report/table_page.py"
    spec = importlib.util.spec_from_file_location("table_page", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
