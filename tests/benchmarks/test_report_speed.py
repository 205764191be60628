"""Wall time of the reporting stage from finished runs: aggregation of both tracks, the
claims tables, the report's table pages and ``snakemake --report``.

Target ≤ 30 s for the default profile (its reporting jobs took 14.7 s of job time in the run
measured in the README's Speed section).
This benchmark times the same stage on the smoke profile's finished runs (the suite's one
smoke run, re-aggregated in place) so that it fits the test suite. Run with ``make bench``;
``make test-all`` (slow tier) runs it once and checks every output.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]
REPORT_RULES = ("aggregate_gan", "aggregate_classify", "claims", "report_tables")


def snakemake(workdir: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
               "--directory", str(workdir), "--configfile", "config/smoke.yaml", *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=REPO)


@pytest.fixture(scope="module")
def finished_smoke(smoke_run) -> Path:
    _, workdir, _ = smoke_run
    return workdir


def report_stage(workdir: Path) -> tuple[subprocess.CompletedProcess, ...]:
    aggregate = snakemake(workdir, "--cores", "2", "--forcerun", *REPORT_RULES)
    html = snakemake(workdir, "--report", str(workdir / "results/smoke/report.html"))
    return aggregate, html


@pytest.mark.heavy  # a benchmark; the smoke DAG's own report jobs are in the fast tier
def test_report_stage_time(benchmark, finished_smoke):
    aggregate, html = benchmark.pedantic(report_stage, args=(finished_smoke,), rounds=1)
    assert aggregate.returncode == 0, aggregate.stderr[-2000:]
    assert html.returncode == 0, html.stderr[-2000:]
    for rule in REPORT_RULES:
        assert f"rule {rule}:" in aggregate.stdout + aggregate.stderr
    out = finished_smoke / "results/smoke"
    assert (out / "report.html").stat().st_size > 0
    assert (out / "tables/generation.tex").is_file()
    assert (out / "figures/shrinkage_projection_digits.png").is_file()
