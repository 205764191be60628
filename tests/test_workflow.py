"""The real Snakemake DAG, run end to end on the smoke profile (no mocks)."""

from __future__ import annotations

import json
import re

import pytest
from PIL import Image

from adaptivemix.io import read_json
from adaptivemix.report.overhead import breakdown, read_jobs
from tests.helpers import snakemake


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
def test_smoke_dag_writes_the_trend_limited_data_and_sweep_reports(smoke_run):
    out, _, _ = smoke_run
    trend = (out / "tables/fid_trend.md").read_text()
    for dataset in ("digits", "digits-25pct", "stacked-digits"):
        assert f"| {dataset} " in trend
    limited = (out / "tables/limited_data.md").read_text()
    assert "| digits     | digits-25pct | adaptivemix |" in limited
    sweep = (out / "tables/sweep_ablation.md").read_text()
    assert "(configured)" in sweep and "| 0.2 " in sweep  # the configured point and the other
    with Image.open(out / "figures/sweep_ablation.png") as image:
        assert image.width > 300
    for stem in ("fid_trend", "limited_data", "sweep_ablation"):
        assert (out / f"tables/{stem}.html").exists()  # listed in the report


@pytest.mark.slow
def test_every_run_records_metrics_protocol_and_provenance(smoke_run):
    out, _, _ = smoke_run
    metrics = sorted(out.glob("runs/gan/*/dcgan/*/seed*/metrics.json"))
    assert len(metrics) == 14  # 3 datasets × 2 methods × 2 seeds + the sweep's other point
    # the cut is measured against every training digit (evaluate.metric_data)
    n_real, n_modes = (
        {"digits": 1257, "stacked-digits": 10000, "digits-25pct": 1257},
        {"digits": 10, "stacked-digits": 1000, "digits-25pct": 10},
    )
    for path in metrics:
        record = read_json(path)
        assert record["status"] == "ok" and record["metrics"]["fid"] > 0
        assert 1 <= record["metrics"]["modes"] <= n_modes[record["dataset"]]
        assert record["protocol"]["backbone"] == "digits-cnn"
        assert record["protocol"]["n_gen"] == 300
        assert record["protocol"]["n_real"] == n_real[record["dataset"]]
        assert record["protocol"]["n_modes"] == n_modes[record["dataset"]]
        cut = record["dataset"] == "digits-25pct"
        assert record["protocol"].get("metric_data") == ("digits" if cut else None)
        assert record["provenance"]["libraries"]["torch"].startswith("2.14.1")
        assert record["config"]["seed"] == int(path.parent.name.removeprefix("seed"))
        assert (path.parent / "done").exists()
        log = [json.loads(line) for line in (path.parent / "log.jsonl").read_text().splitlines()]
        assert [r["step"] for r in log if "fid" in r] == [20, 40]
    fingerprints = {
        (read_json(p)["dataset"], read_json(p)["protocol_fingerprint"]) for p in metrics
    }
    assert len(fingerprints) == 3  # one protocol per dataset
    sweep_point = out / "runs/gan/digits-25pct/dcgan/adaptivemix@alpha=1.0,noise_std=0.2/seed0"
    options = read_json(sweep_point / "metrics.json")["config"]["method_options"]
    assert options["adaptivemix"] == {"alpha": 1.0, "noise_std": 0.2}


@pytest.mark.slow
def test_jobs_are_benchmarked_and_checkpoints_live_outside_outputs(smoke_run):
    out, _, _ = smoke_run
    assert len(list(out.glob("benchmarks/train_gan/**/*.tsv"))) == 14
    assert len(list(out.glob("state/gan/*/dcgan/*/seed*/checkpoint.pt"))) == 14
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
    # seed 2 of both methods on the three datasets and of the sweep's other point (a sweep
    # without seeds takes the experiment's): one train-and-evaluate job each, then the
    # aggregates, the claims matched against every run and the report's table pages
    expected = {"train_gan": 7, "aggregate_gan": 1, "aggregate_limited_data": 1,
                "aggregate_sweep": 1, "claims": 1, "report_tables": 1, "all": 1}  # fmt: skip
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
        selection = record["selection"]  # test accuracy at the val choice vs best seen
        assert selection["protocol"] == "val" and selection["n_evaluations"] == 2  # 2 epochs
        assert selection["best_test"]["test_acc"] >= selection["val_selected"]["test_acc"]
        assert selection["val_selected"]["test_acc"] == record["metrics"]["clean_acc"]
    table = (out / "tables/classify_digits-0to5.md").read_text()
    assert "erm" in table and "adaptivemix" in table and "pgd_acc" in table
    bias = (out / "tables/selection_bias.md").read_text()
    assert "optimism (pp)" in bias and "adaptivemix" in bias and "not recorded" not in bias
    assert (out / "tables/selection_bias.html").exists()
    ood_table = (out / "tables/ood_digits-0to5.md").read_text()
    assert "### AUROC" in ood_table and "mahalanobis" in ood_table and "digits-6to9" in ood_table
    with Image.open(out / "figures/roc_digits-0to5.png") as image:
        assert image.width > 300
    assert len(list(out.glob("benchmarks/train_classifier/**/*.tsv"))) == 4
    assert len(list(out.glob("state/classify/**/checkpoint.pt"))) == 4


@pytest.mark.slow
def test_every_job_records_its_time_and_the_overhead_adds_up(smoke_run):
    """Every job has a benchmark file; every one the CLI runs also its start-up and work
    seconds (report_tables is a Snakemake script); the breakdown fills the capacity."""
    out, _, _ = smoke_run
    benchmarks = sorted(out.glob("benchmarks/**/*.tsv"))
    rules = {p.relative_to(out / "benchmarks").parts[0] for p in benchmarks}
    assert len(benchmarks) == 33  # every job of the smoke DAG but `all`
    assert "train_gan" in rules and "aggregate_gan" in rules and "prepare_dataset" in rules
    for path in benchmarks:
        rule = path.relative_to(out / "benchmarks").parts[0]
        if rule == "report_tables":
            continue
        record = read_json(path.with_suffix(".timing.json"))
        assert 0 < record["startup_s"] < record["process_s"], path
        if rule in ("train_gan", "train_classifier"):
            assert record["work_s"]["train"] > 0 and record["work_s"]["evaluate"] > 0
    parts = breakdown(read_jobs(out), cores=2)
    categories = sum(v for k, v in parts.items() if k not in ("wall", "capacity", "work"))
    assert categories == pytest.approx(parts["capacity"])
    assert 0 < parts["work"] < parts["capacity"]


def job_counts(dry_run_output: str) -> dict[str, int]:
    """Parse the 'Job stats' table of ``snakemake -n``."""
    stats = dry_run_output.split("Job stats:")[1].split("Reasons:")[0]
    rows = re.findall(r"^(\w+)\s+(\d+)$", stats, flags=re.MULTILINE)
    return {name: int(n) for name, n in rows if name != "total"}
