"""What each kind of job imports: a process pays only for what its command uses.

Each check runs a real command in a fresh interpreter and reads ``sys.modules`` at its end
(``--help``, the report commands, one GAN and one classifier train-and-evaluate job on the
smoke run's data), so a heavy import that creeps back in fails here by name.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from adaptivemix.classify.config import cls_run_config
from adaptivemix.config import load_workflow_config
from adaptivemix.io import read_json
from tests.helpers import tiny_run_config

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
#: What no training job of the embedded methods needs (metrics, plots, tables, timm's models).
NOT_FOR_TRAINING = ("timm", "torchvision", "matplotlib", "pandas", "cleanfid.fid")


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
    heavy = sorted({*NOT_FOR_TRAINING, "sklearn"} & modules)
    assert heavy == [], f"importing the registries pulls {heavy}"


@pytest.mark.slow
def test_report_commands_never_import_torch(smoke_run, tmp_path):
    out, _, _ = smoke_run
    gan = sorted(str(p) for p in out.glob("runs/gan/*/*/*/seed*/metrics.json"))
    cls = sorted(str(p) for p in out.glob("runs/classify/*/*/*/seed*/metrics.json"))
    ood = [p.replace("metrics.json", "ood.json") for p in cls]
    claims = ("--claims", "config/claims.csv", "--out-dir", str(tmp_path))
    cut = [p for p in gan if "/digits/" in p or "/digits-25pct/" in p]
    sweep = json.dumps({"name": "s", "method": "adaptivemix", "dataset": "digits-25pct",
                        "grid": {"noise_std": [0.05, 0.2], "alpha": [1.0]}})  # fmt: skip
    commands = [
        ("aggregate", "--metrics", *gan, "--out-dir", str(tmp_path / "gan")),
        (
            "aggregate-sweep",
            "--metrics",
            *cut,
            "--sweep",
            sweep,
            "--configured",
            '{"alpha": 1.0, "noise_std": 0.05}',
            "--baseline",
            "vanilla",
            "--out-dir",
            str(tmp_path / "sweep"),
        ),
        (
            "aggregate-limited-data",
            "--metrics",
            *cut,
            "--groups",
            '{"digits": ["digits-25pct"]}',
            "--baseline",
            "vanilla",
            "--out-dir",
            str(tmp_path / "cut"),
        ),
        ("aggregate-classify", "--metrics", *cls, "--ood", *ood, "--out-dir", str(tmp_path)),
        ("claims", "--metrics", *gan, *cls, *claims),
    ]
    for argv in commands:
        modules = imported_by(*argv)
        assert "pandas" in modules  # it did its work
        assert "torch" not in modules, argv[0]
    assert (tmp_path / "gan/tables/gan_digits.md").exists()
    assert (tmp_path / "sweep/figures/sweep_s.png").exists()
    assert (tmp_path / "cut/tables/limited_data.md").exists()


def _gan_job(out, tmp_path, repo_root, n_gen: int) -> set[str]:
    spec = json.dumps(tiny_run_config("vanilla", steps=4, eval_every=4).to_dict())
    return imported_by(
        "--threads", "1", "train-gan", "--spec", spec,
        "--dataset-file", str(out / "data/digits/dataset.pt"), "--backbone", "digits-cnn",
        "--weights", str(out / "backbones/digits-cnn/weights.pt"),
        "--reference", str(out / "reference/digits/train/digits-cnn.npz"),
        "--run-dir", str(tmp_path / "run"), "--state-dir", str(tmp_path / "state"),
        "--n-gen", str(n_gen), "--pr-k", "3", cwd=repo_root,
    )  # fmt: skip


@pytest.mark.slow
def test_gan_job_imports_no_timm_torchvision_or_plotting(smoke_run, tmp_path, repo_root):
    out, _, _ = smoke_run
    modules = _gan_job(out, tmp_path, repo_root, n_gen=64)
    assert (tmp_path / "run/metrics.json").exists()
    heavy = sorted({*NOT_FOR_TRAINING, "sklearn"} & modules)
    assert heavy == [], f"a vanilla GAN job imported {heavy}"
    # the job rerun with other evaluation settings resumes at the last step: it only evaluates
    _gan_job(out, tmp_path, repo_root, n_gen=80)
    summary = read_json(tmp_path / "run/train.json")
    assert summary["resumed_from_step"] == 4 and summary["session_seconds"] == 0
    assert read_json(tmp_path / "run/metrics.json")["protocol"]["n_gen"] == 80


@pytest.mark.slow
def test_classifier_job_imports_no_timm_or_plotting(smoke_run, tmp_path, repo_root):
    out, _, config = smoke_run
    raw = yaml.safe_load(Path(config).read_text())
    raw["classify"]["epochs"] = 1
    cfg = cls_run_config(load_workflow_config(raw), "digits-0to5", "erm", 0)
    modules = imported_by(
        "--threads", "1", "train-classifier", "--spec", json.dumps(cfg.to_dict()),
        "--dataset-file", str(out / "data/classify/digits-0to5/dataset.pt"),
        "--run-dir", str(tmp_path / "run"), "--state-dir", str(tmp_path / "state"),
        "--attacks", json.dumps({"fgsm": {"eps": 0.1}}), "--batch-size", "500",
        "--ood-files", str(out / "data/ood/digits-0to5/noise.pt"),
        "--detectors", json.dumps({"msp": {}}), cwd=repo_root,
    )  # fmt: skip
    assert (tmp_path / "run/ood.json").exists()
    # scikit-learn's ROC/PR metrics score the OOD detectors, and import pandas themselves
    heavy = sorted((set(NOT_FOR_TRAINING) - {"pandas"}) & modules)
    assert heavy == [], f"an ERM classifier job imported {heavy}"


@pytest.mark.slow
def test_ood_set_job_imports_no_metrics_library(smoke_run, tmp_path, repo_root):
    out, _, _ = smoke_run
    modules = imported_by(
        "--threads", "1", "prepare-ood-set", "--name", "noise",
        "--id-dataset-file", str(out / "data/classify/digits-0to5/dataset.pt"),
        "--source", "{}", "--out", str(tmp_path / "noise.pt"), cwd=repo_root,
    )  # fmt: skip
    assert (tmp_path / "noise.pt").exists()
    heavy = sorted({*NOT_FOR_TRAINING, "sklearn"} & modules)
    assert heavy == [], f"preparing an OOD set imported {heavy}"


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
