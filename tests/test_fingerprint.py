"""Protocol fingerprints cover library versions, and a mismatch names the fields that differ.

The protocols of all three tasks (GAN metrics, accuracies, OOD results) are built by the real
functions; the expected library versions are read here with importlib.metadata, and the
expected differing fields are set by hand in the run files.
"""

from __future__ import annotations

import copy
import importlib.metadata
import json
import platform
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from adaptivemix import provenance as provenance_module
from adaptivemix.classify.run import accuracy_protocol
from adaptivemix.data.base import ImageDataset
from adaptivemix.io import write_json
from adaptivemix.metrics.backbones import ModuleBackbone
from adaptivemix.metrics.fid import (
    MEASUREMENT_LIBRARIES,
    ReferenceStats,
    protocol,
    protocol_fingerprint,
)
from adaptivemix.ood.run import ood_protocol
from adaptivemix.provenance import TRACKED_LIBRARIES
from adaptivemix.report.classify import _check_ood_protocols, collect_ood
from adaptivemix.report.collect import check_fingerprints, collect_runs, flatten_protocol
from adaptivemix.run_record import write_run_record

LIBRARIES = ("torch", "torchvision", "numpy", "scipy", "clean-fid", "scikit-learn", "timm")


def installed(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "absent"


class Flat(nn.Module):
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


def gan_protocol() -> dict:
    backbone = ModuleBackbone(Flat(), "flat", "native", "ab" * 32, feature_dim=16, device="cpu")
    feats = np.random.default_rng(0).uniform(-1, 1, size=(32, 16))
    meta = {"split": "train", "n_real": 32, "dataset_sha256": "cd" * 32}
    reference = ReferenceStats(feats.mean(0), np.cov(feats.T), feats, meta)
    return protocol(backbone, reference, n_gen=100, pr_k=3)


def tiny_dataset() -> ImageDataset:
    gen = torch.Generator().manual_seed(0)
    images = {s: torch.randint(0, 256, (6, 1, 8, 8), generator=gen, dtype=torch.uint8)
              for s in ("train", "val", "test")}  # fmt: skip
    labels = {s: torch.arange(6) % 2 for s in images}
    return ImageDataset("toy", images, labels, num_classes=2)


def all_protocols() -> dict[str, dict]:
    attacks = {"pgd": {"eps": 0.1, "steps": 3, "step_size": 0.05}}
    noise = torch.zeros(4, 1, 8, 8)
    return {
        "gan": gan_protocol(),
        "classify": accuracy_protocol(tiny_dataset(), attacks),
        "ood": ood_protocol("noise", noise, n_in=6),
    }


def leaf_paths(tree: dict, prefix: tuple = ()) -> Iterator[tuple]:
    for key, value in tree.items():
        if isinstance(value, dict):
            yield from leaf_paths(value, (*prefix, key))
        else:
            yield (*prefix, key)


def changed(value: Any) -> Any:
    """A different value of the same kind."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int | float):
        return value + 1
    if isinstance(value, list):
        return [*value, 0]
    return f"{value}-other"


# --- what the fingerprint covers ---------------------------------------------------------


def test_measurement_libraries_are_tracked_by_provenance():
    assert set(MEASUREMENT_LIBRARIES) == set(LIBRARIES)
    assert set(LIBRARIES) <= set(TRACKED_LIBRARIES)  # library_versions() reads every one


@pytest.mark.parametrize("task", ["gan", "classify", "ood"])
def test_every_task_protocol_records_library_versions(task):
    proto = all_protocols()[task]
    expected = {"python": platform.python_version()} | {n: installed(n) for n in LIBRARIES}
    assert proto["libraries"] == expected
    assert "code_version" not in json.dumps(proto)


def test_gan_protocol_covers_the_comparability_fields():
    flat = flatten_protocol(gan_protocol())
    required = {"backbone": "flat", "backbone_sha256": "ab" * 32, "resize": "native",
                "n_gen": 100, "n_real": 32, "reference_split": "train",
                "dataset_sha256": "cd" * 32, "libraries.torch": installed("torch")}  # fmt: skip
    assert {k: flat.get(k) for k in required} == required


@pytest.mark.parametrize("task", ["gan", "classify", "ood"])
def test_fingerprint_changes_with_every_covered_field(task):
    proto = all_protocols()[task]
    base = protocol_fingerprint(proto)
    paths = list(leaf_paths(proto))
    assert ("libraries", "torch") in paths and ("libraries", "python") in paths
    for path in paths:
        other = copy.deepcopy(proto)
        node = other
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = changed(node[path[-1]])
        assert protocol_fingerprint(other) != base, ".".join(path)


def test_fingerprint_ignores_the_code_version(tmp_path, monkeypatch):
    proto = gan_protocol()
    head = {"task": "gan", "dataset": "toy", "arch": "dcgan", "method": "vanilla", "seed": 0}
    first = write_run_record(tmp_path / "a", head, {"fid": 1.0}, proto, {})
    # a new commit: only what git describe reports changes
    monkeypatch.setattr(provenance_module, "code_version", lambda: "v9-other-commit")
    second = write_run_record(tmp_path / "b", head, {"fid": 1.0}, proto, {})
    assert second["provenance"]["code_version"] == "v9-other-commit"
    assert first["provenance"]["code_version"] != "v9-other-commit"
    assert first["protocol_fingerprint"] == second["protocol_fingerprint"]


def test_flatten_protocol_by_hand():
    nested = {"n": 1, "libraries": {"torch": "2.1"}, "attacks": {"pgd": {"eps": 0.1}}, "l": [1]}
    assert flatten_protocol(nested) == {
        "n": 1, "libraries.torch": "2.1", "attacks.pgd.eps": 0.1, "l": "[1]",
    }  # fmt: skip


# --- the guard: which fields differ, with their values and runs ---------------------------


def hand_protocol(**changes: Any) -> dict:
    proto = {
        "backbone": "digits-cnn", "backbone_sha256": "ab" * 32, "resize": "native",
        "n_gen": 5000, "n_real": 1257, "reference_split": "train", "dataset_sha256": "cd" * 32,
        "libraries": {"python": "3.11.9", "torch": "2.14.1", "numpy": "2.3.0"},
    }  # fmt: skip
    for key, value in changes.items():
        if key in proto["libraries"]:
            proto["libraries"][key] = value
        else:
            proto[key] = value
    return proto


def write_gan_run(root: Path, method: str, seed: int, proto: dict) -> Path:
    record = {
        "task": "gan", "dataset": "digits", "arch": "dcgan", "method": method, "seed": seed,
        "status": "ok", "diverged_at_step": None, "steps": 300, "train_seconds": 1.0,
        "metrics": {"fid": 10.0, "kid": 0.1}, "protocol": proto,
        "protocol_fingerprint": protocol_fingerprint(proto),
    }  # fmt: skip
    return write_json(root / method / f"seed{seed}" / "metrics.json", record)


def differing_line(message: str) -> list[str]:
    line = message.split("differing protocol fields: ")[1].split("\n")[0]
    return line.split(", ")


def test_torch_version_mismatch_names_exactly_that_field(tmp_path):
    a = write_gan_run(tmp_path, "vanilla", 0, hand_protocol())
    b = write_gan_run(tmp_path, "adaptivemix", 0, hand_protocol(torch="2.15.0"))
    with pytest.raises(ValueError) as err:
        check_fingerprints(collect_runs([a, b]))
    message = str(err.value)
    assert differing_line(message) == ["libraries.torch"]
    assert "libraries.torch: '2.14.1' vs '2.15.0'" in message
    assert "task='gan', dataset='digits'" in message
    newer = next(line for line in message.splitlines() if "='2.15.0' <-" in line)
    assert "method=adaptivemix seed=0" in newer and "vanilla" not in newer


def test_n_gen_and_backbone_hash_mismatch_names_both(tmp_path):
    a = write_gan_run(tmp_path, "vanilla", 0, hand_protocol())
    b = write_gan_run(tmp_path, "vanilla", 1, hand_protocol())
    c = write_gan_run(tmp_path, "adaptivemix", 0, hand_protocol(n_gen=1000, backbone_sha256="ef"))
    with pytest.raises(ValueError) as err:
        check_fingerprints(collect_runs([a, b, c]))
    message = str(err.value)
    assert sorted(differing_line(message)) == ["backbone_sha256", "n_gen"]
    assert "n_gen: 5000 vs 1000" in message
    assert f"backbone_sha256: '{'ab' * 32}' vs 'ef'" in message
    assert "method=vanilla seed=0, method=vanilla seed=1" in message
    assert "2 different protocols" in message


def test_identical_protocols_pass(tmp_path):
    runs = [write_gan_run(tmp_path, m, s, hand_protocol()) for m in ("a", "b") for s in (0, 1)]
    check_fingerprints(collect_runs(runs))


def write_ood(root: Path, method: str, torch_version: str) -> Path:
    proto = {"label": "embedded: far-OOD 'noise', 4 OOD vs 6 ID test", "benchmark": "embedded",
             "group": "far", "n_ood": 4, "libraries": {"torch": torch_version}}  # fmt: skip
    metrics = dict.fromkeys(("auroc", "fpr95", "tnr95", "detection_acc", "aupr_in"), 0.5)
    result = {"detector": "msp", "ood_set": "noise", "protocol": proto,
              "protocol_fingerprint": protocol_fingerprint(proto),
              "metrics": metrics | {"aupr_out": 0.5}, "roc_tpr": [0.0, 1.0]}  # fmt: skip
    record = {"task": "ood", "dataset": "digits-0to5", "arch": "wrn", "method": method,
              "seed": 0, "status": "ok", "roc_fpr_grid": [0.0, 1.0],
              "results": [result]}  # fmt: skip
    return write_json(root / method / "ood.json", record)


def test_ood_check_uses_the_same_message(tmp_path):
    paths = [write_ood(tmp_path, "erm", "2.14.1"), write_ood(tmp_path, "adaptivemix", "2.15.0")]
    frame, _ = collect_ood(paths)
    flat = [flatten_protocol(json.loads(p.read_text())["results"][0]["protocol"]) for p in paths]
    with pytest.raises(ValueError) as err:
        _check_ood_protocols(frame.assign(protocol_fields=flat))
    message = str(err.value)
    assert message.startswith("OOD results for digits-0to5 vs noise were evaluated under 2 ")
    assert differing_line(message) == ["libraries.torch"]
    assert "libraries.torch: '2.14.1' vs '2.15.0'" in message
    assert "detector=msp method=adaptivemix seed=0" in message


def test_ood_check_passes_one_protocol(tmp_path):
    paths = [write_ood(tmp_path, "erm", "2.14.1"), write_ood(tmp_path, "adaptivemix", "2.14.1")]
    frame, _ = collect_ood(paths)
    _check_ood_protocols(frame)
    assert isinstance(frame, pd.DataFrame) and len(frame) == 2
