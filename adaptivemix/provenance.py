"""What a result records about where it came from: code version and library versions."""

from __future__ import annotations

import hashlib
import importlib.metadata
import platform
import subprocess
from functools import lru_cache
from pathlib import Path

TRACKED_LIBRARIES = (
    "torch", "torchvision", "numpy", "scipy", "clean-fid", "timm", "scikit-learn",
    "pandas", "snakemake",
)  # fmt: skip


@lru_cache(maxsize=1)
def library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in TRACKED_LIBRARIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


@lru_cache(maxsize=1)
def code_version() -> str:
    """``git describe`` of the checkout, with ``-dirty`` when it has local changes."""
    root = Path(__file__).resolve().parent.parent
    try:
        out = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            cwd=root, capture_output=True, text=True, check=True, timeout=10,
        )  # fmt: skip
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def sha256_file(path: str | Path) -> str:
    digest = hashlib.sha256()
    with Path(path).open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def provenance() -> dict:
    return {"code_version": code_version(), "libraries": library_versions()}
