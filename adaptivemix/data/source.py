"""Local copies of real datasets: where they are and whether they look complete.

A reader of a real dataset declares its on-disk format as a :class:`LocalFormat`. The
config names the folder under ``sources.<key>.root``; ``check`` runs at the workflow's
start-up check (:mod:`adaptivemix.preflight`), so a missing or incomplete copy stops the
workflow before any job starts with one message naming the key, the path and the expected
format. A format may also ``verify`` a present copy cheaply (an archive streamed or listed,
image headers read), so a truncated archive or an image of the wrong size is refused then
too, naming the key, the file and the entry. Nothing is ever downloaded unless
``sources.<key>.download`` is true (then the check is left to the reader); a format
with no download (``downloadable=False``) refuses that option at the same check.

Layouts whose file names hold the resolution (``ffhq-256x256.zip``) give ``find_missing_at``
too: with the run's resolution, the check asks for exactly that file; without it,
``find_missing`` accepts the layout at any resolution.
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
    # (root, resolution) -> what it lacks at that resolution; None: same as find_missing
    find_missing_at: Callable[[Path, int], list[str]] | None = None
    downloadable: bool = True  # False: ``download: true`` is refused (no public download)
    # (root, resolution) -> None: the cheap part of reading a present copy (archives listed
    # or streamed, headers checked), raising the reader's own ConfigError; None: no check
    verify: Callable[[Path, int | None], None] | None = None

    def check(self, sources: dict, source_key: str, resolution: int | None = None) -> None:
        """Raise ConfigError unless ``sources[source_key]['root']`` holds this format."""
        key = f"sources.{source_key}.root"
        source = sources.get(source_key) or {}
        if source.get("download"):
            if not self.downloadable:
                raise ConfigError(
                    f"sources.{source_key}.download",
                    True,
                    f"false: this dataset has no download; place a local copy in the "
                    f"format {self.description} under sources.{source_key}.root",
                )
            return  # the reader fetches what is missing (only where a network exists)
        root = source.get("root")
        if not root:
            raise ConfigError(
                key, root, f"the path of a local copy in the format {self.description}"
            )
        if resolution is not None and self.find_missing_at is not None:
            missing = self.find_missing_at(Path(root), resolution)
        else:
            missing = self.find_missing(Path(root))
        if missing:
            shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
            expected = f"a folder in the format {self.description} (missing: {shown})"
            raise ConfigError(key, root, expected)
        if self.verify is not None:
            self.verify(Path(root), resolution)


def missing_entries(root: Path, names: list[str]) -> list[str]:
    """The entries of ``names`` (relative paths) that do not exist under ``root``."""
    if not root.is_dir():
        return [f"{root} (no such folder)"]
    return [name for name in names if not (root / name).exists()]
