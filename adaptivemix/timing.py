"""Where one job's wall time goes: starting the interpreter and importing, the work the job
exists for (training, evaluation, reporting), and the rest (loading data and backbones,
writing outputs).

``adaptivemix --timing FILE <command>`` writes, when the command ends::

    {"command": "train-gan", "process_s": 19.4, "startup_s": 1.9,
     "work_s": {"train": 14.2, "evaluate": 2.8}, "packages": ["adaptivemix", "numpy", ...]}

``process_s`` runs from the process's creation (as the kernel records it) to the end of the
command, ``startup_s`` to the moment the command itself starts (every import and plugin
registration done), and ``work_s`` holds the phases the command timed itself.
``packages`` names the top-level packages outside Python's standard library that the process
had imported when it ended: what its start-up paid for (a report job never imports torch).
:mod:`adaptivemix.report.overhead` adds these files up beside Snakemake's ``benchmark:`` files.
"""

from __future__ import annotations

import sys
import time
from contextlib import contextmanager
from pathlib import Path

from adaptivemix.io import write_json


def process_started_at() -> float:
    """The process's creation time on the clock of ``time.time()``."""
    import psutil  # a dependency of Snakemake; imported only when a timing file is asked for

    return psutil.Process().create_time()


class WorkTimer:
    """Seconds per named phase: ``with timer.phase("evaluate"): ...``; phases may repeat."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str):
        started = time.perf_counter()
        try:
            yield
        finally:
            self.add(name, time.perf_counter() - started)

    def add(self, name: str, seconds: float) -> None:
        self.seconds[name] = self.seconds.get(name, 0.0) + float(seconds)


def imported_packages() -> list[str]:
    """The top-level packages this process has imported, beside the standard library's."""
    names = {name.partition(".")[0] for name in list(sys.modules)}
    return sorted(n for n in names if not n.startswith("_") and n not in sys.stdlib_module_names)


def write_timing(
    path: str | Path, command: str, started_at: float, ready_at: float, work: WorkTimer
) -> Path:
    """The job's timing record (see the module docstring); times from ``time.time()``."""
    record = {
        "command": command,
        "process_s": round(time.time() - started_at, 3),
        "startup_s": round(ready_at - started_at, 3),
        "work_s": {name: round(s, 3) for name, s in sorted(work.seconds.items())},
        "packages": imported_packages(),
    }
    return write_json(path, record)
