"""Every registered GAN method and augmentation, tested the moment it registers.

Parametrized over the registries: each method alone, each augmentation composed with
vanilla, and AdaptiveMix composed with each augmentation. Every variant trains a few steps
on the CPU, is deterministic for a seed, logs the same structure at every step, and resumes
exactly from a checkpoint.
"""

from __future__ import annotations

import math

import pytest
import torch

from adaptivemix.gan.augment import AUGMENTS
from adaptivemix.gan.methods import METHODS, RunEnv
from adaptivemix.gan.trainer import train_gan
from adaptivemix.io import load_torch, read_jsonl
from tests.helpers import tiny_run_config

VARIANTS = [
    *METHODS.names(),
    *(f"vanilla+{a}" for a in AUGMENTS.names()),
    *(f"adaptivemix+{a}" for a in AUGMENTS.names()),
]
CORE_LOG_KEYS = {"step", "kimg", "time_s", "d_loss", "g_loss", "d_adv_real", "d_adv_fake", "g_adv"}


def run(tmp_path, name, digits, backbone, variant, callbacks=(), **overrides):
    cfg = tiny_run_config(variant, **overrides)
    env = RunEnv(feature_backbone=backbone)
    train_gan(cfg, digits, tmp_path / name / "run", tmp_path / name / "state",
              callbacks=callbacks, env=env)  # fmt: skip
    log = read_jsonl(tmp_path / name / "run" / "log.jsonl")
    weights = load_torch(tmp_path / name / "run" / "G_ema.pt")["state_dict"]
    return [{k: v for k, v in row.items() if k != "time_s"} for row in log], weights


def test_the_registries_hold_every_seed_paper_method():
    expected = {"vanilla", "adaptivemix", "mixup", "cutmix", "srmix", "glead", "pconv"}
    assert expected <= set(METHODS.names())
    assert {"diffaugment", "ada"} <= set(AUGMENTS.names())


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_trains_deterministically_with_one_log_structure(
    tmp_path, digits16, digits_backbone, variant
):
    log_a, weights_a = run(tmp_path, "a", digits16, digits_backbone, variant)
    log_b, weights_b = run(tmp_path, "b", digits16, digits_backbone, variant)
    assert log_a == log_b
    assert all(torch.equal(weights_a[k], weights_b[k]) for k in weights_a)
    keys = {frozenset(row) for row in log_a}
    assert len(keys) == 1, f"log columns change between steps: {keys}"
    assert CORE_LOG_KEYS - {"time_s"} <= set(log_a[0])
    assert all(math.isfinite(v) for row in log_a for v in row.values())
    other, _ = run(tmp_path, "c", digits16, digits_backbone, variant, seed=1)
    assert other != log_a


@pytest.mark.parametrize("variant", VARIANTS)
def test_variant_resumes_exactly(tmp_path, digits16, digits_backbone, variant):
    full_log, full_weights = run(tmp_path, "full", digits16, digits_backbone, variant)

    def interrupt(step):
        if step == 7:  # the last checkpoint was written at step 4
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, "cut", digits16, digits_backbone, variant, callbacks=[interrupt])
    resumed_log, resumed_weights = run(tmp_path, "cut", digits16, digits_backbone, variant)
    assert resumed_log == full_log
    assert all(torch.equal(full_weights[k], resumed_weights[k]) for k in full_weights)
