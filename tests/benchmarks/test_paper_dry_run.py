"""Wall time of `snakemake -n` on the paper profile (the whole matrix, no data): target ≤ 15 s.

Run with ``make bench``; ``make test-all`` (slow tier) runs it once and checks the DAG was built
(``make test`` dry-runs the paper profile in ``tests/test_paper_profile.py``).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).parents[2]


def dry_run(workdir: Path) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(REPO / "Snakefile"),
               "--directory", str(workdir), "-n", "--configfile", "config/paper.yaml"]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=300, cwd=REPO)


@pytest.mark.heavy  # a benchmark
def test_paper_dag_dry_run_time(benchmark, tmp_path):
    result = benchmark.pedantic(dry_run, args=(tmp_path,), rounds=3, iterations=1)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "train_gan" in result.stdout + result.stderr
