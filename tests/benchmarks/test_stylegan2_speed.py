"""Cost of one StyleGAN2 training step (vanilla method, non-saturating loss, no R1), as the
trainer runs it (``build_state`` + ``train_step``), at 32×32 and 64×64, batch 8, 3 channels.

Widths are reduced for a CPU: channel_base 2048, channel_max 64 (64 channels up to 32×32,
32 at 64×64), w_dim 128, 8 mapping layers, z_dim 128; the rest is paper256. Reals: the digits
training split served at 32×32 as RGB, nearest-upsampled 2× for 64×64 (the dataset stops at
32). ``make bench`` runs it (group ``stylegan2-step``, images/s in ``extra_info``); with
``--benchmark-disable`` each case runs once as a smoke check.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import adaptivemix.models.stylegan2  # noqa: F401  (registers "stylegan2")
from adaptivemix.data import DATASETS
from adaptivemix.gan.losses import build_adv_loss
from adaptivemix.gan.trainer import build_state, train_step
from adaptivemix.gan.variants import build_variant
from tests.helpers import tiny_run_config

BATCH = 8
CPU_OPTIONS = dict(channel_base=2048, channel_max=64, w_dim=128)


@pytest.fixture(scope="module")
def reals32() -> torch.Tensor:
    return DATASETS.get("digits")(32).images["train"].repeat(1, 3, 1, 1)


@pytest.mark.parametrize("resolution", [32, 64])
def test_stylegan2_training_step_speed(benchmark, reals32, resolution):
    reals = reals32 if resolution == 32 else F.interpolate(reals32, scale_factor=2.0)
    cfg = tiny_run_config(
        "vanilla", resolution=resolution, arch="stylegan2", arch_options=CPU_OPTIONS,
        z_dim=128, batch_size=BATCH,
    )  # fmt: skip
    plugin, augment = build_variant("vanilla", {})
    state = build_state(cfg, plugin, 3, augment)
    adv = build_adv_loss(cfg.adv_loss)
    if not benchmark.disabled:
        train_step(state, plugin, adv, reals, cfg)  # warm-up: allocator
    benchmark.group = "stylegan2-step"
    logs = benchmark.pedantic(
        train_step, args=(state, plugin, adv, reals, cfg), rounds=5, iterations=1
    )
    assert logs is not None and logs["d_loss"] == logs["d_loss"]  # finite, not NaN
    stats = getattr(benchmark, "stats", None)
    if stats is not None:  # None under --benchmark-disable
        benchmark.extra_info["images_per_s"] = BATCH / stats.stats.mean
