"""Each profile is its own config file: run from the project folder, where
config/default.yaml sits, another profile takes nothing from the default one.

Snakemake merges a ``--configfile`` into the Snakefile's own ``configfile:`` key by key, so
the default profile's sweeps, limited-data cut and method options would leak into every
other profile run from the project root (the tests elsewhere run in empty work folders,
where that file is absent). Real dry runs of a copy of the project, in its own folder.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.helpers import copy_project
from tests.test_workflow import job_counts


def dry_run(project, *args: str) -> str:
    command = [sys.executable, "-m", "snakemake", "-n", *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=project)
    text = result.stdout + result.stderr
    assert result.returncode == 0, text[-3000:]
    return text


@pytest.fixture(scope="module")
def project(repo_root, tmp_path_factory):
    return copy_project(repo_root, tmp_path_factory.mktemp("project"))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("profile", "runs"),
    [
        # 3 datasets × 2 methods × 2 seeds + the sweep's other point × 2 seeds
        ("smoke", 14),
        # stacked digits only: 5 variants × 3 seeds, no sweep, no cut, no classifier
        ("modes", 15),
        # 2 methods × 3 seeds on digits and on the cut + 5 new sweep points × 3 seeds
        ("limited", 27),
    ],
)
def test_a_profile_takes_nothing_from_the_default_one(project, profile, runs):
    counts = job_counts(dry_run(project, "--configfile", f"config/{profile}.yaml"))
    assert counts["train_gan"] == runs
    if profile != "smoke":
        assert "train_classifier" not in counts
    assert ("aggregate_sweep" in counts) == (profile != "modes")


@pytest.mark.slow
def test_without_a_configfile_the_default_profile_runs(project):
    counts = job_counts(dry_run(project))
    # 10 methods × 3 seeds on digits, 2 × 3 on the cut; 5 methods × 3 seeds on 2 classification sets
    assert counts["train_gan"] == 36 and counts["train_classifier"] == 30
    assert counts["aggregate_limited_data"] == 1 and "aggregate_sweep" not in counts
