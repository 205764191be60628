"""The classifier trainer: one loop for every method, model selection on the validation split.

Per epoch: shuffle the training split with the run's generator, augment each batch (random
crop after zero padding, optional horizontal flip), take one SGD step per batch on
``method.loss``, then step the multi-step schedule. Evaluations measure validation and test
accuracy of the current weights, at the cadence of ``classify.selection``
(:mod:`adaptivemix.classify.selection`): ``val`` (default) after every epoch, the weights
with the best validation accuracy (earliest on ties) are the run's result and the test
accuracies are only recorded (never used to choose, never touching the training stream);
``test`` replays the official code's optimistic choice on the test split. The full state is
checkpointed atomically after every epoch so a killed job resumes exactly; a non-finite
loss stops the run with ``status: diverged``. The trainer holds the run's lock
(:mod:`adaptivemix.run_lock`) throughout: a second trainer of the run refuses.
"""

from __future__ import annotations

import copy
import shutil
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from adaptivemix.classify.config import ClsRunConfig
from adaptivemix.classify.methods import ClsBatch, ClsMethod, build_cls_method
from adaptivemix.classify.selection import (
    Evaluation,
    build_selector,
    evaluates_after,
    selection_record,
)  # fmt: skip
from adaptivemix.classify.wrn import CLS_ARCHS
from adaptivemix.data.base import ImageDataset
from adaptivemix.io import append_jsonl, load_torch, read_jsonl, save_torch, write_json, write_jsonl
from adaptivemix.run_lock import hold_run

CHECKPOINT, LIVE_LOG, MODEL_FILE, SUMMARY_FILE = (
    "checkpoint.pt",
    "log.jsonl",
    "model.pt",
    "train.json",
)


def to_pixels(images: torch.Tensor) -> torch.Tensor:
    """Dataset images in [-1, 1] -> pixels in [0, 1], what classifiers and attacks see."""
    return (images + 1.0) / 2.0


def channel_stats(x: torch.Tensor) -> tuple[list[float], list[float]]:
    """Per-channel mean and std of training pixels: the model's built-in normalisation."""
    return x.mean(dim=(0, 2, 3)).tolist(), x.std(dim=(0, 2, 3)).clamp_min(1e-6).tolist()


def build_classifier(cfg: ClsRunConfig, num_classes: int, in_channels: int, mean, std):
    build = CLS_ARCHS.get(cfg.arch, "classify.arch")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = build(num_classes, in_channels, cfg.depth, cfg.widen, cfg.head, mean, std)
    return model.to(cfg.device)


def augment_batch(x: torch.Tensor, cfg: ClsRunConfig, gen: torch.Generator) -> torch.Tensor:
    """Random crop (zero padding ``crop_padding``) and optional flips, drawn from ``gen``."""
    n, _, h, w = x.shape
    p = cfg.crop_padding
    if p > 0:
        padded = torch.nn.functional.pad(x, (p, p, p, p))
        dy = torch.randint(0, 2 * p + 1, (n,), generator=gen, device=gen.device).tolist()
        dx = torch.randint(0, 2 * p + 1, (n,), generator=gen, device=gen.device).tolist()
        x = torch.stack(
            [
                padded[i, :, a : a + h, b : b + w]
                for i, (a, b) in enumerate(zip(dy, dx, strict=True))
            ]
        )
    if cfg.hflip:
        flip = torch.rand(n, generator=gen, device=gen.device) < 0.5
        x = torch.where(flip[:, None, None, None], x.flip(-1), x)
    return x


@dataclass
class ClsState:
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    generator: torch.Generator
    build_args: dict  # what load_classifier needs to rebuild the model
    selector: object  # adaptivemix.classify.selection.SELECTORS[cfg.selection]
    epoch: int = 0
    step: int = 0
    elapsed_s: float = 0.0
    best: dict = field(default_factory=lambda: {"index": None, "weights": None})
    evaluations: list = field(default_factory=list)  # Evaluation.to_dict() of each
    eval_seconds: dict = field(default_factory=lambda: {"val": 0.0, "test": 0.0})

    def state_dict(self) -> dict:
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "rng": self.generator.get_state(),
            "epoch": self.epoch,
            "step": self.step,
            "elapsed_s": self.elapsed_s,
            "best": self.best,
            "evaluations": self.evaluations,
            "eval_seconds": self.eval_seconds,
            "selector": self.selector.state_dict(),
        }

    def load_state_dict(self, payload: dict) -> None:
        self.model.load_state_dict(payload["model"])
        self.optimizer.load_state_dict(payload["optimizer"])
        self.scheduler.load_state_dict(payload["scheduler"])
        self.generator.set_state(payload["rng"])
        self.epoch, self.step = int(payload["epoch"]), int(payload["step"])
        self.elapsed_s, self.best = float(payload["elapsed_s"]), payload["best"]
        self.evaluations, self.eval_seconds = payload["evaluations"], payload["eval_seconds"]
        self.selector = type(self.selector)(payload["selector"])


def build_state(cfg: ClsRunConfig, dataset: ImageDataset) -> ClsState:
    mean, std = channel_stats(to_pixels(dataset.images["train"]))
    if cfg.input_mean is not None:  # fixed statistics, as the official config.py
        mean, std = list(cfg.input_mean), list(cfg.input_std)
    model = build_classifier(cfg, dataset.num_classes, dataset.channels, mean, std)
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(
        trainable, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
    )
    milestones = sorted({max(1, round(m * cfg.epochs)) for m in cfg.milestones})
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones, gamma=cfg.lr_gamma)
    generator = torch.Generator(cfg.device).manual_seed(cfg.seed)
    build_args = {
        "num_classes": dataset.num_classes,
        "in_channels": dataset.channels,
        "mean": mean,
        "std": std,
    }
    selector = build_selector(cfg.selection)
    return ClsState(model, optimizer, scheduler, generator, build_args, selector)


@torch.no_grad()
def accuracy(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> float:
    """Fraction of ``x`` (pixels in [0, 1]) classified as ``y``, in eval mode."""
    was_training = model.training
    model.eval()
    correct = sum(
        int((model(x[i : i + batch_size]).argmax(1) == y[i : i + batch_size]).sum())
        for i in range(0, len(x), batch_size)
    )
    model.train(was_training)
    return correct / len(x)


def train_epoch(
    state: ClsState, method: ClsMethod, x, y, num_classes, cfg, after_step=None
) -> dict | None:
    """One pass over the training split; None if a loss was not finite.

    ``after_step(batch_index, n_batches)`` runs after every optimiser step (evaluations)."""
    state.model.train()
    if cfg.reset_momentum_each_epoch:  # as a fresh SGD each epoch (the official train.py)
        state.optimizer.state.clear()
    gen = state.generator
    order = torch.randperm(len(x), generator=gen, device=gen.device)
    totals: dict[str, float] = {}
    n_batches = len(x) // cfg.batch_size  # the last partial batch is dropped (mixing pairs)
    for b in range(n_batches):
        idx = order[b * cfg.batch_size : (b + 1) * cfg.batch_size]
        batch = ClsBatch(augment_batch(x[idx], cfg, gen), y[idx], num_classes, gen)
        loss, logs = method.loss(state.model, batch)
        if not torch.isfinite(loss):
            return None
        state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        state.optimizer.step()
        state.step += 1
        if after_step is not None:
            after_step(b, n_batches)
        for name, value in {"loss": float(loss.detach()), **logs}.items():
            totals[name] = totals.get(name, 0.0) + value / n_batches
    return totals


def train_classifier(
    cfg: ClsRunConfig,
    dataset: ImageDataset,
    run_dir: Path,
    state_dir: Path,
    callbacks: Sequence[Callable[[int], None]] = (),
) -> dict:
    """Train (resuming from ``state_dir`` when it holds this config's state); write outputs.

    Raises :class:`~adaptivemix.run_lock.RunLockedError` before touching the run when another
    trainer holds its state folder."""
    with hold_run(state_dir):
        return _train(cfg, dataset, Path(run_dir), Path(state_dir), callbacks)


def _train(cfg, dataset, run_dir: Path, state_dir: Path, callbacks) -> dict:
    if cfg.batch_size > len(dataset.images["train"]):
        raise ValueError(f"batch_size {cfg.batch_size} exceeds the training split")
    method = build_cls_method(cfg.method, cfg.method_options)
    state = build_state(cfg, dataset)
    resumed_from = _resume(state, state_dir, cfg)
    elapsed_before = state.elapsed_s
    status = _run_epochs(state, method, dataset, cfg, state_dir, callbacks)
    evaluations = [Evaluation(**e) for e in state.evaluations]
    selection = selection_record(
        cfg.selection, evaluations, state.best["index"], state.selector.slots
    )
    chosen = selection["selected"] or {"epoch": 0, "step": 0, "val_acc": -1.0}
    summary = {
        "status": status,
        "epochs": state.epoch,
        "steps": state.step,
        "diverged_at_epoch": state.epoch + 1 if status == "diverged" else None,
        "best_epoch": chosen["epoch"],  # the selected evaluation's (see "selection")
        "best_step": chosen["step"],
        "best_val_acc": chosen["val_acc"],
        "selection": selection,
        "evaluations": state.evaluations,
        "eval_seconds": {k: round(v, 3) for k, v in state.eval_seconds.items()},
        "resumed_from_epoch": resumed_from,
        "train_seconds": round(state.elapsed_s, 3),
        "session_seconds": round(state.elapsed_s - elapsed_before, 3),  # this process's share
        "method_details": method.describe(),
        "config": cfg.to_dict(),
    }
    weights = state.best["weights"] or state.model.state_dict()
    model_file = {"config": cfg.to_dict(), "build": state.build_args, "weights": weights}
    save_torch(run_dir / MODEL_FILE, model_file)
    shutil.copyfile(state_dir / LIVE_LOG, run_dir / "log.jsonl")
    write_json(run_dir / SUMMARY_FILE, summary)
    return summary


def _resume(state: ClsState, state_dir: Path, cfg: ClsRunConfig) -> int | None:
    path = state_dir / CHECKPOINT
    if path.exists():
        payload = load_torch(path)
        if payload["config"] == cfg.to_dict():
            state.load_state_dict(payload["state"])
            rows = [r for r in read_jsonl(state_dir / LIVE_LOG) if r["epoch"] <= state.epoch]
            write_jsonl(state_dir / LIVE_LOG, rows)
            return state.epoch
    for name in (CHECKPOINT, LIVE_LOG):
        (state_dir / name).unlink(missing_ok=True)
    state_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(state_dir / LIVE_LOG, [])
    return None


def _evaluate(state: ClsState, splits: dict, cfg: ClsRunConfig) -> None:
    """Validation and test accuracy of the current weights, offered to the selector."""
    accs = {}
    for split, (x, y) in splits.items():
        started = time.perf_counter()
        accs[split] = accuracy(state.model, x, y, cfg.eval_batch_size)
        state.eval_seconds[split] += time.perf_counter() - started
    evaluation = Evaluation(state.epoch + 1, state.step, accs["val"], accs["test"])
    index = len(state.evaluations)
    state.evaluations.append(evaluation.to_dict())
    if state.selector.offer(evaluation, index):
        state.best = {"index": index, "weights": copy.deepcopy(state.model.state_dict())}


def _eval_splits(dataset: ImageDataset, device: str) -> dict:
    """split -> (pixels, labels) on ``device``, for :func:`_evaluate`."""
    return {
        split: (to_pixels(x).to(device), y.to(device))
        for split, (x, y) in ((s, dataset.split(s)) for s in ("val", "test"))
    }


def _run_epochs(state, method, dataset, cfg, state_dir, callbacks) -> str:
    x, y = (t.to(cfg.device) for t in (to_pixels(dataset.images["train"]), dataset.labels["train"]))
    splits = _eval_splits(dataset, cfg.device)

    def after_step(batch_index: int, n_batches: int) -> None:
        if evaluates_after(cfg.selection, batch_index, n_batches):
            _evaluate(state, splits, cfg)

    started, before = time.perf_counter(), state.elapsed_s
    bar = tqdm(total=cfg.epochs, initial=state.epoch, file=sys.stderr, mininterval=10, ascii=True)
    status = "ok"
    while state.epoch < cfg.epochs:
        lr = state.optimizer.param_groups[0]["lr"]
        logs = train_epoch(state, method, x, y, dataset.num_classes, cfg, after_step)
        state.elapsed_s = before + time.perf_counter() - started
        if logs is None:
            append_jsonl(state_dir / LIVE_LOG, {"epoch": state.epoch + 1, "status": "diverged"})
            status = "diverged"
            break
        state.scheduler.step()
        state.epoch += 1
        last = state.evaluations[-1]  # this epoch's last evaluation
        accs = {"val_acc": last["val_acc"], "test_acc": last["test_acc"]}
        row = {"epoch": state.epoch, "step": state.step, "lr": lr, **accs, **logs}
        append_jsonl(state_dir / LIVE_LOG, row | {"time_s": round(state.elapsed_s, 3)})
        save_torch(state_dir / CHECKPOINT, {"config": cfg.to_dict(), "state": state.state_dict()})
        bar.update(1)
        for callback in callbacks:
            callback(state.epoch)
    bar.close()
    return status


def load_classifier(path: Path, device: str = "cpu") -> tuple[torch.nn.Module, ClsRunConfig]:
    """The selected classifier of a finished run (``classify.selection``), in eval mode."""
    payload = load_torch(path)
    cfg = ClsRunConfig.from_dict(payload["config"])
    b = payload["build"]
    model = build_classifier(cfg, b["num_classes"], b["in_channels"], b["mean"], b["std"])
    model.load_state_dict(payload["weights"])
    return model.to(device).eval(), cfg
