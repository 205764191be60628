"""The smoke workflow through SLURM: a one-node cluster started on this machine
(tests/slurm_cluster.py), the real Snakemake with snakemake-executor-plugin-slurm and
workflow/profiles/slurm, no mocks.

Without accounting storage ``sacct`` cannot answer, so the run asks the plugin to read job
states with ``squeue`` (the cluster keeps finished jobs visible for MinJobAge = 300 s) and to
check them every few seconds instead of its 40 s default. Evidence that the jobs ran through
SLURM, independent of Snakemake's own report: the controller's job-completion file
(jobcomp/filetxt) lists one COMPLETED job per workflow job, all named with this run's SLURM run
ID, and the plugin's per-job SLURM logs (kept with --slurm-keep-successful-logs).
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from adaptivemix.io import read_json
from tests.slurm_cluster import PARTITION, Cluster, ClusterError, start_cluster, stop_cluster

#: The slow tier (`make test-all`): this module starts a real SLURM cluster.
pytestmark = pytest.mark.heavy

# The whole smoke DAG (34 cluster jobs) takes about 11 min through SLURM on a 2-core machine
# (each job also starts Snakemake and torch), so the run is the smoke profile cut to one GAN run
# and one classifier run: every rule of the DAG still runs once, as its own SLURM job.
ONE_RUN_EACH = """\
data: {datasets: [digits]}
gan: {methods: [adaptivemix], seeds: [0], sweeps: []}
classify: {methods: [adaptivemix], seeds: [0]}
ood: {sets: {digits-0to5: [noise]}}
"""
# Its cluster jobs, counted by hand (`all` runs locally): one per rule, one dataset each.
EXPECTED_JOBS = {
    "prepare_dataset": 1, "train_backbone": 1, "reference_stats": 1, "train_gan": 1,
    "aggregate_gan": 1, "prepare_cls_dataset": 1, "prepare_ood_set": 1, "train_classifier": 1,
    "aggregate_classify": 1, "claims": 1, "report_tables": 1,
}  # fmt: skip


@pytest.fixture(scope="module")
def cluster(request):
    """A started cluster, stopped (daemons ended, directory removed) even when a test fails."""
    try:
        started = start_cluster()
    except ClusterError as error:
        pytest.fail(f"cannot start the one-node SLURM cluster: {error}", pytrace=False)
    request.addfinalizer(lambda: stop_cluster(started))
    return started


def snakemake_on_slurm(repo_root: Path, workdir: Path, cluster: Cluster, *args: str):
    command = [
        sys.executable, "-m", "snakemake", "--snakefile", str(repo_root / "Snakefile"),
        "--directory", str(workdir), "--executor", "slurm",
        "--profile", str(repo_root / "workflow/profiles/slurm"),
        "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "3",
        "--slurm-keep-successful-logs", *args,
    ]  # fmt: skip
    return subprocess.run(
        command, capture_output=True, text=True, timeout=900, cwd=repo_root, env=cluster.env()
    )


@pytest.fixture(scope="module")
def slurm_run(cluster, tmp_path_factory, repo_root):
    workdir = tmp_path_factory.mktemp("slurm")
    extra = workdir / "one_run_each.yaml"
    extra.write_text(ONE_RUN_EACH)
    config = [str(repo_root / "config/smoke.yaml"), str(extra)]
    start = time.monotonic()
    result = snakemake_on_slurm(repo_root, workdir, cluster, "--configfile", *config)
    seconds = time.monotonic() - start
    text = result.stdout + result.stderr
    assert result.returncode == 0, f"{text[-4000:]}\n{cluster.logs()}"
    print(f"smoke DAG (one run each) through SLURM: {seconds:.0f} s")
    return workdir, text, completed_jobs(cluster.jobcomp)


def completed_jobs(jobcomp: Path) -> list[dict[str, str]]:
    """One dict per line of the jobcomp/filetxt log: its Key=Value fields."""
    lines = jobcomp.read_text().splitlines() if jobcomp.exists() else []
    return [dict(re.findall(r"(\w+)=(\S*)", line)) for line in lines if line.strip()]


@pytest.mark.slow
def test_smoke_dag_on_slurm_writes_the_tables(slurm_run):
    workdir, _, _ = slurm_run
    out = workdir / "results/smoke"
    assert "adaptivemix" in (out / "tables/gan_digits.md").read_text()
    for figure in ("fid_curve_digits.png", "samples_digits.png", "roc_digits-0to5.png"):
        assert (out / "figures" / figure).stat().st_size > 0
    gan = read_json(out / "runs/gan/digits/dcgan/adaptivemix/seed0/metrics.json")
    assert gan["status"] == "ok" and gan["metrics"]["fid"] > 0
    run = "runs/classify/digits-0to5/wrn-10-1/adaptivemix/seed0"
    classifier = read_json(out / run / "metrics.json")
    assert classifier["status"] == "ok" and 0 <= classifier["metrics"]["clean_acc"] <= 1
    assert "adaptivemix" in (out / "tables/classify_digits-0to5.md").read_text()
    ood = (out / "tables/ood_digits-0to5.md").read_text()
    assert "### AUROC" in ood and "noise" in ood and "digits-6to9" not in ood


@pytest.mark.slow
def test_every_job_ran_as_a_slurm_job_of_this_run(slurm_run):
    _, text, jobs = slurm_run
    run_id = re.search(r"SLURM run ID: (\S+)", text)
    assert run_id, text[-2000:]
    assert len(jobs) == sum(EXPECTED_JOBS.values())
    assert {job["JobState"] for job in jobs} == {"COMPLETED"}
    assert {job["Name"] for job in jobs} == {run_id.group(1)}
    assert {job["Partition"] for job in jobs} == {PARTITION}
    assert len({job["JobId"] for job in jobs}) == len(jobs)


@pytest.mark.slow
def test_the_plugin_kept_one_slurm_log_per_job(slurm_run):
    workdir, _, jobs = slurm_run
    logs = workdir / ".snakemake/slurm_logs"
    counts = {rule: len(list(logs.glob(f"rule_{rule}/**/*.log"))) for rule in EXPECTED_JOBS}
    assert counts == EXPECTED_JOBS
    ids = {path.stem for path in logs.glob("rule_*/**/*.log")}
    assert ids == {job["JobId"] for job in jobs}  # each log is named by its SLURM job id
