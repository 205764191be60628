"""Do a fresh run's outputs reproduce the committed ones? Table and figure data, cell by cell.

:func:`compare_results` compares two ``results/<profile>`` trees: the same files under
``tables/`` and ``figures/``; every CSV there (tables, and the numbers behind each figure)
with the same columns, the same rows (matched by their key columns) and numeric cells within
a tolerance. Pictures (PNG/PDF) and the Markdown/LaTeX renderings are only required to exist
in both: matplotlib's pixels and PDF bytes change with its version and fonts, and the
renderings are rounded copies of the CSVs, which are compared instead.

:func:`write_reference_record` writes ``REFERENCE.json`` beside committed outputs: the
machine and library versions they were made with, so a later comparison knows whether to
expect identical numbers (:func:`same_machine`) or only close ones.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from adaptivemix.io import atomic_write, read_json
from adaptivemix.provenance import code_version, library_versions

COMPARED_DIRS = ("tables", "figures")
DATA_SUFFIX = ".csv"
#: Columns that identify a row (in this order when present); a file with none is compared
#: row by row in order.
KEY_COLUMNS = (
    "task", "dataset", "arch", "method", "detector", "ood_set", "metric", "claim", "claim_id",
    "seed", "step", "fpr",
)  # fmt: skip
#: Columns that legitimately differ between two runs of the same code (wall-clock times,
#: provenance); none of the committed CSVs has one today, but a table that gains one must
#: not make every comparison fail.
RUN_DEPENDENT_COLUMNS = (
    "train_seconds", "time_s", "wall_s", "seconds", "code_version", "provenance", "created",
)  # fmt: skip
REFERENCE_FILE = "REFERENCE.json"
#: Same CPU model and libraries: every job is seeded and single-threaded, so the numbers are
#: identical in practice; the slack only absorbs a CSV float's last digit.
SAME_MACHINE_TOLERANCE = {"rtol": 1e-6, "atol": 1e-9}
#: Another CPU (other SIMD kernels, other rounding) or other libraries: GAN training amplifies
#: rounding differences, so each seed ends at a different but similar generator; spreads over
#: a few seeds move most. Catches broken pipelines and changed semantics, not small drifts.
OTHER_MACHINE_TOLERANCE = {"rtol": 0.5, "atol": 0.05}


def compare_results(reference: Path, fresh: Path, rtol: float, atol: float) -> list[str]:
    """Differences between two ``results/<profile>`` trees; an empty list means they agree.

    Numbers agree when ``|fresh - reference| <= atol + rtol * |reference|`` (NaN equals NaN);
    text cells must be equal. Each difference names the file, and where it applies the row
    (its key columns), the column and both values.
    """
    reference, fresh = Path(reference), Path(fresh)
    if rtol < 0 or atol < 0:
        raise ValueError(f"tolerances must be >= 0, got rtol={rtol}, atol={atol}")
    ref_files, new_files = _output_files(reference), _output_files(fresh)
    if not ref_files:
        raise ValueError(f"{reference} has no files under {'/ or '.join(COMPARED_DIRS)}/")
    problems = [f"{name}: missing in the fresh run" for name in sorted(ref_files - new_files)]
    problems += [f"{name}: not in the reference" for name in sorted(new_files - ref_files)]
    for name in sorted(ref_files & new_files):
        if name.endswith(DATA_SUFFIX):
            problems += compare_csv(reference / name, fresh / name, rtol, atol, name)
    return problems


def _output_files(root: Path) -> set[str]:
    """Paths (relative to ``root``, with '/') of every file under the compared folders."""
    return {
        path.relative_to(root).as_posix()
        for folder in COMPARED_DIRS
        for path in (root / folder).rglob("*")
        if path.is_file()
    }


def compare_csv(reference: Path, fresh: Path, rtol: float, atol: float, name: str) -> list[str]:
    """Differences between two CSV files: columns, rows by key, then every shared cell."""
    ref, new = _read(reference), _read(fresh)
    problems = []
    missing = [c for c in ref.columns if c not in new.columns]
    extra = [c for c in new.columns if c not in ref.columns]
    if missing:
        problems.append(f"{name}: columns missing in the fresh run: {missing}")
    if extra:
        problems.append(f"{name}: columns not in the reference: {extra}")
    keys = [c for c in KEY_COLUMNS if c in ref.columns and c in new.columns]
    ref, new = _index_rows(ref, keys), _index_rows(new, keys)
    for row in ref.index.difference(new.index, sort=False):
        problems.append(f"{name}: row {_row_name(keys, row)} missing in the fresh run")
    for row in new.index.difference(ref.index, sort=False):
        problems.append(f"{name}: row {_row_name(keys, row)} not in the reference")
    return problems + _cell_problems(ref, new, keys, rtol, atol, name)


def _cell_problems(
    ref: pd.DataFrame, new: pd.DataFrame, keys: list[str], rtol: float, atol: float, name: str
) -> list[str]:
    """Cells of rows and columns both files have: numbers within tolerance, text equal."""
    rows = ref.index.intersection(new.index, sort=False)
    ref, new = ref.loc[rows], new.loc[rows]
    problems = []
    for col in [c for c in ref.columns if c in new.columns]:
        pairs = list(zip(ref[col].tolist(), new[col].tolist(), strict=True))
        if _numeric(ref[col]) and _numeric(new[col]):
            found = [_number_difference(x, y, rtol, atol) for x, y in pairs]
        else:
            found = [None if x == y else f"reference {x!r} vs fresh {y!r}" for x, y in pairs]
        problems += [
            f"{name}: row {_row_name(keys, row)} column {col}: {text}"
            for row, text in zip(rows, found, strict=True)
            if text
        ]
    return problems


def _read(path: Path) -> pd.DataFrame:
    """Every cell as its text (an empty cell as ''), run-dependent columns dropped."""
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    return frame.drop(columns=[c for c in frame.columns if c in RUN_DEPENDENT_COLUMNS])


def _index_rows(frame: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    """Index by the key columns plus an occurrence count (repeated keys stay distinct);
    without key columns, by row number."""
    frame = frame.copy()
    group = frame.groupby(keys, sort=False).cumcount() if keys else pd.RangeIndex(len(frame))
    frame["#"] = list(group)
    return frame.set_index([*keys, "#"])


def _row_name(keys: list[str], row: tuple | int) -> str:
    # without key columns the index is the occurrence alone: a plain integer, not a tuple
    *values, occurrence = row if isinstance(row, tuple) else (row,)
    shown = ", ".join(f"{k}={v}" for k, v in zip(keys, values, strict=True))
    if not keys:
        return f"#{occurrence + 1}"
    return f"({shown})" + (f" #{occurrence + 1}" if occurrence else "")


def _number(text: str) -> float:
    return math.nan if text.strip() == "" else float(text)


def _numeric(column: pd.Series) -> bool:
    """Whether every cell is a number or empty (pandas writes NaN as an empty cell)."""
    try:
        [_number(v) for v in column]
    except ValueError:
        return False
    return True


def _number_difference(x: str, y: str, rtol: float, atol: float) -> str | None:
    """None when the fresh number ``y`` is within tolerance of the reference ``x`` (both as
    written in the CSV), else a description with both values as written."""
    a, b = _number(x), _number(y)
    shown = f"reference {x or 'NaN'} vs fresh {y or 'NaN'}"
    if math.isnan(a) or math.isnan(b) or math.isinf(a) or math.isinf(b):
        same = (math.isnan(a) and math.isnan(b)) or a == b
        return None if same else shown
    allowed = atol + rtol * abs(a)
    return (
        None
        if abs(b - a) <= allowed
        else f"{shown} (|difference| {abs(b - a):.3g} > {allowed:.3g})"
    )


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux, else what ``platform`` knows)."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text(errors="replace").splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine() or "unknown"


def write_reference_record(out_dir: Path, command: Sequence[str] | None = None) -> Path:
    """Write ``<out_dir>/REFERENCE.json``: CPU model, platform, library versions (Python
    included), code version and the command that made the outputs (default: this process's)."""
    record = {
        "cpu_model": cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "libraries": library_versions(),
        "code_version": code_version(),
        "command": list(command) if command is not None else list(sys.argv),
    }
    text = (json.dumps(record, indent=2, sort_keys=True) + "\n").encode()
    return atomic_write(Path(out_dir) / REFERENCE_FILE, lambda f: f.write(text))


def read_reference_record(results_dir: Path) -> dict | None:
    """``results_dir``'s REFERENCE.json, or None when it has none."""
    path = Path(results_dir) / REFERENCE_FILE
    return read_json(path) if path.is_file() else None


def same_machine(record: dict | None) -> bool:
    """Whether outputs recorded by ``record`` were made on this CPU model with these library
    versions, so a fresh run should reproduce them to the last digit."""
    if not record:
        return False
    same_cpu = record.get("cpu_model") == cpu_model()
    return same_cpu and record.get("libraries") == library_versions()


def tolerance_for(reference: Path) -> tuple[dict[str, float], str]:
    """The tolerance to compare a fresh run with ``reference`` (a ``results/<profile>``),
    chosen by its REFERENCE.json (:func:`same_machine`), and the reason in words."""
    record = read_reference_record(reference)
    if same_machine(record):
        return SAME_MACHINE_TOLERANCE, "same CPU model and library versions as the reference"
    why = f"no {REFERENCE_FILE}" if record is None else "another CPU model or library versions"
    return OTHER_MACHINE_TOLERANCE, why


def main(argv: Sequence[str] | None = None) -> int:
    """``record OUT_DIR [--command ...]`` writes REFERENCE.json; ``compare REFERENCE FRESH
    [--rtol R --atol A]`` prints the differences (tolerance from REFERENCE.json unless given)
    and returns 1 when there are any."""
    parser = argparse.ArgumentParser(prog="python -m adaptivemix.report.compare")
    sub = parser.add_subparsers(dest="action", required=True)
    record = sub.add_parser("record", help=f"write OUT_DIR/{REFERENCE_FILE}")
    record.add_argument("out_dir", type=Path)
    record.add_argument("--command", nargs=argparse.REMAINDER, help="what made the outputs")
    compare = sub.add_parser("compare", help="compare a fresh results/<profile> with a reference")
    compare.add_argument("reference", type=Path)
    compare.add_argument("fresh", type=Path)
    compare.add_argument("--rtol", type=float)
    compare.add_argument("--atol", type=float)
    args = parser.parse_args(argv)
    if args.action == "record":
        print(write_reference_record(args.out_dir, args.command))
        return 0
    tolerance, why = tolerance_for(args.reference)
    if args.rtol is not None or args.atol is not None:
        why = "given on the command line"
        tolerance = {"rtol": args.rtol or 0.0, "atol": args.atol or 0.0}
    problems = compare_results(args.reference, args.fresh, **tolerance)
    print("\n".join(problems) or "no differences")
    print(f"(rtol={tolerance['rtol']}, atol={tolerance['atol']}: {why})")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
