"""Out-of-distribution test sets: a registry of builders with what their images are.

An OOD set is a stack of images at the in-distribution resolution and channel count
(N, C, R, R), float32 in [-1, 1] like every :class:`~adaptivemix.data.ImageDataset`.
Its spec says where its classes come from (``family``/``classes``, so a set overlapping
the in-distribution classes is refused before any job starts), whether it is near or far
OOD, under which protocol its numbers are reported, and, for real data, its local format.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from adaptivemix.data.source import LocalFormat
from adaptivemix.registry import Registry

GROUPS = ("near", "far")


@dataclass(frozen=True)
class OodSetSpec:
    """``spec(resolution, channels, id_dataset, **source)`` builds the images."""

    build: Callable[..., torch.Tensor]
    family: str  # where its class names come from; "" for sets without classes (noise)
    classes: tuple[str, ...]  # semantic classes it holds (compared with the ID classes)
    group: str  # near | far
    protocol: str  # the benchmark protocol its numbers belong to, e.g. "odin", "openood-v1.5"
    local: LocalFormat | None = None  # None: embedded, nothing read from disk
    source_key: str | None = None  # its entry under the config's ``sources``
    id_datasets: tuple[str, ...] | None = None  # ID sets it is defined for; None: any

    def __call__(self, resolution: int, channels: int, id_dataset: str, **source) -> torch.Tensor:
        return self.build(resolution, channels, id_dataset, **source)

    def check_source(self, sources: dict) -> None:
        if self.local is not None:
            self.local.check(sources, self.source_key)


#: name -> OodSetSpec
OOD_SETS: Registry = Registry("OOD set")


def register_ood_set(
    name: str,
    *,
    family: str,
    classes: Sequence[str],
    group: str,
    protocol: str,
    local: LocalFormat | None = None,
    source_key: str | None = None,
    id_datasets: Sequence[str] | None = None,
) -> Callable:
    """Decorator: register ``build(resolution, channels, id_dataset, **source)`` as ``name``."""
    if group not in GROUPS:
        raise ValueError(f"OOD set {name!r}: group {group!r} is not one of {GROUPS}")

    def add(build: Callable[..., torch.Tensor]) -> Callable[..., torch.Tensor]:
        ids = None if id_datasets is None else tuple(id_datasets)
        spec = OodSetSpec(
            build, family, tuple(classes), group, protocol, local, source_key or name, ids
        )
        OOD_SETS.register(name)(spec)
        return build

    return add
