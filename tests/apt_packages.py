"""Installing the Debian packages a test needs (SLURM, Chromium) with apt-get, as root."""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Sequence


def apt_install(packages: Sequence[str], error: type[Exception]) -> None:
    """``apt-get install`` ``packages``; raises ``error`` saying why when it cannot."""
    if os.geteuid() != 0:
        raise error(f"installing {list(packages)} needs root")
    if shutil.which("apt-get") is None:
        raise error(f"installing {list(packages)} needs apt-get, which is not available")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-q"], ["apt-get", "install", "-y", "-q", *packages]):
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
        if result.returncode != 0:
            raise error(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
