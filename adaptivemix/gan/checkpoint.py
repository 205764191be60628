"""Resumable training state, written atomically and loaded with ``weights_only=True``.

A checkpoint holds everything needed to continue bit-exactly: step (and kimg), G, D, G's EMA,
both optimizers, the augmentations' state (ADA's p), the method's state (APA's p and stored
fakes), the run's random generator, the path-length running mean and, with float16 mixed
precision, the GradScalers' state. It lives in the run's *state* folder, outside the job's
declared outputs, because Snakemake deletes declared outputs before rerunning a job; the
in-progress log lives there too and is cut back to the checkpoint's step on resume. The
trainer's lock lies beside the folder (``<state_dir>.lock``, :mod:`adaptivemix.run_lock`),
so resetting or removing the folder never releases it.
"""

from __future__ import annotations

from pathlib import Path

from adaptivemix.io import load_torch, read_jsonl, save_torch, write_jsonl

CHECKPOINT = "checkpoint.pt"
LIVE_LOG = "log.jsonl"


def save_checkpoint(state_dir: Path, state, config: dict) -> Path:
    payload = {
        "config": config,
        "step": state.step,
        "kimg": state.step * config["batch_size"] / 1000.0,
        "elapsed_s": state.elapsed_s,
        "G": state.G.state_dict(),
        "D": state.D.state_dict(),
        "G_ema": state.G_ema.state_dict(),
        "opt_g": state.opt_g.state_dict(),
        "opt_d": state.opt_d.state_dict(),
        "rng": state.generator.get_state(),
        "augment": state.augment.state_dict(),
        "method": state.method.state_dict(),
        "pl_mean": state.pl_mean,
    }
    if state.scalers:
        payload["scalers"] = {name: s.state_dict() for name, s in state.scalers.items()}
    return save_torch(Path(state_dir) / CHECKPOINT, payload)


def try_resume(state_dir: Path, state, config: dict, truncate_log: bool = True) -> bool:
    """Load the checkpoint into ``state`` if one exists for this exact config.

    ``truncate_log``: cut the live log back to the checkpoint's step (rank 0 only under DDP).
    """
    path = Path(state_dir) / CHECKPOINT
    if not path.exists():
        return False
    payload = load_torch(path)
    if payload["config"] != config:
        return False  # a checkpoint of another configuration: start afresh
    state.G.load_state_dict(payload["G"])
    state.D.load_state_dict(payload["D"])
    state.G_ema.load_state_dict(payload["G_ema"])
    state.opt_g.load_state_dict(payload["opt_g"])
    state.opt_d.load_state_dict(payload["opt_d"])
    state.generator.set_state(payload["rng"])
    state.augment.load_state_dict(payload["augment"])
    state.method.load_state_dict(payload.get("method", {}))
    state.pl_mean.copy_(payload.get("pl_mean", state.pl_mean))
    for name, scaler in (state.scalers or {}).items():
        if name in payload.get("scalers", {}):
            scaler.load_state_dict(payload["scalers"][name])
    state.step = int(payload["step"])
    state.elapsed_s = float(payload["elapsed_s"])
    if not truncate_log:
        return True
    rows = [r for r in read_jsonl(Path(state_dir) / LIVE_LOG) if r["step"] <= state.step]
    write_jsonl(Path(state_dir) / LIVE_LOG, rows)
    return True


def reset_state_dir(state_dir: Path) -> None:
    for name in (CHECKPOINT, LIVE_LOG):
        (Path(state_dir) / name).unlink(missing_ok=True)
