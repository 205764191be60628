"""Atomic file writes: a reader never sees a half-written file.

Write to a temporary file in the same folder, fsync, then ``os.replace`` it into place.
The temporary file is created as a plain ``open(path, "w")`` creates a file (mode 0o666
less the umask, or the folder's default ACL), not with ``tempfile.mkstemp``'s 0600: tables,
weights and metrics stay readable to whom the umask allows on a shared filesystem. The
kernel applies the umask at creation, so it is never read (``os.umask`` is process-global).
"""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, BinaryIO

#: ``os.open`` flags of a new temporary file: exclusive creation (never an existing file or a
#: planted symlink), closed on exec.
_TEMP_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)


def _create_temp(path: Path) -> tuple[int, str]:
    """A new ``.<name>.<random>.tmp`` beside ``path``, opened for writing, mode as open()'s."""
    for _ in range(100):
        tmp = path.parent / f".{path.name}.{secrets.token_hex(6)}.tmp"
        try:
            return os.open(tmp, _TEMP_FLAGS, 0o666), str(tmp)
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary name beside {path}")


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None]) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _create_temp(path)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | Path, obj: Any) -> Path:
    text = json.dumps(obj, indent=2, sort_keys=True, allow_nan=True) + "\n"
    return atomic_write(path, lambda f: f.write(text.encode()))


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())


def write_jsonl(path: str | Path, rows: Iterable[dict]) -> Path:
    text = "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows)
    return atomic_write(path, lambda f: f.write(text.encode()))


def append_jsonl(path: str | Path, row: dict) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(row, sort_keys=True) + "\n")


def read_jsonl(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def save_torch(path: str | Path, obj: Any) -> Path:
    import torch  # here, not above: the report's jobs write JSON without importing torch

    return atomic_write(path, lambda f: torch.save(obj, f))


def load_torch(path: str | Path) -> Any:
    import torch

    return torch.load(path, map_location="cpu", weights_only=True)
