"""Glue between the workflow's files and the classifier trainer / robustness evaluation."""

from __future__ import annotations

import math
from pathlib import Path

import torch

from adaptivemix.classify.attacks import build_attack, robust_accuracy
from adaptivemix.classify.config import ClsRunConfig
from adaptivemix.classify.selection import SELECTION_LABELS
from adaptivemix.classify.trainer import (
    MODEL_FILE,
    SUMMARY_FILE,
    load_classifier,
    to_pixels,
    train_classifier,
)  # fmt: skip
from adaptivemix.data import load_prepared
from adaptivemix.io import read_json
from adaptivemix.metrics.fid import measurement_libraries
from adaptivemix.run_record import write_run_record

#: Attacks draw their random starts from their own stream, never the training one.
ATTACK_SEED_OFFSET = 2_000_003


def run_cls_training(cfg: ClsRunConfig, dataset_file: Path, run_dir: Path, state_dir: Path):
    return train_classifier(cfg, load_prepared(dataset_file), run_dir, state_dir)


#: ``protocol.selection`` per ``classify.selection`` (val keeps its original wording, so
#: its fingerprint is unchanged); test is marked optimistic in the table labels too.
PROTOCOL_SELECTION = {
    "val": "best validation accuracy",
    "test": SELECTION_LABELS["test"],
}
OPTIMISTIC_LABEL = "; OPTIMISTIC: checkpoint selected on the test split (upstream protocol)"


def accuracy_protocol(dataset, attacks: dict, split: str = "test", selection="val") -> dict:
    """What must match for two accuracy numbers to be comparable, with a readable label:
    split and its size, attacks with their options, dataset hash, model selection and the
    versions of the libraries that train and attack (``libraries``)."""
    shown = "; ".join(f"{name} {_options_text(opts)}" for name, opts in attacks.items())
    n = int(dataset.images[split].shape[0])
    label = f"{split} split, n={n}, L∞ on [0,1] pixels: {shown or 'no attack'}"
    return {
        "label": label + (OPTIMISTIC_LABEL if selection == "test" else ""),
        "split": split,
        "n_test": n,
        "attacks": attacks,
        "dataset_sha256": dataset.content_hash(),
        "selection": PROTOCOL_SELECTION[selection],
        "libraries": measurement_libraries(),
    }


def _options_text(options: dict) -> str:
    return "(" + ", ".join(f"{k}={_fmt(v)}" for k, v in options.items()) + ")"


def _fmt(value) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def run_cls_evaluation(
    run_dir: Path, dataset_file: Path, attacks: dict, batch_size: int, device: str
) -> dict:
    """Clean and adversarial test accuracy of a run's selected model -> ``metrics.json``.

    ``attacks`` maps attack name -> options (``classify.attacks``); each gives ``<name>_acc``.
    A diverged run gets nulls.
    """
    run_dir = Path(run_dir)
    summary = read_json(run_dir / SUMMARY_FILE)
    model, cfg = load_classifier(run_dir / MODEL_FILE, device)
    dataset = load_prepared(dataset_file)
    x, y = dataset.split("test")
    x, y = to_pixels(x).to(device), y.to(device)
    built = {name: build_attack(name, opts) for name, opts in attacks.items()}
    names = ["clean_acc", *(f"{name}_acc" for name in built)]
    if summary["status"] == "ok":
        gen = torch.Generator(device).manual_seed(cfg.seed + ATTACK_SEED_OFFSET)
        values = [robust_accuracy(model, None, x, y, batch_size, gen)]
        values += [robust_accuracy(model, a, x, y, batch_size, gen) for a in built.values()]
    else:
        values = [math.nan] * len(names)
    resolved = {name: attack.describe() for name, attack in built.items()}
    proto = accuracy_protocol(dataset, resolved, selection=cfg.selection)
    metrics = dict(zip(names, values, strict=True)) | {"val_acc": summary["best_val_acc"]}
    head = {
        "task": "classify",
        "dataset": cfg.dataset,
        "arch": cfg.arch_name,
        "method": cfg.method,
        "seed": cfg.seed,
        "status": summary["status"],
        "diverged_at_step": summary["diverged_at_epoch"],
        "steps": summary["steps"],
        "best_epoch": summary["best_epoch"],
    }
    extra = {
        "config": cfg.to_dict(),
        "train_seconds": summary["train_seconds"],
        "selection": summary.get("selection"),  # test accuracy at the val choice vs best
        "eval_seconds": summary.get("eval_seconds"),
    }
    return write_run_record(run_dir, head, metrics, proto, extra)
