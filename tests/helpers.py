"""Small builders shared by tests (not fixtures: plain functions with explicit arguments)."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from adaptivemix.config import GanRunConfig

#: Options every method-wide test gives: the digits' 16-px images are below LPIPS's smallest
#: side (GLeaD's default distance), so GLeaD measures its reconstructions in pixels there.
TEST_METHOD_OPTIONS = {"glead": {"perceptual": "pixel"}}


def tiny_run_config(method: str = "vanilla", seed: int = 0, **overrides) -> GanRunConfig:
    """A GAN run that takes well under a second on one CPU thread."""
    values = dict(
        dataset="digits", resolution=16, arch="dcgan", g_width=8, d_width=8, z_dim=16,
        method=method, method_options=TEST_METHOD_OPTIONS, adv_loss="nonsaturating", seed=seed,
        steps=12, batch_size=16, lr_g=2e-4, lr_d=2e-4, betas=(0.5, 0.99), r1_gamma=0.0,
        ema_kimg=0.1, log_every=2, eval_every=6, eval_samples=64, checkpoint_every=4,
    )  # fmt: skip
    values.update(overrides)
    return GanRunConfig(**values)


def snakemake(repo_root: Path, workdir: Path, *args: str) -> subprocess.CompletedProcess:
    """The real Snakemake on this repository's Snakefile, in ``workdir``."""
    command = [sys.executable, "-m", "snakemake", "--snakefile", str(repo_root / "Snakefile"),
               "--directory", str(workdir), *args]  # fmt: skip
    return subprocess.run(command, capture_output=True, text=True, timeout=1800, cwd=repo_root)


#: What a copy of the project needs to run its workflow.
PROJECT_PARTS = ("Snakefile", "workflow", "config", "adaptivemix", "baselines")


def copy_project(repo_root: Path, copy: Path) -> Path:
    """Copy the workflow, configs and packages of the project into ``copy`` (for tests that
    add a plugin file without touching the repository)."""
    for part in PROJECT_PARTS:
        source = repo_root / part
        if source.is_dir():
            shutil.copytree(source, copy / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(source, copy / part)
    return copy


def smoke_config() -> dict:
    """``config/smoke.yaml`` without its studies (the digits cut, its metric data and the
    sweep on it): the base that config tests change. A test that swaps the datasets would
    otherwise first meet the sweep of a dataset no longer trained."""
    config = yaml.safe_load((Path(__file__).parent.parent / "config/smoke.yaml").read_text())
    config["data"]["datasets"] = [d for d in config["data"]["datasets"] if d != "digits-25pct"]
    config["gan"].pop("sweeps", None)
    config["evaluate"].pop("metric_data", None)
    return config
