"""SIGTERM (SLURM preemption): checkpoint at the end of the step, exit 143, resume exactly.

The main test runs the real CLI (``python -m adaptivemix train-gan``) on the embedded digits
with a briefly trained digits-cnn backbone, sends SIGTERM once the live log shows progress,
then reruns the same command to completion, and compares the final G_ema and D bit for bit
with an uninterrupted run of the same config.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from adaptivemix.data import save_prepared
from adaptivemix.gan.distributed import PREEMPTED_EXIT_CODE, Preempted
from adaptivemix.gan.trainer import train_gan
from adaptivemix.io import load_torch, read_json, read_jsonl
from adaptivemix.metrics.backbones import BACKBONE_TRAINERS, BACKBONES
from adaptivemix.metrics.fid import compute_reference_stats
from tests.helpers import tiny_run_config


def test_sigterm_in_process_saves_raises_and_restores_the_handler(tmp_path, digits16):
    cfg = tiny_run_config(steps=12, checkpoint_every=100)

    def handler(signum, frame):  # a caller's own handler, to be restored afterwards
        raise AssertionError("the trainer's handler should be active during training")

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        kill = lambda step: os.kill(os.getpid(), signal.SIGTERM) if step == 5 else None  # noqa: E731
        with pytest.raises(Preempted) as info:
            train_gan(cfg, digits16, tmp_path / "run", tmp_path / "state", callbacks=[kill])
        assert signal.getsignal(signal.SIGTERM) is handler
    finally:
        signal.signal(signal.SIGTERM, previous)
    assert info.value.step == 5
    assert load_torch(tmp_path / "state/checkpoint.pt")["step"] == 5
    assert not (tmp_path / "run").exists()  # no final outputs


def test_preempted_cli_run_resumes_to_the_uninterrupted_weights(tmp_path, digits16, repo_root):
    save_prepared(digits16, tmp_path / "data.pt")
    BACKBONE_TRAINERS.get("digits-cnn")(
        digits16, 0, steps=2, batch_size=16, out_path=tmp_path / "w.pt"
    )
    backbone = BACKBONES.get("digits-cnn")(tmp_path / "w.pt", "cpu")
    compute_reference_stats(digits16, "train", backbone).save(tmp_path / "ref.npz")
    cfg = tiny_run_config(
        steps=80, log_every=1, eval_every=10_000, eval_samples=16, checkpoint_every=10_000
    )
    run_dir, state_dir = tmp_path / "cli/run", tmp_path / "cli/state"
    command = [
        sys.executable, "-m", "adaptivemix", "--threads", "1", "train-gan",
        "--spec", json.dumps(cfg.to_dict()), "--dataset-file", str(tmp_path / "data.pt"),
        "--backbone", "digits-cnn", "--weights", str(tmp_path / "w.pt"),
        "--reference", str(tmp_path / "ref.npz"), "--run-dir", str(run_dir),
        "--state-dir", str(state_dir),
    ]  # fmt: skip
    env = os.environ | {"PYTHONPATH": str(repo_root)}

    proc = subprocess.Popen(command, env=env, cwd=repo_root, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not read_jsonl(state_dir / "log.jsonl") and proc.poll() is None:
        assert time.monotonic() < deadline, "no progress in the live log"
        time.sleep(0.02)
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == PREEMPTED_EXIT_CODE, err[-2000:]
    assert "preempted" in err
    stopped_at = load_torch(state_dir / "checkpoint.pt")["step"]
    assert 1 <= stopped_at < cfg.steps  # saved on SIGTERM: checkpoint_every is never reached
    assert not (run_dir / "G_ema.pt").exists() and not (run_dir / "train.json").exists()

    resumed = subprocess.run(command, env=env, cwd=repo_root, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert read_json(run_dir / "train.json")["resumed_from_step"] == stopped_at

    train_gan(cfg, digits16, tmp_path / "straight/run", tmp_path / "straight/state")
    straight = load_torch(tmp_path / "straight/state/checkpoint.pt")
    final = load_torch(state_dir / "checkpoint.pt")
    assert final["step"] == straight["step"] == cfg.steps
    for part in ("G_ema", "D", "G"):
        for key, value in straight[part].items():
            assert torch.equal(value, final[part][key]), (part, key)
    written = load_torch(run_dir / "G_ema.pt")["state_dict"]
    assert all(torch.equal(v, written[k]) for k, v in straight["G_ema"].items())
