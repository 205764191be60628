"""The dataset contract shared by every reader.

A dataset is a set of images in [-1, 1] (N, C, H, W float32) with integer labels, cut into
fixed ``train`` / ``val`` / ``test`` splits. ``prepare`` materialises it once into one tensor
file (the DAG's data rule); every later job loads that file, so all runs of a profile see
byte-identical data and record the same content hash.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from adaptivemix.data.source import LocalFormat
from adaptivemix.io import load_torch, save_torch
from adaptivemix.provenance import sha256_bytes
from adaptivemix.registry import Registry

SPLITS = ("train", "val", "test")


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: its builder, its classes and, for real data, its local format.

    ``spec(resolution, **source)`` builds the :class:`ImageDataset`; ``source`` is the
    config's ``sources.<source_key>`` (e.g. ``root``). ``family`` and ``classes`` say what
    the labels mean: two sets of the same family sharing a class name hold the same
    concept, which is how an OOD set overlapping the in-distribution classes is refused.
    """

    build: Callable[..., ImageDataset]
    family: str  # e.g. "digits", "cifar10": where the class names come from
    classes: tuple[str, ...]  # class names in label order
    local: LocalFormat | None = None  # None: embedded, nothing to read from disk
    source_key: str | None = None  # its entry under the config's ``sources``

    def __call__(self, resolution: int, **source) -> ImageDataset:
        return self.build(resolution, **source)

    def check_source(self, sources: dict) -> None:
        if self.local is not None:
            self.local.check(sources, self.source_key)


#: name -> DatasetSpec (call it with the resolution to build the dataset)
DATASETS: Registry = Registry("dataset")


def register_dataset(
    name: str,
    family: str,
    classes: Sequence[str],
    local: LocalFormat | None = None,
    source_key: str | None = None,
) -> Callable:
    """Decorator: register ``build(resolution, **source)`` as dataset ``name``."""

    def add(build: Callable[..., ImageDataset]) -> Callable[..., ImageDataset]:
        spec = DatasetSpec(build, family, tuple(classes), local, source_key or name)
        DATASETS.register(name)(spec)
        return build

    return add


@dataclass(frozen=True)
class ImageDataset:
    name: str
    images: dict[str, torch.Tensor]  # split -> (N, C, H, W) float32 in [-1, 1]
    labels: dict[str, torch.Tensor]  # split -> (N,) int64
    num_classes: int

    @property
    def channels(self) -> int:
        return self.images["train"].shape[1]

    @property
    def resolution(self) -> int:
        return self.images["train"].shape[-1]

    def split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[split], self.labels[split]

    def content_hash(self) -> str:
        """sha256 over every split's images and labels, in split order."""
        parts = []
        for s in SPLITS:
            parts.append(self.images[s].contiguous().numpy().tobytes())
            parts.append(self.labels[s].contiguous().numpy().tobytes())
        return sha256_bytes(b"".join(parts))

    def summary(self) -> dict:
        return {
            "name": self.name,
            "resolution": self.resolution,
            "channels": self.channels,
            "num_classes": self.num_classes,
            "sizes": {s: int(self.images[s].shape[0]) for s in SPLITS},
            "sha256": self.content_hash(),
        }


def save_prepared(dataset: ImageDataset, path: str | Path) -> Path:
    payload = {
        "name": dataset.name,
        "num_classes": dataset.num_classes,
        **{f"images_{s}": dataset.images[s] for s in SPLITS},
        **{f"labels_{s}": dataset.labels[s] for s in SPLITS},
    }
    return save_torch(path, payload)


def load_prepared(path: str | Path) -> ImageDataset:
    payload = load_torch(path)
    return ImageDataset(
        name=payload["name"],
        images={s: payload[f"images_{s}"] for s in SPLITS},
        labels={s: payload[f"labels_{s}"] for s in SPLITS},
        num_classes=int(payload["num_classes"]),
    )
