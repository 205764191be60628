"""Typed options of plugins (methods, augmentations): parsed from config dicts, checked early."""

from __future__ import annotations

import dataclasses
from typing import ClassVar

from adaptivemix.errors import ConfigError


@dataclasses.dataclass(frozen=True)
class NoOptions:
    pass


class Configurable:
    """Base of every plugin kind (methods, augmentations): typed options from the config.

    Options of any plugin live under ``gan.method_options.<name>``; ``describe`` gives the
    resolved options (defaults filled), which are recorded with every result.
    """

    Options: ClassVar[type] = NoOptions

    def __init__(self, options=None):
        self.options = options if options is not None else self.Options()

    @classmethod
    def from_config(cls, name: str, options: dict | None):
        return cls(parse_options(cls.Options, options or {}, f"gan.method_options.{name}"))

    def describe(self) -> dict:
        return dataclasses.asdict(self.options)


def parse_options(options_cls: type, values: dict, key: str):
    """Build a method's Options dataclass; an unknown key or a wrong type raises ConfigError."""
    fields = {f.name: f for f in dataclasses.fields(options_cls)}
    for name, value in values.items():
        if name not in fields:
            raise ConfigError(f"{key}.{name}", value, f"one of the options {sorted(fields)}")
        _check_type(f"{key}.{name}", value, fields[name].type)
    return options_cls(**values)


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
