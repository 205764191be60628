"""Shared fixtures. Every test process uses one intra-op thread: timings and bitwise
determinism then match what the workflow's single-thread jobs see."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from threadpoolctl import threadpool_limits

import adaptivemix.registries  # noqa: F401  (every core registry)
import baselines  # noqa: F401  (every baseline registers itself)
from tests.helpers import snakemake

torch.set_num_threads(1)
threadpool_limits(1)

REPO_ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def digits16():
    from adaptivemix.data import DATASETS

    return DATASETS.get("digits")(16)


@pytest.fixture(scope="session")
def digits_backbone(tmp_path_factory, digits16):
    """A briefly trained digits-cnn (real training, a few seconds): a run's feature backbone."""
    from adaptivemix.metrics.backbones import BACKBONE_TRAINERS, BACKBONES

    path = tmp_path_factory.mktemp("backbone") / "weights.pt"
    BACKBONE_TRAINERS.get("digits-cnn")(digits16, 0, steps=30, batch_size=32, out_path=path)
    return BACKBONES.get("digits-cnn")(path, "cpu")


@pytest.fixture(scope="session")
def smoke_run(tmp_path_factory, repo_root):
    """The smoke profile run once through the real DAG: (results folder, workdir, config)."""
    workdir = tmp_path_factory.mktemp("smoke")
    config = str(repo_root / "config/smoke.yaml")
    result = snakemake(repo_root, workdir, "--cores", "2", "--configfile", config)
    assert result.returncode == 0, result.stderr[-3000:]
    return workdir / "results/smoke", workdir, config


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the groups
def pytest_collection_modifyitems(config, items) -> None:
    """Under pytest-xdist (``make test`` runs a worker per core): the tests that read the
    session's smoke DAG share one worker, so the DAG is built once; the tests marked ``slow``
    (the shrunken DAGs) start first, so the longest ones do not end the run alone."""
    for item in items:
        if "smoke_run" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("smoke-dag"))
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
