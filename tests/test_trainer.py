"""The trainer: determinism, exact resume after an interruption, divergence handling."""

from __future__ import annotations

import math

import pytest
import torch

from adaptivemix.gan.trainer import train_gan
from adaptivemix.io import load_torch, read_json, read_jsonl
from tests.helpers import tiny_run_config


def pixel_stats(G, D) -> dict[str, float]:
    """A cheap stand-in metric for the evaluate hook: moments of 32 fixed samples."""
    gen = torch.Generator().manual_seed(99)
    with torch.no_grad():
        x = G.eval()(torch.randn(32, 16, generator=gen))
    return {"fid": float(x.mean()), "kid": float(x.std())}


def run(tmp_path, name, digits, cfg, callbacks=()):
    return train_gan(
        cfg, digits, tmp_path / name / "run", tmp_path / name / "state",
        evaluate=pixel_stats, callbacks=callbacks,
    )  # fmt: skip


@pytest.mark.parametrize("method", ["vanilla", "adaptivemix"])
def test_same_seed_gives_identical_results(tmp_path, digits16, method):
    cfg = tiny_run_config(method)
    run(tmp_path, "a", digits16, cfg)
    run(tmp_path, "b", digits16, cfg)
    log_a = read_jsonl(tmp_path / "a/run/log.jsonl")
    log_b = read_jsonl(tmp_path / "b/run/log.jsonl")
    strip = [{k: v for k, v in r.items() if k != "time_s"} for r in log_a]
    assert strip == [{k: v for k, v in r.items() if k != "time_s"} for r in log_b]
    assert [r["step"] for r in log_a if "fid" in r] == [6, 12]
    wa = load_torch(tmp_path / "a/run/G_ema.pt")["state_dict"]
    wb = load_torch(tmp_path / "b/run/G_ema.pt")["state_dict"]
    assert all(torch.equal(wa[k], wb[k]) for k in wa)


def test_different_seeds_differ(tmp_path, digits16):
    run(tmp_path, "a", digits16, tiny_run_config(seed=0))
    run(tmp_path, "b", digits16, tiny_run_config(seed=1))
    fa = [r["fid"] for r in read_jsonl(tmp_path / "a/run/log.jsonl") if "fid" in r]
    fb = [r["fid"] for r in read_jsonl(tmp_path / "b/run/log.jsonl") if "fid" in r]
    assert fa != fb


class SimulatedKillError(Exception):
    pass


def kill_at(step_to_die: int):
    def callback(step: int) -> None:
        if step == step_to_die:
            raise SimulatedKillError

    return callback


@pytest.mark.parametrize("method", ["vanilla", "adaptivemix"])
def test_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path, digits16, method):
    cfg = tiny_run_config(method)
    run(tmp_path, "straight", digits16, cfg)
    with pytest.raises(SimulatedKillError):  # dies at step 7: the last checkpoint is step 4
        run(tmp_path, "resumed", digits16, cfg, callbacks=[kill_at(7)])
    assert not (tmp_path / "resumed/run/G_ema.pt").exists()
    summary = run(tmp_path, "resumed", digits16, cfg)
    assert summary["resumed_from_step"] == 4

    straight = load_torch(tmp_path / "straight/state/checkpoint.pt")
    resumed = load_torch(tmp_path / "resumed/state/checkpoint.pt")
    for part in ("G", "D", "G_ema"):
        for key, value in straight[part].items():
            assert torch.equal(value, resumed[part][key]), (part, key)
    assert torch.equal(straight["rng"], resumed["rng"])
    drop_time = lambda rows: [{k: v for k, v in r.items() if k != "time_s"} for r in rows]  # noqa: E731
    assert drop_time(read_jsonl(tmp_path / "straight/run/log.jsonl")) == drop_time(
        read_jsonl(tmp_path / "resumed/run/log.jsonl")
    )


def test_checkpoint_of_another_config_is_not_resumed(tmp_path, digits16):
    run(tmp_path, "x", digits16, tiny_run_config(steps=4))
    summary = run(tmp_path, "x", digits16, tiny_run_config(steps=4, lr_g=1e-3))
    assert summary["resumed_from_step"] is None


def test_divergence_is_recorded_and_outputs_still_written(tmp_path, digits16):
    cfg = tiny_run_config(lr_d=1e30, lr_g=1e30, steps=50)
    summary = run(tmp_path, "nan", digits16, cfg)
    assert summary["status"] == "diverged"
    assert 1 <= summary["diverged_at_step"] <= 50
    assert summary["steps"] == summary["diverged_at_step"] - 1
    written = read_json(tmp_path / "nan/run/train.json")
    assert written["status"] == "diverged"
    last = read_jsonl(tmp_path / "nan/run/log.jsonl")[-1]
    assert last == {"step": summary["diverged_at_step"], "status": "diverged"}
    assert (tmp_path / "nan/run/samples.png").exists()
    assert not math.isnan(written["train_seconds"])
