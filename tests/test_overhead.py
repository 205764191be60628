"""Where a profile's wall time went: the breakdown checked on benchmark files written by hand."""

from __future__ import annotations

import json
import os

import pytest

from adaptivemix.report.overhead import breakdown, overhead_table, read_jobs

HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def _job(root, rule, name, wall_s, ended_at, timing=None):
    """One job's Snakemake benchmark file (its mtime: the job's end) and its timing file."""
    tsv = root / "benchmarks" / rule / f"{name}.tsv"
    tsv.parent.mkdir(parents=True, exist_ok=True)
    tsv.write_text(HEADER + f"{wall_s}\t0:00:00\t1\t1\t1\t1\t0\t0\t50\t{wall_s}\n")
    os.utime(tsv, (ended_at, ended_at))
    if timing is not None:
        (root / "benchmarks" / rule / f"{name}.timing.json").write_text(json.dumps(timing))


@pytest.fixture
def finished(tmp_path):
    # two cores; jobs from t=100: a training job 100..120 and one 100..110, then a report
    # 121..125 without a timing file: a span of 25 s, so 50 core-seconds
    a = {"process_s": 19.0, "startup_s": 2.0, "work_s": {"train": 12.0, "evaluate": 3.0}}
    _job(tmp_path, "train_gan", "a", 20.0, 120.0, a)
    _job(tmp_path, "train_gan", "b", 10.0, 110.0,
         {"process_s": 9.5, "startup_s": 1.5, "work_s": {"train": 6.0}})  # fmt: skip
    _job(tmp_path, "report_tables", "all", 4.0, 125.0)
    return tmp_path


def test_breakdown_by_hand(finished):
    parts = breakdown(read_jobs(finished), cores=2)
    assert parts["wall"] == pytest.approx(25.0)
    assert parts["capacity"] == pytest.approx(50.0)
    assert parts["work: train"] == pytest.approx(18.0)
    assert parts["work: evaluate"] == pytest.approx(3.0)
    assert parts["work"] == pytest.approx(21.0)
    assert parts["start-up (interpreter, imports)"] == pytest.approx(3.5)
    assert parts["in-job rest (loading, writing)"] == pytest.approx(28.5 - 21.0 - 3.5)
    assert parts["job launch (outside the process)"] == pytest.approx(30.0 - 28.5)
    assert parts["untimed jobs"] == pytest.approx(4.0)
    assert parts["idle / scheduling"] == pytest.approx(50.0 - 34.0)
    categories = [v for k, v in parts.items() if k not in ("wall", "capacity", "work")]
    assert sum(categories) == pytest.approx(parts["capacity"])


def test_measured_wall_time_replaces_the_span(finished):
    parts = breakdown(read_jobs(finished), cores=2, wall_s=30.0)
    assert parts["capacity"] == pytest.approx(60.0)
    assert parts["idle / scheduling"] == pytest.approx(60.0 - 34.0)


def test_table_states_the_overhead_share(finished):
    table = overhead_table(finished, cores=2)
    assert "3 jobs, wall 25.0 s on 2 cores = 50.0 core-seconds" in table
    assert "overhead share (1 − work / capacity): 58.0 %" in table  # 1 − 21/50
    assert "| work: train | 18.0 | 36.0 % |" in table


def test_no_benchmark_files_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the profile first"):
        read_jobs(tmp_path)
