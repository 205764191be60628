"""The dataset contract shared by every reader.

A dataset is a set of images (N, C, H, W) with integer labels, cut into fixed ``train`` /
``val`` / ``test`` splits. Images are either float32 in [-1, 1] (the embedded datasets) or
uint8 pixels 0..255 (the real GAN datasets: FFHQ's 70,000 RGB images at 256 px take 13.8 GB
as uint8 and 55 GB as float32); every consumer converts a batch with :func:`as_float_images`.
A split may be empty, a (0, C, H, W) tensor (the GAN sets put every image in ``train``).
``prepare`` materialises a dataset once into one tensor file (the DAG's data rule); every
later job loads that file, so all runs of a profile see byte-identical data and record the
same content hash. A real dataset also carries a ``provenance`` record (where it was read
from and the checksums of what was read), saved in that file and shown in ``summary()``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from adaptivemix.data.source import LocalFormat
from adaptivemix.io import load_torch, save_torch
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

    def check_source(self, sources: dict, resolution: int | None = None) -> None:
        """Raise ConfigError if the local copy is missing; with ``resolution``, at that size."""
        if self.local is not None:
            self.local.check(sources, self.source_key, resolution)


def as_float_images(x: torch.Tensor) -> torch.Tensor:
    """Images as float32 in [-1, 1]: uint8 pixels (real datasets at scale) are mapped by
    x / 127.5 − 1; float images (already in [-1, 1]) are returned unchanged."""
    if x.dtype == torch.uint8:
        return x.to(torch.float32) / 127.5 - 1.0
    return x


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
    images: dict[str, torch.Tensor]  # split -> (N, C, H, W) float32 in [-1, 1], or uint8
    labels: dict[str, torch.Tensor]  # split -> (N,) int64
    num_classes: int
    # where a real dataset was read from and checksums of what was read (JSON-safe values)
    provenance: dict | None = None

    @property
    def channels(self) -> int:
        return self.images["train"].shape[1]

    @property
    def resolution(self) -> int:
        return self.images["train"].shape[-1]

    def split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        return self.images[split], self.labels[split]

    def content_hash(self) -> str:
        """sha256 over every split's images and labels, in split order (their raw bytes).

        Fed piece by piece, so a 13.8 GB image tensor is never copied; the digest equals
        the sha256 of all the pieces' bytes joined.
        """
        digest = hashlib.sha256()
        for s in SPLITS:
            for t in (self.images[s], self.labels[s]):
                digest.update(t.detach().cpu().contiguous().numpy().reshape(-1).view(np.uint8))
        return digest.hexdigest()

    def summary(self) -> dict:
        out = {
            "name": self.name,
            "resolution": self.resolution,
            "channels": self.channels,
            "num_classes": self.num_classes,
            "sizes": {s: int(self.images[s].shape[0]) for s in SPLITS},
            "dtype": str(self.images["train"].dtype).removeprefix("torch."),
            "sha256": self.content_hash(),
        }
        if self.provenance is not None:
            out["provenance"] = self.provenance
        return out


def save_prepared(dataset: ImageDataset, path: str | Path) -> Path:
    payload = {
        "name": dataset.name,
        "num_classes": dataset.num_classes,
        **{f"images_{s}": dataset.images[s] for s in SPLITS},
        **{f"labels_{s}": dataset.labels[s] for s in SPLITS},
    }
    if dataset.provenance is not None:
        payload["provenance"] = dataset.provenance
    return save_torch(path, payload)


def load_prepared(path: str | Path) -> ImageDataset:
    payload = load_torch(path)
    return ImageDataset(
        name=payload["name"],
        images={s: payload[f"images_{s}"] for s in SPLITS},
        labels={s: payload[f"labels_{s}"] for s in SPLITS},
        num_classes=int(payload["num_classes"]),
        provenance=payload.get("provenance"),
    )
