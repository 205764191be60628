"""All or nothing: a report's files appear together, or none of this attempt's do.

Every file is written atomically (:func:`adaptivemix.io.atomic_write`), but an aggregation
that fails halfway would still leave some new tables beside old or missing ones. Under
:func:`staged` a report writes into hidden folders beside its real ones; only when it
returns are the files moved into place (one ``os.replace`` each, same file system), and
a failure removes the hidden folders with what they held. Files of an earlier report
that this one does not rewrite are left alone: the workflow removes a failed job's
declared outputs itself, so every file an aggregation writes is declared in its rule.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path


@contextmanager
def staged(*dirs: Path | str) -> Iterator[tuple[Path, ...]]:
    """Hidden stand-ins for ``dirs``; on a clean exit their files move into ``dirs``."""
    finals = [Path(d) for d in dirs]
    temps: list[Path] = []
    try:
        for final in finals:
            final.parent.mkdir(parents=True, exist_ok=True)
            prefix = f".{final.name}.staging-"
            temps.append(Path(tempfile.mkdtemp(prefix=prefix, dir=final.parent)))
        yield tuple(temps)
        for temp, final in zip(temps, finals, strict=True):
            _move_files(temp, final)
    finally:
        for temp in temps:
            shutil.rmtree(temp, ignore_errors=True)


def _move_files(source: Path, target: Path) -> None:
    for path in sorted(source.rglob("*")):
        if path.is_file():
            destination = target / path.relative_to(source)
            destination.parent.mkdir(parents=True, exist_ok=True)
            os.replace(path, destination)


def unstaged(paths: Sequence[Path], temps: Sequence[Path], finals: Sequence[Path]) -> list[Path]:
    """``paths`` written under the stand-ins ``temps``, as they are named under ``finals``."""
    out = []
    for path in map(Path, paths):
        for temp, final in zip(temps, finals, strict=True):
            if path.is_relative_to(temp):
                path = Path(final) / path.relative_to(temp)
                break
        out.append(path)
    return out
