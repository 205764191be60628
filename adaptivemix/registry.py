"""A name -> object registry that refuses to overwrite a taken name.

Every pluggable kind (datasets, architectures, GAN methods, feature backbones) has one
instance. Example::

    METHODS = Registry("gan method")

    @METHODS.register("vanilla")
    class Vanilla(GanMethod): ...

    METHODS.get("vanilla")  # -> Vanilla
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from adaptivemix.errors import ConfigError

T = TypeVar("T")
NAME_PATTERN = re.compile(r"[A-Za-z0-9_-]+")
#: Joins a GAN method and its augmentations in a variant name ("adaptivemix+ada"); here, not in
#: :mod:`adaptivemix.gan.variants`, so that reports can split names without importing torch.
VARIANT_SEPARATOR = "+"


class Registry(Generic[T]):
    def __init__(self, kind: str):
        self.kind = kind
        self._entries: dict[str, T] = {}

    def register(self, name: str) -> Callable[[T], T]:
        if not NAME_PATTERN.fullmatch(name):
            # names become path parts and wildcards; "+" joins a method and its augmentations
            raise ValueError(f"{self.kind} name {name!r} must match {NAME_PATTERN.pattern}")

        def add(obj: T) -> T:
            if name in self._entries:
                raise KeyError(f"{self.kind} '{name}' is already registered")
            self._entries[name] = obj
            return obj

        return add

    def get(self, name: str, key: str | None = None) -> T:
        """Return the entry; unknown names raise ConfigError naming ``key`` and the choices."""
        if name not in self._entries:
            raise ConfigError(key or self.kind, name, f"one of {self.names()}")
        return self._entries[name]

    def names(self) -> list[str]:
        return sorted(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())
