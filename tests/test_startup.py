"""What each kind of job imports: a process pays only for what its command uses.

Each check reads what a real process had imported when it ended: ``--help`` and the
registries in a fresh interpreter (``sys.modules``), and every job of the session's smoke DAG
from the ``packages`` of its timing record (the report, GAN, classifier and OOD-set jobs), so
a heavy import that creeps back in fails here by name.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from adaptivemix.io import read_json

#: Run the CLI's main() with the given arguments, then print the modules it imported.
PROBE = """
import json, sys
from adaptivemix.cli import main
try:
    code = main(sys.argv[1:])
except SystemExit as stop:
    code = stop.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""
#: Packages no training job of the embedded methods needs (plots, tables, timm's models, and
#: torchvision, which clean-fid's ``fid`` module would pull in).
NOT_FOR_TRAINING = ("timm", "torchvision", "matplotlib", "pandas")
#: The rules whose jobs only read results and write tables and figures.
REPORT_RULES = ("aggregate_gan", "aggregate_sweep", "aggregate_limited_data",
                "aggregate_classify", "claims")  # fmt: skip


def imported_by(*argv: str, cwd=None) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=600, cwd=cwd
    )
    assert out.returncode == 0, out.stderr[-3000:]
    record = json.loads(out.stdout.strip().splitlines()[-1])
    assert record["code"] == 0, out.stderr[-3000:]
    return set(record["modules"])


def test_help_imports_neither_torch_nor_numpy():
    modules = imported_by("--help")
    assert {"torch", "numpy", "yaml", "pandas"}.isdisjoint(modules)


def test_registries_hold_every_plugin_without_heavy_dependencies():
    """Registering every core plugin and baseline imports torch, never what only some
    plugins use at run time: a plugin imports such a library where it uses it."""
    code = (
        "import json, sys, adaptivemix.registries, baselines; "
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    modules = set(json.loads(out.stdout))
    assert "torch" in modules
    heavy = sorted({*NOT_FOR_TRAINING, "sklearn", "cleanfid"} & modules)
    assert heavy == [], f"importing the registries pulls {heavy}"


def job_packages(out: Path, rule: str) -> dict[str, set[str]]:
    """The packages each of the smoke DAG's ``rule`` jobs had imported when it ended, from
    its timing record (``adaptivemix --timing``)."""
    files = sorted((out / "benchmarks" / rule).rglob("*.timing.json"))
    assert files, f"the smoke DAG ran no {rule} job"
    return {str(f.relative_to(out)): set(read_json(f)["packages"]) for f in files}


@pytest.mark.slow
def test_report_jobs_never_import_torch(smoke_run):
    out, _, _ = smoke_run
    for rule in REPORT_RULES:
        for job, packages in job_packages(out, rule).items():
            assert "pandas" in packages, job  # it did its work
            assert "torch" not in packages, job


@pytest.mark.slow
def test_gan_jobs_import_no_timm_torchvision_or_plotting(smoke_run):
    out, _, _ = smoke_run
    jobs = job_packages(out, "train_gan")
    assert any("/adaptivemix/" in job for job in jobs) and any("/vanilla/" in job for job in jobs)
    for job, packages in jobs.items():
        heavy = sorted({*NOT_FOR_TRAINING, "sklearn"} & packages)
        assert heavy == [], f"{job} imported {heavy}"


@pytest.mark.slow
def test_a_gan_job_rerun_with_other_evaluation_settings_only_evaluates(smoke_run, tmp_path):
    out, workdir, _ = smoke_run
    run = "gan/digits/dcgan/vanilla/seed0"
    for part in ("runs", "state"):
        shutil.copytree(out / part / run, tmp_path / part)
    spec = read_json(tmp_path / "runs/metrics.json")["config"]
    imported_by(
        "--threads", "1", "train-gan", "--spec", json.dumps(spec),
        "--dataset-file", str(out / "data/digits/dataset.pt"), "--backbone", "digits-cnn",
        "--weights", str(out / "backbones/digits-cnn/weights.pt"),
        "--reference", str(out / "reference/digits/train/digits-cnn.npz"),
        "--run-dir", str(tmp_path / "runs"), "--state-dir", str(tmp_path / "state"),
        "--n-gen", "80", "--pr-k", "3", cwd=workdir,
    )  # fmt: skip
    summary = read_json(tmp_path / "runs/train.json")
    assert summary["resumed_from_step"] == spec["steps"] and summary["session_seconds"] == 0
    assert read_json(tmp_path / "runs/metrics.json")["protocol"]["n_gen"] == 80


@pytest.mark.slow
def test_classifier_jobs_import_no_timm_or_plotting(smoke_run):
    out, _, _ = smoke_run
    # scikit-learn's ROC/PR metrics score the OOD detectors, and import pandas themselves
    for job, packages in job_packages(out, "train_classifier").items():
        heavy = sorted((set(NOT_FOR_TRAINING) - {"pandas"}) & packages)
        assert heavy == [], f"{job} imported {heavy}"


@pytest.mark.slow
def test_ood_set_jobs_import_no_metrics_library(smoke_run):
    out, _, _ = smoke_run
    jobs = job_packages(out, "prepare_ood_set")
    for job, packages in jobs.items():
        # a set cut from the embedded digits reads them through scikit-learn (and pandas)
        from_digits = Path(job).name.startswith("digits-")
        not_needed = (
            set(NOT_FOR_TRAINING) - {"pandas"} if from_digits else {*NOT_FOR_TRAINING, "sklearn"}
        )
        heavy = sorted(not_needed & packages)
        assert heavy == [], f"{job} imported {heavy}"
    assert any(Path(job).name.startswith("noise.") for job in jobs)


def test_schema_refusal_needs_no_torch(repo_root):
    """The workflow checks the schema before it imports the plugins: a misspelled key is
    refused without paying for torch."""
    code = (
        "import sys, yaml\n"
        "from adaptivemix.config import schema_checked\n"
        "from adaptivemix.errors import ConfigError\n"
        "raw = yaml.safe_load(open('config/smoke.yaml'))\n"
        "raw['gan']['stpes'] = 3\n"
        "try:\n    schema_checked(raw)\nexcept ConfigError as err:\n    print(err)\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=repo_root
    )
    assert out.returncode == 0, out.stderr[-3000:]
    message, torch_imported = out.stdout.strip().splitlines()[-2:]
    assert "stpes" in message and torch_imported == "False"
