"""Cost of one GAN training step per registered variant, at the default profile's size.

Run with ``make bench`` (pytest-benchmark; writes ``results/benchmarks/step_cost.*``, every
variant relative to vanilla, from one run); ``make test`` runs each once as a smoke check.
Parametrized over the registries: every method alone, every augmentation with vanilla and
with AdaptiveMix, so a new plugin is benchmarked the moment it registers. The variants run
one after another, so load from other processes can land on one of them only; the ratio
AdaptiveMix / vanilla is measured interleaved in ``test_step_ratio.py``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from adaptivemix.gan.losses import build_adv_loss
from adaptivemix.gan.methods import RunEnv
from adaptivemix.gan.trainer import build_state, train_step
from adaptivemix.gan.variants import build_variant
from tests.helpers import tiny_run_config
from tests.test_method_registry import VARIANTS

#: The default profile's networks and batch, read from its config so the two never drift.
DEFAULT_GAN = yaml.safe_load((Path(__file__).parents[2] / "config/default.yaml").read_text())["gan"]
DEFAULT_SIZE = {k: DEFAULT_GAN[k] for k in ("g_width", "d_width", "z_dim", "batch_size")}


@pytest.mark.parametrize("method", VARIANTS)
def test_training_step_cost(benchmark, digits16, digits_backbone, method):
    cfg = tiny_run_config(method, **DEFAULT_SIZE)
    plugin, augment = build_variant(method, DEFAULT_GAN["method_options"])
    env = RunEnv(feature_backbone=digits_backbone)
    state = build_state(cfg, plugin, digits16.channels, augment, env)
    adv = build_adv_loss(cfg.adv_loss)
    reals = digits16.images["train"]
    for _ in range(3):  # warm-up: allocator and kernels
        train_step(state, plugin, adv, reals, cfg)
    benchmark.group = "gan-step"
    logs = benchmark.pedantic(
        train_step, args=(state, plugin, adv, reals, cfg), rounds=30, iterations=1
    )
    assert logs is not None and logs["d_loss"] == logs["d_loss"]  # finite, not NaN
