"""Local copies of real datasets: where they are and whether they look complete.

A reader of a real dataset declares its on-disk format as a :class:`LocalFormat`. The
config names the folder under ``sources.<key>.root``; ``check`` runs while the config is
validated, so a missing or incomplete copy stops the workflow before any job starts with
one message naming the key, the path and the expected format. Nothing is ever downloaded
unless ``sources.<key>.download`` is true (then the check is left to the reader).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from adaptivemix.errors import ConfigError


@dataclass(frozen=True)
class LocalFormat:
    description: str  # the expected layout, shown to the user, e.g. "cifar-10-batches-py/..."
    find_missing: Callable[[Path], list[str]]  # root -> the expected entries it lacks

    def check(self, sources: dict, source_key: str) -> None:
        """Raise ConfigError unless ``sources[source_key]['root']`` holds this format."""
        key = f"sources.{source_key}.root"
        source = sources.get(source_key) or {}
        if source.get("download"):
            return  # the reader fetches what is missing (only where a network exists)
        root = source.get("root")
        if not root:
            raise ConfigError(
                key, root, f"the path of a local copy in the format {self.description}"
            )
        missing = self.find_missing(Path(root))
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            expected = f"a folder in the format {self.description} (missing: {shown})"
            raise ConfigError(key, root, expected)


def missing_entries(root: Path, names: list[str]) -> list[str]:
    """The entries of ``names`` (relative paths) that do not exist under ``root``."""
    if not root.is_dir():
        return [f"{root} (no such folder)"]
    return [name for name in names if not (root / name).exists()]
