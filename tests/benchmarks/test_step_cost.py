"""Cost of one GAN training step per method, at the default profile's model size.

Run with ``make bench`` (pytest-benchmark); ``make test`` runs each once as a smoke check.
Target (issue: foundation): an AdaptiveMix step costs ≤ 1.5× a vanilla step; compare the
``mean`` columns of the report.
"""

from __future__ import annotations

import pytest

from adaptivemix.gan.losses import build_adv_loss
from adaptivemix.gan.methods import METHODS, build_method
from adaptivemix.gan.trainer import build_state, train_step
from tests.helpers import tiny_run_config

#: The default profile's networks and batch (config/default.yaml).
DEFAULT_SIZE = dict(g_width=48, d_width=16, z_dim=64, batch_size=64)


@pytest.mark.parametrize("method", METHODS.names())
def test_training_step_cost(benchmark, digits16, method):
    cfg = tiny_run_config(method, **DEFAULT_SIZE)
    plugin = build_method(method, {})
    state = build_state(cfg, plugin, digits16.channels)
    adv = build_adv_loss(cfg.adv_loss)
    reals = digits16.images["train"]
    for _ in range(3):  # warm-up: allocator and kernels
        train_step(state, plugin, adv, reals, cfg)
    benchmark.group = "gan-step"
    logs = benchmark.pedantic(
        train_step, args=(state, plugin, adv, reals, cfg), rounds=30, iterations=1
    )
    assert logs is not None and logs["d_loss"] == logs["d_loss"]  # finite, not NaN
