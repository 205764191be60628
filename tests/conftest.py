"""Shared fixtures. Every test process uses one intra-op thread: timings and bitwise
determinism then match what the workflow's single-thread jobs see."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from threadpoolctl import threadpool_limits

import adaptivemix.registries  # noqa: F401  (every core registry)
import baselines  # noqa: F401  (every baseline registers itself)

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
