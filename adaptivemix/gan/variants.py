"""Variant names: one GAN method composed with augmentations, through config alone.

``adaptivemix`` is AdaptiveMix alone; ``adaptivemix+diffaugment`` is AdaptiveMix with
DiffAugment on every D input; ``vanilla+ada+diffaugment`` stacks two augmentations in that
order. The first part must be a registered method, every other part a registered
augmentation, each at most once. A variant name is what tables and run folders show.
Options come from ``gan.method_options.<part>`` for each part. A sweep's grid point adds its
own after ``@`` (:mod:`adaptivemix.sweeps`): ``adaptivemix@alpha=0.2,noise_std=0.0`` is
AdaptiveMix with those two options over the configured ones.
"""

from __future__ import annotations

from dataclasses import dataclass

from adaptivemix.errors import ConfigError
from adaptivemix.gan.augment import AUGMENTS, AugmentPipeline, build_augmentation
from adaptivemix.gan.methods import METHODS, GanMethod, build_method
from adaptivemix.registry import VARIANT_SEPARATOR as SEPARATOR
from adaptivemix.sweeps import split_point


@dataclass(frozen=True)
class Variant:
    name: str
    method: str
    augments: tuple[str, ...]
    point: tuple[tuple[str, object], ...] = ()  # a sweep point's options of the method

    @property
    def parts(self) -> tuple[str, ...]:
        return (self.method, *self.augments)


def parse_variant(name: str, key: str = "gan.methods") -> Variant:
    """Split and check a variant name; an unknown or repeated part raises ConfigError."""
    variant, point = split_point(name)
    method, *augments = variant.split(SEPARATOR)
    if method not in METHODS:
        hint = " (augmentations come after a method, e.g. vanilla+diffaugment)"
        raise ConfigError(key, name, f"a name starting with one of {METHODS.names()}{hint}")
    for part in augments:
        if part not in AUGMENTS:
            raise ConfigError(key, name, f"'{part}' replaced by one of {AUGMENTS.names()}")
    if len(set(augments)) != len(augments):
        raise ConfigError(key, name, "each augmentation at most once")
    return Variant(name, method, tuple(augments), tuple(point.items()))


def build_variant(
    name: str, options: dict | None = None, key: str = "gan.methods"
) -> tuple[GanMethod, AugmentPipeline]:
    """The method and augmentation pipeline of a variant; ``options`` maps part -> options."""
    options = options or {}
    variant = parse_variant(name, key)
    method_options = (options.get(variant.method) or {}) | dict(variant.point)
    method = build_method(variant.method, method_options)
    pipeline = AugmentPipeline(
        [(part, build_augmentation(part, options.get(part))) for part in variant.augments]
    )
    return method, pipeline


def registered_parts() -> list[str]:
    return [*METHODS.names(), *AUGMENTS.names()]
