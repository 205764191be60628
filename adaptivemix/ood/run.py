"""OOD evaluation of one trained classifier: every detector on every OOD set of its ID set.

Each detector is fitted on the in-distribution training split, then scores the ID test
split and every OOD set; metrics take OOD as the positive class and follow the rule of the
set's benchmark (:func:`adaptivemix.ood.metrics.metric_rule`: OpenOOD v1.5's formulas for
``openood-v1.5`` sets, ODIN's calMetric sweep for ``odin`` sets), recorded as
``metric_rule`` in the protocol. The result file holds one row per (detector, OOD set) with
its protocol, and each ROC curve sampled on a fixed FPR grid so curves can be averaged over
seeds.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch

from adaptivemix.classify.trainer import MODEL_FILE, SUMMARY_FILE, load_classifier, to_pixels
from adaptivemix.data import load_prepared
from adaptivemix.io import load_torch, read_json, write_json
from adaptivemix.metrics.fid import measurement_libraries, protocol_fingerprint
from adaptivemix.ood.detectors import build_detector
from adaptivemix.ood.metrics import (
    FPR_GRID,
    METRIC_NAMES,
    metric_rule,
    ood_metrics,
    roc_on_grid,
)
from adaptivemix.ood.sets import OOD_SETS
from adaptivemix.provenance import provenance, sha256_bytes

OOD_RESULT_FILE = "ood.json"


def ood_protocol(name: str, images: torch.Tensor, n_in: int) -> dict:
    """What must match for two OOD numbers to be comparable: benchmark and group of the set,
    the rule its metrics follow, both sample counts, the OOD images' hash, the positive class
    and the library versions."""
    spec = OOD_SETS.get(name)
    return {
        "label": f"{spec.protocol}: {spec.group}-OOD '{name}', {len(images)} OOD vs {n_in} ID test",
        "benchmark": spec.protocol,
        "group": spec.group,
        "metric_rule": metric_rule(spec.protocol),
        "n_ood": len(images),
        "n_in": int(n_in),
        "ood_sha256": _tensor_sha(images),
        "positive": "ood",
        "libraries": measurement_libraries(),
    }


def _tensor_sha(x: torch.Tensor) -> str:
    return sha256_bytes(x.contiguous().numpy().tobytes())


def run_ood_evaluation(
    run_dir: Path,
    dataset_file: Path,
    ood_files: dict[str, Path],
    detectors: dict[str, dict],
    batch_size: int,
    device: str,
) -> dict:
    """Score every detector × OOD set for one run -> ``ood.json`` beside its metrics."""
    run_dir = Path(run_dir)
    summary = read_json(run_dir / SUMMARY_FILE)
    model, cfg = load_classifier(run_dir / MODEL_FILE, device)
    dataset = load_prepared(dataset_file)
    x_train = to_pixels(dataset.images["train"]).to(device)
    x_test = to_pixels(dataset.images["test"]).to(device)
    sets = {name: load_torch(path)["images"] for name, path in ood_files.items()}
    rows = []
    for det_name, options in detectors.items() if sets else ():
        detector = build_detector(det_name, options)
        ok = summary["status"] == "ok"
        if ok:
            detector.fit(model, x_train, dataset.labels["train"].to(device), batch_size)
            s_in = detector.score(model, x_test, batch_size)
        for set_name, images in sets.items():
            row = {"detector": det_name, "detector_options": detector.describe()}
            row |= {"ood_set": set_name, "protocol": ood_protocol(set_name, images, len(x_test))}
            if ok:
                s_out = detector.score(model, to_pixels(images).to(device), batch_size)
                rule = row["protocol"]["metric_rule"]
                row["metrics"] = ood_metrics(s_in, s_out, rule)
                row["roc_tpr"] = roc_on_grid(s_in, s_out, FPR_GRID).tolist()
            else:
                row["metrics"] = dict.fromkeys(METRIC_NAMES)
                row["roc_tpr"] = None
            row["protocol_fingerprint"] = protocol_fingerprint(row["protocol"])
            rows.append(row)
    record = {
        "task": "ood",
        "dataset": cfg.dataset,
        "arch": cfg.arch_name,
        "method": cfg.method,
        "seed": cfg.seed,
        "status": summary["status"],
        "roc_fpr_grid": FPR_GRID.tolist(),
        "results": rows,
        "dataset_sha256": dataset.content_hash(),
        "provenance": provenance(),
    }
    write_json(run_dir / OOD_RESULT_FILE, _finite_or_null(record))
    return record


def _finite_or_null(obj):
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite_or_null(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_finite_or_null(v) for v in obj]
    return obj
