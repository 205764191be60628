"""One trainer per run: a second trainer of a run refuses at once and writes nothing; the
first ends as an uninterrupted run; a killed trainer's lock never blocks the rerun.

The trainers under test are real processes: a small driver (``python -c``) calls
``train_gan`` / ``train_classifier`` and, at a chosen step, signals that it is paused and
waits for a file, so the test knows the lock is held while it starts the second trainer.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from adaptivemix.classify.trainer import train_classifier
from adaptivemix.data import save_prepared
from adaptivemix.data.base import ImageDataset
from adaptivemix.gan.trainer import train_gan
from adaptivemix.io import load_torch, read_jsonl
from adaptivemix.run_lock import RunLockedError, hold_run, lock_path
from tests.helpers import tiny_run_config
from tests.test_cls_trainer import tiny_cls_config

DRIVER = """
import json, sys, time
from pathlib import Path
import torch
from threadpoolctl import threadpool_limits
torch.set_num_threads(1)
threadpool_limits(1)
import adaptivemix.registries, baselines
from adaptivemix.data import load_prepared
kind, spec, data, run_dir, state_dir, pause_at, go = sys.argv[1:]

def pause(step):
    if step == int(pause_at):
        Path(go + ".paused").touch()
        while not Path(go).exists():
            time.sleep(0.02)

if kind == "gan":
    from adaptivemix.config import GanRunConfig
    from adaptivemix.gan.trainer import train_gan
    cfg = GanRunConfig.from_dict(json.loads(spec))
    train_gan(cfg, load_prepared(data), run_dir, state_dir, callbacks=[pause])
else:
    from adaptivemix.classify.config import ClsRunConfig
    from adaptivemix.classify.trainer import train_classifier
    cfg = ClsRunConfig.from_dict(json.loads(spec))
    train_classifier(cfg, load_prepared(data), run_dir, state_dir, [pause])
"""

GAN_CFG = tiny_run_config(steps=16, log_every=1, checkpoint_every=4)


def _driver(repo_root, kind, cfg, data, run_dir, state_dir, pause_at=0, go=Path("-")):
    args = [kind, json.dumps(cfg.to_dict()), data, run_dir, state_dir, pause_at, go]
    command = [sys.executable, "-c", DRIVER, *map(str, args)]
    env = os.environ | {"PYTHONPATH": str(repo_root)}
    return command, dict(env=env, cwd=repo_root, text=True)


def _start_paused(repo_root, kind, cfg, data, run_dir, state_dir, pause_at, go):
    """A trainer process, returned once it is paused (holding the lock) at ``pause_at``."""
    command, kw = _driver(repo_root, kind, cfg, data, run_dir, state_dir, pause_at, go)
    proc = subprocess.Popen(command, stderr=subprocess.PIPE, **kw)
    deadline = time.monotonic() + 180
    while not Path(f"{go}.paused").exists():
        assert proc.poll() is None, proc.communicate()[1][-3000:]
        assert time.monotonic() < deadline, "the trainer never reached its pause"
        time.sleep(0.05)
    return proc


def _snapshot(folder: Path) -> dict:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _strip(rows: list[dict]) -> list[dict]:
    return [{k: v for k, v in r.items() if k != "time_s"} for r in rows]


def _same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def gan_straight(tmp_path_factory, digits16):
    """One uninterrupted GAN run of GAN_CFG (in this process): (run folder, data file)."""
    root = tmp_path_factory.mktemp("straight")
    train_gan(GAN_CFG, digits16, root / "run", root / "state")
    return root / "run", save_prepared(digits16, root / "data.pt")


def _assert_gan_as_straight(run_dir: Path, straight: Path) -> None:
    got, want = (load_torch(d / "G_ema.pt")["state_dict"] for d in (run_dir, straight))
    assert _same_weights(got, want)
    rows = read_jsonl(run_dir / "log.jsonl")
    assert [r["step"] for r in rows] == list(range(1, GAN_CFG.steps + 1))  # no doubled rows
    assert _strip(rows) == _strip(read_jsonl(straight / "log.jsonl"))


def test_second_gan_trainer_refuses_at_once_and_the_first_ends_as_uninterrupted(
    tmp_path, gan_straight, repo_root
):
    straight, data = gan_straight
    run_dir, state_dir, go = tmp_path / "run", tmp_path / "state", tmp_path / "go"
    first = _start_paused(repo_root, "gan", GAN_CFG, data, run_dir, state_dir, 8, go)
    try:
        before = _snapshot(state_dir)
        command, kw = _driver(repo_root, "gan", GAN_CFG, data, run_dir, state_dir)
        second = subprocess.run(command, capture_output=True, timeout=180, **kw)  # never waits
        assert second.returncode != 0
        assert "RunLockedError" in second.stderr
        assert f"{state_dir.resolve()} is in use" in second.stderr
        assert f"pid {first.pid} on host" in second.stderr
        assert _snapshot(state_dir) == before  # no log row, no checkpoint
        assert not run_dir.exists()  # no output
        go.touch()
        _, err = first.communicate(timeout=180)
        assert first.returncode == 0, err[-3000:]
    finally:
        first.kill()
    _assert_gan_as_straight(run_dir, straight)


def test_lock_of_a_killed_gan_trainer_does_not_block_the_rerun(
    tmp_path, gan_straight, repo_root, digits16
):
    straight, data = gan_straight
    run_dir, state_dir, go = tmp_path / "run", tmp_path / "state", tmp_path / "go"
    first = _start_paused(repo_root, "gan", GAN_CFG, data, run_dir, state_dir, 6, go)
    first.kill()  # SIGKILL: no handler, no clean-up
    first.wait(timeout=60)
    assert f'"pid": {first.pid}' in lock_path(state_dir).read_text()  # the lock file stays
    summary = train_gan(GAN_CFG, digits16, run_dir, state_dir)
    assert summary["resumed_from_step"] == 4  # its last checkpoint before step 6
    _assert_gan_as_straight(run_dir, straight)
    assert lock_path(state_dir).read_text() == ""  # released, name cleared


def test_classifier_refuses_a_second_trainer_and_a_killed_ones_lock_does_not_block(
    tmp_path, digits16, repo_root
):
    data = ImageDataset(
        "digits", dict(digits16.images, train=digits16.images["train"][:320]),
        dict(digits16.labels, train=digits16.labels["train"][:320]), 10,
    )  # fmt: skip
    cfg = tiny_cls_config()
    save_prepared(data, tmp_path / "data.pt")
    run_dir, state_dir, go = tmp_path / "run", tmp_path / "state", tmp_path / "go"
    first = _start_paused(repo_root, "cls", cfg, tmp_path / "data.pt", run_dir, state_dir, 1, go)
    try:
        before = _snapshot(state_dir)
        started = time.monotonic()
        with pytest.raises(RunLockedError) as info:
            train_classifier(cfg, data, run_dir, state_dir)
        assert time.monotonic() - started < 5  # refused before any work
        assert info.value.holder["pid"] == first.pid
        assert str(state_dir.resolve()) in str(info.value)
        assert _snapshot(state_dir) == before and not run_dir.exists()
    finally:
        first.kill()
        first.wait(timeout=60)
    resumed = train_classifier(cfg, data, run_dir, state_dir)
    assert resumed["resumed_from_epoch"] == 1
    train_classifier(cfg, data, tmp_path / "straight", tmp_path / "straight-state")
    got, want = (load_torch(d / "model.pt")["weights"] for d in (run_dir, tmp_path / "straight"))
    assert _same_weights(got, want)
    assert _strip(read_jsonl(run_dir / "log.jsonl")) == _strip(
        read_jsonl(tmp_path / "straight/log.jsonl")
    )


def test_under_torchrun_every_rank_refuses_when_rank_0_cannot_lock(
    tmp_path, gan_straight, repo_root
):
    """Rank 0 alone takes the lock (test_ddp.py: two ranks train, so rank 1 takes none);
    refused, it tells rank 1 instead of leaving it waiting at a barrier."""
    _, data = gan_straight
    (tmp_path / "driver.py").write_text(DRIVER)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    command, kw = _driver(repo_root, "gan", GAN_CFG, data, tmp_path / "run", tmp_path / "state")
    torchrun = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(port), str(tmp_path / "driver.py"),
    ]  # fmt: skip
    kw["env"] = {k: v for k, v in kw["env"].items() if k not in ("WORLD_SIZE", "RANK")}
    with hold_run(tmp_path / "state"):
        done = subprocess.run([*torchrun, *command[3:]], capture_output=True, timeout=180, **kw)
    assert done.returncode != 0
    assert f"pid {os.getpid()} on host" in done.stderr  # rank 0's message
    assert "rank 0 of this launch could not lock it" in done.stderr  # rank 1's
    assert not (tmp_path / "state").exists() and not (tmp_path / "run").exists()


# The lock itself (no training).


def test_second_holder_is_refused_naming_folder_and_holder(tmp_path):
    state = tmp_path / "state"
    with hold_run(state):
        other_spelling = tmp_path / "." / "state"
        with pytest.raises(RunLockedError) as info, hold_run(other_spelling):
            pass
        holder = info.value.holder
        assert (holder["pid"], holder["host"]) == (os.getpid(), socket.gethostname())
        assert f"{state.resolve()} is in use" in str(info.value)
        assert f"pid {os.getpid()} on host" in str(info.value)
    with hold_run(state):  # released at the end of the block
        pass
    assert lock_path(state) == tmp_path / "state.lock" and not state.exists()


def test_removing_the_state_folder_does_not_release_the_lock(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    with hold_run(state):
        shutil.rmtree(state)  # a reset or a person starting afresh
        state.mkdir()
        with pytest.raises(RunLockedError), hold_run(state):
            pass


def test_only_the_taking_rank_locks_and_every_rank_learns_a_refusal(tmp_path):
    state, seen = tmp_path / "state", []

    def any_refused(refused: bool) -> bool:
        seen.append(refused)
        return refused

    with hold_run(state):
        with hold_run(state, take=False, any_refused=any_refused):  # rank 1: takes nothing
            pass
        with pytest.raises(RunLockedError), hold_run(state, any_refused=any_refused):
            pass  # rank 0: refused
    assert seen == [False, True]
    told = lambda refused: True  # noqa: E731  (rank 1 told that rank 0 was refused)
    with pytest.raises(RunLockedError, match="rank 0"), hold_run(state, False, told):
        pass
