"""The dataset contract shared by every reader.

A dataset is a set of images in [-1, 1] (N, C, H, W float32) with integer labels, cut into
fixed ``train`` / ``val`` / ``test`` splits. ``prepare`` materialises it once into one tensor
file (the DAG's data rule); every later job loads that file, so all runs of a profile see
byte-identical data and record the same content hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from adaptivemix.io import load_torch, save_torch
from adaptivemix.provenance import sha256_bytes
from adaptivemix.registry import Registry

SPLITS = ("train", "val", "test")

#: name -> builder(resolution: int) -> ImageDataset
DATASETS: Registry = Registry("dataset")


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
