"""Typed options of plugins (methods, augmentations, detectors, attacks), checked early."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from adaptivemix.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class NoOptions:
    pass


class Configurable:
    """Base of every plugin kind (methods, augmentations, detectors, attacks): typed options.

    A plugin's options live under ``<section>.<name>`` of the config (GAN methods:
    ``gan.method_options``); ``describe`` gives the resolved options (defaults filled),
    which are recorded with every result. An Options dataclass may validate values in
    ``__post_init__`` by raising ``ValueError``; that becomes a ConfigError naming the key.
    """

    Options: ClassVar[type] = NoOptions

    def __init__(self, options=None):
        self.options = options if options is not None else self.Options()

    @classmethod
    def from_config(cls, name: str, options: dict | None, section: str = "gan.method_options"):
        """Build from ``options`` found at config key ``<section>.<name>`` (named in errors)."""
        return cls(parse_options(cls.Options, options or {}, f"{section}.{name}"))

    def describe(self) -> dict:
        return dataclasses.asdict(self.options)


def parse_options(options_cls: type, values: dict, key: str):
    """Build a method's Options dataclass; an unknown key or a wrong type raises ConfigError."""
    fields = {f.name: f for f in dataclasses.fields(options_cls)}
    for name, value in values.items():
        if name not in fields:
            raise ConfigError(f"{key}.{name}", value, f"one of the options {sorted(fields)}")
        _check_type(f"{key}.{name}", value, fields[name].type)
    try:
        return options_cls(**values)
    except ConfigError:
        raise
    except ValueError as err:  # a range check of __post_init__: "<field>: <expected>"
        field, _, expected = str(err).partition(": ")
        value = values.get(field, getattr(options_cls, field, None))
        raise ConfigError(f"{key}.{field}", value, expected or str(err)) from None


_TYPE_CHECKS = {
    "float": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "str": lambda v: isinstance(v, str),
    "tuple[str, ...]": lambda v: (
        isinstance(v, (list, tuple)) and all(isinstance(s, str) for s in v)
    ),
}


def _check_type(key: str, value: object, annotation: object) -> None:
    check = _TYPE_CHECKS.get(str(annotation))
    if check is not None and not check(value):
        raise ConfigError(key, value, f"a value of type {annotation}")
