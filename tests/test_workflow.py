"""The real Snakemake DAG, run end to end on the smoke profile (no mocks)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from adaptivemix.io import read_json


def snakemake(repo_root: Path, workdir: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(repo_root / "Snakefile"),
               "--directory", str(workdir), *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=repo_root)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory, repo_root):
    workdir = tmp_path_factory.mktemp("smoke")
    config = str(repo_root / "config/smoke.yaml")
    result = snakemake(repo_root, workdir, "--cores", "2", "--configfile", config)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir / "results/smoke", workdir, config


@pytest.mark.slow
def test_smoke_dag_writes_tables_and_figures(smoke_run):
    out, _, _ = smoke_run
    for dataset in ("digits", "stacked-digits"):
        table = (out / f"tables/gan_{dataset}.md").read_text()
        assert "vanilla" in table and "adaptivemix" in table and "±" in table
        assert "modes (mean" in table and "kl_modes (mean" in table
        for figure in (f"fid_curve_{dataset}.png", f"samples_{dataset}.png"):
            with Image.open(out / "figures" / figure) as image:
                assert image.width > 100 and image.height > 100


@pytest.mark.slow
def test_every_run_records_metrics_protocol_and_provenance(smoke_run):
    out, _, _ = smoke_run
    metrics = sorted(out.glob("runs/gan/*/dcgan/*/seed*/metrics.json"))
    assert len(metrics) == 8  # 2 datasets × 2 methods × 2 seeds
    n_real, n_modes = (
        {"digits": 1257, "stacked-digits": 10000},
        {"digits": 10, "stacked-digits": 1000},
    )
    for path in metrics:
        record = read_json(path)
        assert record["status"] == "ok" and record["metrics"]["fid"] > 0
        assert 1 <= record["metrics"]["modes"] <= n_modes[record["dataset"]]
        assert record["protocol"]["backbone"] == "digits-cnn"
        assert record["protocol"]["n_gen"] == 300
        assert record["protocol"]["n_real"] == n_real[record["dataset"]]
        assert record["protocol"]["n_modes"] == n_modes[record["dataset"]]
        assert record["provenance"]["libraries"]["torch"].startswith("2.14.1")
        assert record["config"]["seed"] == int(path.parent.name.removeprefix("seed"))
        assert (path.parent / "done").exists()
        log = [json.loads(line) for line in (path.parent / "log.jsonl").read_text().splitlines()]
        assert [r["step"] for r in log if "fid" in r] == [20, 40]
    fingerprints = {
        (read_json(p)["dataset"], read_json(p)["protocol_fingerprint"]) for p in metrics
    }
    assert len(fingerprints) == 2  # one protocol per dataset


@pytest.mark.slow
def test_jobs_are_benchmarked_and_checkpoints_live_outside_outputs(smoke_run):
    out, _, _ = smoke_run
    assert len(list(out.glob("benchmarks/train_gan/**/*.tsv"))) == 8
    assert len(list(out.glob("state/gan/*/dcgan/*/seed*/checkpoint.pt"))) == 8
    summary = read_json(out / "backbones/digits-cnn/summary.json")
    assert summary["test_accuracy"] > 0.9


@pytest.mark.slow
def test_a_finished_dag_has_nothing_left_to_do(smoke_run, repo_root):
    _, workdir, config = smoke_run
    result = snakemake(repo_root, workdir, "-n", "--configfile", config)
    assert result.returncode == 0
    assert "Nothing to be done" in result.stdout + result.stderr


@pytest.mark.slow
def test_adding_a_method_adds_only_its_jobs(smoke_run, repo_root, tmp_path):
    _, workdir, config = smoke_run
    extra = tmp_path / "extra.yaml"
    extra.write_text("gan:\n  methods: [vanilla, adaptivemix]\n  seeds: [0, 1, 2]\n")
    result = snakemake(repo_root, workdir, "-n", "--configfile", config, str(extra))
    text = result.stdout + result.stderr
    assert result.returncode == 0, text[-2000:]
    # seed 2 of both methods on both datasets: train + evaluate each, then the aggregate,
    # the claims matched against every run and the report's table pages
    expected = {"train_gan": 4, "evaluate_gan": 4, "aggregate_gan": 1, "claims": 1,
                "report_tables": 1, "all": 1}  # fmt: skip
    assert job_counts(text) == expected


@pytest.mark.slow
def test_classification_track_writes_accuracy_and_ood_reports(smoke_run):
    out, _, _ = smoke_run
    metrics = sorted(out.glob("runs/classify/digits-0to5/wrn-10-1/*/seed*/metrics.json"))
    assert len(metrics) == 4  # 2 methods × 2 seeds
    for path in metrics:
        record = read_json(path)
        assert record["task"] == "classify" and record["status"] == "ok"
        assert set(record["metrics"]) == {"clean_acc", "fgsm_acc", "pgd_acc", "val_acc"}
        assert record["protocol"]["n_test"] == 217  # the digits 0-5 among the 360 test digits
        assert record["protocol"]["attacks"]["pgd"]["steps"] == 3
        assert "L∞" in record["protocol"]["label"]
        ood = read_json(path.parent / "ood.json")
        pairs = {(r["detector"], r["ood_set"]) for r in ood["results"]}
        assert len(pairs) == 10  # 5 detectors × 2 OOD sets
        assert all(0.0 <= r["metrics"]["auroc"] <= 1.0 for r in ood["results"])
    table = (out / "tables/classify_digits-0to5.md").read_text()
    assert "erm" in table and "adaptivemix" in table and "pgd_acc" in table
    ood_table = (out / "tables/ood_digits-0to5.md").read_text()
    assert "### AUROC" in ood_table and "mahalanobis" in ood_table and "digits-6to9" in ood_table
    with Image.open(out / "figures/roc_digits-0to5.png") as image:
        assert image.width > 300
    assert len(list(out.glob("benchmarks/train_classifier/**/*.tsv"))) == 4
    assert len(list(out.glob("state/classify/**/checkpoint.pt"))) == 4


def job_counts(dry_run_output: str) -> dict[str, int]:
    """Parse the 'Job stats' table of ``snakemake -n``."""
    stats = dry_run_output.split("Job stats:")[1].split("Reasons:")[0]
    rows = re.findall(r"^(\w+)\s+(\d+)$", stats, flags=re.MULTILINE)
    return {name: int(n) for name, n in rows if name != "total"}
