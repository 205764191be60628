"""Where a finished profile's wall time went: the work it exists for, and the overhead.

Reads ``<results>/benchmarks/<rule>/**.tsv`` (Snakemake's ``benchmark:`` files: a job's wall
seconds ``s``; a file's modification time is its job's end) and the ``.timing.json`` beside
each (written by ``adaptivemix --timing``, see :mod:`adaptivemix.timing`). With ``cores``
cores over the run's wall time W, the capacity is ``cores × W`` core-seconds, split into:

- **work**: the phases jobs timed themselves: training loops (with their in-training
  evaluations), final evaluations and reference statistics, and reporting;
- **start-up**: from each process's creation to its command's start (interpreter, imports,
  plugin registration);
- **in-job rest**: the rest of each process (loading data and backbones, building
  networks, writing outputs);
- **job launch**: a job's benchmark time outside its Python process (shell, Snakemake's
  job wrapper);
- **idle / scheduling**: capacity not covered by any job (Snakemake's own scheduling, and
  cores left idle while the DAG has fewer runnable jobs than cores).

The overhead share is 1 − work / capacity. W defaults to the span from the first job's start
to the last job's end; pass the measured wall time of the whole ``snakemake`` call to also
count its start-up (parsing the Snakefile, checking the config, building the DAG).
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

TIMING_SUFFIX = ".timing.json"


@dataclass(frozen=True)
class Job:
    rule: str
    wall_s: float  # Snakemake's benchmark seconds
    ended_at: float  # the benchmark file's modification time
    process_s: float | None  # None: the job wrote no timing file
    startup_s: float
    work_s: dict[str, float]


def read_jobs(results: Path) -> list[Job]:
    """Every benchmarked job under ``results/benchmarks``, with its timing file if any."""
    jobs = []
    root = Path(results) / "benchmarks"
    for tsv in sorted(root.rglob("*.tsv")):
        with tsv.open() as f:
            row = next(csv.DictReader(f, delimiter="\t"))
        timing_file = tsv.with_suffix(TIMING_SUFFIX)
        timing = json.loads(timing_file.read_text()) if timing_file.exists() else {}
        jobs.append(
            Job(
                rule=tsv.relative_to(root).parts[0],
                wall_s=float(row["s"]),
                ended_at=tsv.stat().st_mtime,
                process_s=timing.get("process_s"),
                startup_s=timing.get("startup_s", 0.0),
                work_s=timing.get("work_s", {}),
            )
        )
    if not jobs:
        raise FileNotFoundError(f"no benchmark files under {root}: run the profile first")
    return jobs


def breakdown(jobs: list[Job], cores: int, wall_s: float | None = None) -> dict[str, float]:
    """Core-seconds per category (see the module docstring) and the capacity."""
    span = max(j.ended_at for j in jobs) - min(j.ended_at - j.wall_s for j in jobs)
    wall = span if wall_s is None else wall_s
    parts: dict[str, float] = {}
    for job in jobs:
        for phase, seconds in job.work_s.items():
            parts[f"work: {phase}"] = parts.get(f"work: {phase}", 0.0) + seconds
    timed = [j for j in jobs if j.process_s is not None]
    work = sum(parts.values())
    parts["start-up (interpreter, imports)"] = sum(j.startup_s for j in timed)
    in_process = sum(j.process_s for j in timed)
    parts["in-job rest (loading, writing)"] = (
        in_process - work - parts["start-up (interpreter, imports)"]
    )
    parts["job launch (outside the process)"] = sum(j.wall_s for j in timed) - in_process
    parts["untimed jobs"] = sum(j.wall_s for j in jobs if j.process_s is None)
    parts["idle / scheduling"] = cores * wall - sum(j.wall_s for j in jobs)
    return parts | {"capacity": cores * wall, "wall": wall, "work": work}


def overhead_table(results: Path, cores: int, wall_s: float | None = None) -> str:
    """A Markdown table of :func:`breakdown`, ending with the overhead share."""
    jobs = read_jobs(results)
    parts = breakdown(jobs, cores, wall_s)
    capacity, work = parts.pop("capacity"), parts.pop("work")
    wall = parts.pop("wall")
    lines = [
        f"{len(jobs)} jobs, wall {wall:.1f} s on {cores} cores = {capacity:.1f} core-seconds",
        "",
        "| where | core-seconds | share |",
        "|---|---:|---:|",
    ]
    for name, seconds in parts.items():
        lines.append(f"| {name} | {seconds:.1f} | {100 * seconds / capacity:.1f} % |")
    share = 1.0 - work / capacity
    lines += ["", f"overhead share (1 − work / capacity): {100 * share:.1f} %", ""]
    return "\n".join(lines)
