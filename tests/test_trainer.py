"""The trainer: determinism, exact resume after an interruption, divergence handling."""

from __future__ import annotations

import math
import time

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


def test_evaluation_time_is_counted_apart_from_training(tmp_path, digits16):
    """The evaluate hook's and on_finish's wall time goes to ``session_eval_seconds``, not to
    ``train_seconds`` or the log's ``time_s`` (the overhead report counts it as work)."""
    pause = 0.15

    def slow_stats(G, D):
        time.sleep(pause)
        return pixel_stats(G, D)

    cfg = tiny_run_config(steps=4, eval_every=2)  # evaluations at steps 2 and 4
    started = time.perf_counter()
    summary = train_gan(
        cfg, digits16, tmp_path / "run", tmp_path / "state", evaluate=slow_stats,
        on_finish=lambda G, D, just_evaluated: time.sleep(pause),
    )  # fmt: skip
    wall = time.perf_counter() - started
    assert summary["session_eval_seconds"] >= 3 * pause
    assert summary["train_seconds"] + summary["session_eval_seconds"] <= wall
    assert summary["session_seconds"] == summary["train_seconds"]
    times = [r["time_s"] for r in read_jsonl(tmp_path / "run/log.jsonl")]
    assert times[-1] <= summary["train_seconds"] and times[-1] < wall - 3 * pause


def networks_seen(G, D) -> dict:
    return pixel_stats(G, D) | {"d_sum": float(sum(p.detach().sum() for p in D.parameters()))}


class FinishProbe:
    """Records each evaluate call's values and what on_finish is told and sees."""

    def __init__(self) -> None:
        self.last: dict | None = None
        self.finish: list[tuple[bool, dict]] = []

    def evaluate(self, G, D) -> dict:
        self.last = networks_seen(G, D)
        return self.last

    def on_finish(self, G, D, just_evaluated: bool) -> None:
        self.finish.append((just_evaluated, networks_seen(G, D)))


def finish_run(tmp_path, digits, cfg, hooks: FinishProbe, callbacks=()):
    return train_gan(
        cfg, digits, tmp_path / "run", tmp_path / "state", evaluate=hooks.evaluate,
        callbacks=callbacks, on_finish=hooks.on_finish,
    )  # fmt: skip


def test_on_finish_is_told_when_the_last_evaluation_saw_the_final_networks(tmp_path, digits16):
    hooks = FinishProbe()
    finish_run(tmp_path / "a", digits16, tiny_run_config(steps=4, eval_every=4), hooks)
    assert hooks.finish == [(True, hooks.last)]  # a run that ended evaluates its last step

    killed = FinishProbe()  # dies right after the step-4 checkpoint: nothing left to train
    with pytest.raises(SimulatedKillError):
        finish_run(tmp_path / "b", digits16, tiny_run_config(steps=4), killed, [kill_at(4)])
    resumed = FinishProbe()
    summary = finish_run(tmp_path / "b", digits16, tiny_run_config(steps=4), resumed)
    assert summary["resumed_from_step"] == 4
    assert resumed.last is None and [flag for flag, _ in resumed.finish] == [False]

    diverging = FinishProbe()
    cfg = tiny_run_config(lr_d=1e30, lr_g=1e30, steps=50, eval_every=1)
    assert finish_run(tmp_path / "c", digits16, cfg, diverging)["status"] == "diverged"
    assert [flag for flag, _ in diverging.finish] == [False]
