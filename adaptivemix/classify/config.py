"""The classification track's slice of the workflow config: typed per-run configs and checks.

``check_classify`` and ``check_ood`` run while the workflow config is validated, so an
unknown method, attack or detector, an ε out of range, an OOD set overlapping the
in-distribution classes or a missing local dataset stops everything before any job starts.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch

from adaptivemix.errors import ConfigError


@dataclass(frozen=True)
class ClsRunConfig:
    """Everything one classifier training run depends on (and nothing else)."""

    dataset: str  # registered in-distribution dataset
    resolution: int  # image side in pixels
    arch: str  # registered classifier architecture (wrn: ours; wrn-official: upstream's)
    depth: int  # WRN depth, 6n+4
    widen: int  # WRN widening factor k
    head: str  # linear | orthogonal (frozen |W·f| of Zaeemzadeh et al.)
    method: str  # registered classification method
    method_options: dict  # its options (validated by its Options dataclass)
    seed: int  # the only source of randomness of the run
    epochs: int  # passes over the training split
    batch_size: int  # images per SGD step
    lr: float  # SGD learning rate at the start
    momentum: float  # SGD momentum
    weight_decay: float  # SGD weight decay (L2)
    milestones: tuple[float, ...]  # fractions of the epochs after which lr is multiplied...
    lr_gamma: float  # ...by this factor
    crop_padding: int  # random crop after zero padding by this many pixels (0: off)
    hflip: bool  # random horizontal flips (off for digits: a mirrored digit is another shape)
    eval_batch_size: int  # batch size of validation and test passes
    selection: str = "val"  # checkpoint chosen on: val (ours) | test (upstream's, optimistic)
    input_mean: tuple[float, ...] | None = None  # fixed input mean per channel (None: the...
    input_std: tuple[float, ...] | None = None  # ...training split's mean and std)
    reset_momentum_each_epoch: bool = False  # zero SGD momentum per epoch (upstream: new SGD)
    device: str = "cpu"  # torch device

    @property
    def arch_name(self) -> str:
        """The architecture as run folders and tables show it, e.g. ``wrn-28-10``."""
        return f"{self.arch}-{self.depth}-{self.widen}"

    @classmethod
    def from_dict(cls, values: dict) -> ClsRunConfig:
        from adaptivemix.config import check_known_keys

        check_known_keys(cls, values)
        tuples = {k: _tuple(values.get(k)) for k in ("milestones", "input_mean", "input_std")}
        return cls(**dict(values, **tuples))

    def to_dict(self) -> dict:
        lists = {k: _list(getattr(self, k)) for k in ("milestones", "input_mean", "input_std")}
        return dataclasses.asdict(self) | lists


def _tuple(values) -> tuple | None:
    return None if values is None else tuple(values)


def _list(values) -> list | None:
    return None if values is None else list(values)


def cls_run_config(config: dict, dataset: str, method: str, seed: int) -> ClsRunConfig:
    """The run's slice of a validated workflow config."""
    cls = config["classify"]
    fields = {f.name for f in dataclasses.fields(ClsRunConfig)}
    own = {k: cls[k] for k in sorted(set(cls) & fields - {"method_options"})}
    stats = cls.get("input_stats", {}).get(dataset, {})
    return ClsRunConfig.from_dict(
        own
        | {
            "input_mean": stats.get("mean"),
            "input_std": stats.get("std"),
            "dataset": dataset,
            "method": method,
            "method_options": cls["method_options"].get(method, {}),
            "seed": int(seed),
            "device": config["device"],
        }
    )


def ood_sets_in_use(config: dict) -> dict[str, list[str]]:
    """``ood.sets`` restricted to the in-distribution sets the track trains.

    Profiles are merged over ``config/default.yaml`` key by key, so a profile training other
    datasets still carries the default's entries; those are checked but not run.
    """
    trained = config["classify"]["datasets"]
    return {d: sets for d, sets in config["ood"]["sets"].items() if d in trained}


def arch_name(config: dict) -> str:
    cls = config["classify"]
    return f"{cls['arch']}-{cls['depth']}-{cls['widen']}"


def check_classify(config: dict) -> None:
    """Datasets readable, architecture buildable, methods and attacks known and valid."""
    from adaptivemix.classify.attacks import build_attack
    from adaptivemix.classify.methods import CLS_METHODS, build_cls_method
    from adaptivemix.classify.wrn import CLS_ARCHS
    from adaptivemix.data import DATASETS

    cls = config["classify"]
    for i, name in enumerate(cls["datasets"]):
        DATASETS.get(name, f"classify.datasets[{i}]")
    for name, stats in cls.get("input_stats", {}).items():
        DATASETS.get(name, f"classify.input_stats.{name}")
        if len(stats["mean"]) != len(stats["std"]):
            expected = "mean and std with one value per channel each"
            raise ConfigError(f"classify.input_stats.{name}", stats, expected)
    build = CLS_ARCHS.get(cls["arch"], "classify.arch")
    try:
        with torch.device("meta"):
            build(10, 3, cls["depth"], cls["widen"], cls["head"], [0.0] * 3, [1.0] * 3)
    except ValueError as err:  # widen and head are checked by the schema: the depth is left
        expected = f"a WRN depth 6n+4 with n ≥ 1, e.g. 10, 16, 28 ({err})"
        raise ConfigError("classify.depth", cls["depth"], expected) from None
    for name in cls["method_options"]:
        CLS_METHODS.get(name, f"classify.method_options.{name}")
    for i, name in enumerate(cls["methods"]):
        CLS_METHODS.get(name, f"classify.methods[{i}]")
        build_cls_method(name, cls["method_options"].get(name))
    for name, options in cls["attacks"].items():
        build_attack(name, options)


def check_ood(config: dict) -> None:
    """Every OOD set known, defined for its ID set, disjoint from its classes, and readable.

    Entries of in-distribution sets the track does not train are skipped (see
    :func:`ood_sets_in_use`); their keys must still name registered datasets.
    """
    from adaptivemix.data import DATASETS
    from adaptivemix.ood.detectors import DETECTORS, build_detector
    from adaptivemix.ood.sets import OOD_SETS

    ood = config["ood"]
    for id_name, set_names in ood["sets"].items():
        id_spec = DATASETS.get(id_name, f"ood.sets.{id_name}")
        if id_name not in config["classify"]["datasets"]:
            continue  # e.g. the default profile's entry under a profile that trains others
        for i, name in enumerate(set_names):
            key = f"ood.sets.{id_name}[{i}]"
            spec = OOD_SETS.get(name, key)
            _check_ood_pair(id_spec, id_name, spec, name, key)
    for name in ood["detector_options"]:
        DETECTORS.get(name, f"ood.detector_options.{name}")
    for i, name in enumerate(ood["detectors"]):
        DETECTORS.get(name, f"ood.detectors[{i}]")
        build_detector(name, ood["detector_options"].get(name))


def _check_ood_pair(id_spec, id_name: str, ood_spec, name: str, key: str) -> None:
    if ood_spec.id_datasets is not None and id_name not in ood_spec.id_datasets:
        expected = f"an OOD set defined for '{id_name}' ('{name}' is for {ood_spec.id_datasets})"
        raise ConfigError(key, name, expected)
    if ood_spec.family and ood_spec.family == id_spec.family:
        shared = sorted(set(ood_spec.classes) & set(id_spec.classes))
        if shared:
            expected = f"an OOD set sharing no class with '{id_name}' (both hold {shared})"
            raise ConfigError(key, name, expected)
