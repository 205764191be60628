"""Glue between the workflow's files and the trainer/evaluator (what the CLI calls)."""

from __future__ import annotations

import io
import math
from pathlib import Path

import numpy as np

from adaptivemix.config import GanRunConfig
from adaptivemix.data import load_prepared
from adaptivemix.gan.methods import RunEnv
from adaptivemix.gan.outputs import GENERATOR_FILE, TRAIN_SUMMARY_FILE, load_generator
from adaptivemix.gan.trainer import train_gan
from adaptivemix.io import atomic_write, read_json
from adaptivemix.metrics.backbones import BACKBONES
from adaptivemix.metrics.fid import (
    ReferenceStats,
    evaluate_generator,
    has_noise_inputs,
    protocol,
)  # fmt: skip
from adaptivemix.metrics.precision_recall import DEFAULT_K
from adaptivemix.metrics.shrinkage import FeatureProbe
from adaptivemix.run_files import D_FEATURES_FILE
from adaptivemix.run_record import write_run_record

#: In-training evaluations use their own noise, so they never disturb the training stream.
EVAL_SEED_OFFSET = 1_000_003


def save_d_features(path: Path, scalars: dict, features: dict, probe: dict) -> Path:
    """Write the probe's ``real``/``fake`` features (float32) and every scalar atomically;
    scalars and the probe description are stored as 0-d float64 arrays."""
    arrays = {name: np.asarray(value, np.float32) for name, value in features.items()}
    arrays |= {name: np.float64(value) for name, value in {**scalars, **probe}.items()}
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return atomic_write(path, lambda f: f.write(buffer.getvalue()))


#: The shrinkage numbers of the final D that go into a run's metrics, when measured.
SHRINKAGE_METRICS = ("spread_vs_noise", "feature_spread")


def load_shrinkage(run_dir: Path) -> dict[str, float]:
    """The final shrinkage numbers of a run (:data:`SHRINKAGE_METRICS` its
    ``d_features.npz`` holds); none for a run without the file (older runs measured no
    features: the metrics are then left out, as other unmeasured metrics are)."""
    path = Path(run_dir) / D_FEATURES_FILE
    if not path.exists():
        return {}
    with np.load(path) as data:
        return {name: float(data[name]) for name in SHRINKAGE_METRICS if name in data.files}


def run_training(
    cfg: GanRunConfig, dataset_file: Path, backbone: str, weights: Path, reference: Path,
    run_dir: Path, state_dir: Path, perceptual_files: dict | None = None,
) -> dict:  # fmt: skip
    """``perceptual_files``: the weights of the perceptual distances the method reads
    (name -> {"weights", "sha256"}; see :class:`RunEnv`)."""
    dataset = load_prepared(dataset_file)
    feature_net = BACKBONES.get(backbone, "backbone.name")(weights, cfg.device)
    ref = ReferenceStats.load(reference)
    eval_seed = cfg.seed + EVAL_SEED_OFFSET
    probe = FeatureProbe(
        dataset.images["train"], cfg.z_dim, eval_seed,
        n_real=cfg.probe_samples, n_fake=cfg.probe_samples, device=cfg.device,
    )  # fmt: skip

    last = {}  # "probe": (scalars, features) measured at the last evaluation

    def evaluate(G, D) -> dict:
        # FID only: the curves need it, and KID's subset sums would dominate short runs.
        values = evaluate_generator(
            G, cfg.z_dim, feature_net, ref, cfg.eval_samples, eval_seed, cfg.device, with_kid=False
        )
        last["probe"] = probe.measure(D, G)
        return values | last["probe"][0]

    def on_finish(G, D, just_evaluated: bool) -> None:
        scalars, features = last["probe"] if just_evaluated else probe.measure(D, G)
        save_d_features(Path(run_dir) / D_FEATURES_FILE, scalars, features, probe.describe())

    env = RunEnv(
        device=cfg.device, feature_backbone=feature_net, perceptual_files=perceptual_files or {}
    )
    return train_gan(
        cfg, dataset, run_dir, state_dir, evaluate=evaluate, env=env, on_finish=on_finish
    )


def run_evaluation(
    run_dir: Path, backbone: str, weights: Path, reference: Path, n_gen: int, device: str,
    pr_k: int = 0,
) -> dict:  # fmt: skip
    """Final metrics of a finished run's EMA generator -> ``metrics.json`` beside it.

    FID/KID always; with a classifier backbone also ``modes`` and ``kl_modes`` of the same
    ``n_gen`` images (and ``n_modes`` in the protocol); with ``pr_k`` > 0 also precision and
    recall with ``pr_k`` neighbours (and ``pr_k`` in the protocol). The samples get random
    noise inputs (``noise_mode`` in the protocol when G has them); ``reference`` may hold
    mirrored reals or another dataset (``reference_xflip``, ``metric_data``).
    ``spread_vs_noise`` and ``feature_spread`` of the final D (from ``d_features.npz``,
    left out when a run has none). A diverged run gets nulls.
    """
    run_dir = Path(run_dir)
    summary = read_json(run_dir / TRAIN_SUMMARY_FILE)
    G, cfg = load_generator(run_dir / GENERATOR_FILE, device)
    feature_net = BACKBONES.get(backbone, "backbone.name")(weights, device)
    ref = ReferenceStats.load(reference)
    with_modes = feature_net.num_classes is not None
    if summary["status"] == "ok":
        values = evaluate_generator(
            G, cfg.z_dim, feature_net, ref, n_gen, cfg.seed, device, with_modes=with_modes,
            with_pr=pr_k > 0, pr_k=pr_k or DEFAULT_K,
        )  # fmt: skip
    else:
        names = ("fid", "kid", *(("modes", "kl_modes") if with_modes else ()))
        names += ("precision", "recall") if pr_k > 0 else ()
        values = dict.fromkeys(names, math.nan)
    for name, value in load_shrinkage(run_dir).items():
        values[name] = value if summary["status"] == "ok" else math.nan
    # noise_mode: the default of evaluate_generator, recorded for Gs that have noise inputs
    noise_mode = "random" if has_noise_inputs(G) else None
    proto = protocol(
        feature_net, ref, n_gen, pr_k=pr_k or None, noise_mode=noise_mode, run_dataset=cfg.dataset
    )
    head = {
        "task": "gan",
        "dataset": cfg.dataset,
        "arch": cfg.arch,
        "method": cfg.method,
        "seed": cfg.seed,
        "status": summary["status"],
        "diverged_at_step": summary["diverged_at_step"],
        "steps": summary["steps"],
    }
    extra = {"config": cfg.to_dict(), "train_seconds": summary["train_seconds"]}
    return write_run_record(run_dir, head, values, proto, extra)
