"""The claims registry: every reported number, and how this harness's runs compare with it.

``config/claims.csv`` holds one reported number per line; adding a claim is adding a line.
Its columns:

- ``paper``, ``arxiv``, ``table``: where the number is printed (arXiv id, table or section).
- ``task``: ``generation``, ``classification`` or ``ood``.
- ``dataset``, ``resolution``, ``architecture``, ``method``: as the paper names them
  (``resolution`` in pixels, or ``unstated``).
- ``metric``: the quantity (``FID``, ``precision``, ...); lower-cased it is the metric's
  name in this harness's runs (``fid``, ``precision``).
- ``value``: the reported number, as printed.
- ``protocol``: the paper's own name for its evaluation (e.g. ``fid50k_full``).
- ``n_gen``: generated samples (a count or ``unstated``).
- ``n_real``: real samples: a count, ``full`` (the whole training set) or ``unstated``.
- ``reference_split``: the real samples' split (``train``, ``val``, ``test``, ``unstated``).
- ``fid_mode``: the features the metric is computed on: ``legacy-tensorflow`` (the
  TensorFlow Inception network as stylegan2-ada's metrics use it), ``clean`` (clean-fid's
  resize), ``vgg16`` (stylegan2-ada's precision/recall) or ``unstated``.
- ``seeds``: training runs behind the number (a count or ``unstated``).
- ``source``: where the number was confirmed.
- ``run_dataset``, ``run_arch``, ``run_method``: this harness's keys for the same
  experiment when it can be run here, else all three empty.
- ``not_runnable``: a reason known up front why the claim cannot be reproduced, else empty.
- ``metric_data`` (optional column): this harness's key of the dataset whose real statistics
  the number is measured against when it is not ``run_dataset`` (stylegan2-ada/APA's
  ``--metricdata``, e.g. FFHQ-5k runs against all of FFHQ: ``ffhq256``), else empty.
  ``n_real`` ``full`` then means the whole training split of that dataset. A file without
  the column reads as empty everywhere.
- ``run_detector``, ``run_ood_set``, ``ood_benchmark`` (optional columns; set on every OOD
  claim with run keys, empty on every other claim): the detector (``msp``, ``odin``, ...),
  the OOD set of this harness (``odin-isun``, ...) and the benchmark whose metric rules the
  number follows (``odin``, ``openood-v1.5``: :func:`adaptivemix.ood.metrics.metric_rule`),
  matched against the ``benchmark`` of the aggregated OOD tables. An OOD claim's ``metric``
  is one of :data:`OOD_METRICS` (as printed, in %).

This module reads and checks the file with the csv module alone (no pandas), so the
config check that runs on every ``snakemake`` call stays light; :mod:`adaptivemix.report.claims`
turns it into a table and matches it against runs.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable
from pathlib import Path

REQUIRED_COLUMNS = (
    "paper",
    "arxiv",
    "table",
    "task",
    "dataset",
    "resolution",
    "architecture",
    "method",
    "metric",
    "value",
    "protocol",
    "n_gen",
    "n_real",
    "reference_split",
    "fid_mode",
    "seeds",
    "source",
    "run_dataset",
    "run_arch",
    "run_method",
    "not_runnable",
)
#: Columns a registry may leave out (every cell then empty).
OPTIONAL_COLUMNS = ("metric_data", "run_detector", "run_ood_set", "ood_benchmark")
RUN_KEYS = ("run_dataset", "run_arch", "run_method")
#: the run keys an OOD claim adds to RUN_KEYS
OOD_KEYS = ("run_detector", "run_ood_set", "ood_benchmark")
#: an OOD claim's metric (lower-cased) -> the column of the aggregated OOD tables (in %;
#: ``detection_error`` is ``100 - detection_acc``)
OOD_METRICS = {
    "auroc %": "auroc",
    "fpr95 %": "fpr95",
    "tnr95 %": "tnr95",
    "detection accuracy %": "detection_acc",
    "detection error %": "detection_error",
    "aupr-in %": "aupr_in",
    "aupr-out %": "aupr_out",
}
# Cells that may never be empty (the rest may: run keys, not_runnable, arxiv).
NON_EMPTY = ("paper", "table", "task", "dataset", "method", "metric", "value", "protocol")
# Two lines with the same values here state the same number twice.
CLAIM_KEY = ("paper", "table", "task", "dataset", "resolution", "architecture", "method", "metric")
TASKS = ("generation", "classification", "ood")
# A claim's task -> the ``task`` its runs record.
RUN_TASK = {"generation": "gan", "classification": "classify", "ood": "ood"}
UNSTATED = "unstated"
FULL = "full"
FID_MODES = ("legacy-tensorflow", "clean", "vgg16", UNSTATED)
REFERENCE_SPLITS = ("train", "val", "test", UNSTATED)
# Feature backbone recorded by a run -> the claims' fid_mode it computes. Backbones not
# listed (e.g. digits-cnn) compute none of them and show under their own name.
BACKBONE_MODES = {"inception-legacy-tensorflow": "legacy-tensorflow", "inception-clean": "clean"}


def _is_number(cell: str) -> bool:
    try:
        return math.isfinite(float(cell))
    except ValueError:
        return False


def _count_or(*words: str) -> Callable[[str], bool]:
    """Accepts a positive integer or one of ``words``."""
    return lambda cell: cell in words or (cell.isdigit() and int(cell) > 0)


# column -> (accepts the cell?, the valid choices in words)
CELL_RULES: dict[str, tuple[Callable[[str], bool], str]] = {
    "task": (lambda c: c in TASKS, f"one of {list(TASKS)}"),
    "value": (_is_number, "a finite number"),
    "resolution": (_count_or(UNSTATED), "a positive integer or 'unstated'"),
    "n_gen": (_count_or(UNSTATED), "a positive integer or 'unstated'"),
    "n_real": (_count_or(FULL, UNSTATED), "a positive integer, 'full' or 'unstated'"),
    "reference_split": (lambda c: c in REFERENCE_SPLITS, f"one of {list(REFERENCE_SPLITS)}"),
    "fid_mode": (lambda c: c in FID_MODES, f"one of {list(FID_MODES)}"),
    "seeds": (_count_or(UNSTATED), "a positive integer or 'unstated'"),
}


def _bad_cell(path: Path, line: int, column: str, value: str, expected: str) -> ValueError:
    return ValueError(f"{path}, line {line}, column '{column}': got {value!r}; expected {expected}")


def _read_rows(path: Path) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """Header and (line number, stripped cells) of every non-blank record of ``path``."""
    with path.open(newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        rows = []
        for cells in reader:
            if not any(c.strip() for c in cells):
                continue
            if len(cells) != len(header):
                raise ValueError(
                    f"{path}, line {reader.line_num}: {len(cells)} cells; the header has "
                    f"{len(header)} ({', '.join(header)})"
                )
            cells = [c.strip() for c in cells]
            rows.append((reader.line_num, dict(zip(header, cells, strict=True))))
    return header, rows


def _check_row(path: Path, line: int, row: dict[str, str]) -> None:
    """Raise for the first bad cell of one claim."""
    for column in NON_EMPTY:
        if not row[column]:
            raise _bad_cell(path, line, column, row[column], "a non-empty value")
    for column, (accepts, expected) in CELL_RULES.items():
        if not accepts(row[column]):
            raise _bad_cell(path, line, column, row[column], expected)
    set_keys = [k for k in RUN_KEYS if row[k]]
    if set_keys and len(set_keys) != len(RUN_KEYS):
        empty = next(k for k in RUN_KEYS if not row[k])
        raise _bad_cell(path, line, empty, row[empty], f"all of {list(RUN_KEYS)} set, or none")
    if row["metric_data"] and not set_keys:
        expected = f"empty when the run keys {list(RUN_KEYS)} are (no run to measure)"
        raise _bad_cell(path, line, "metric_data", row["metric_data"], expected)
    _check_ood_keys(path, line, row, bool(set_keys))


def _check_ood_keys(path: Path, line: int, row: dict[str, str], has_run: bool) -> None:
    """OOD keys and an OOD metric on an OOD claim with run keys; no OOD keys elsewhere."""
    if row["task"] != "ood" or not has_run:
        for column in OOD_KEYS:
            if row[column]:
                expected = "empty except on an 'ood' claim with run keys"
                raise _bad_cell(path, line, column, row[column], expected)
        return
    for column in OOD_KEYS:
        if not row[column]:
            raise _bad_cell(path, line, column, "", "a non-empty value on an 'ood' claim")
    if row["metric"].lower() not in OOD_METRICS:
        expected = f"on an 'ood' claim one of {list(OOD_METRICS)} (any case)"
        raise _bad_cell(path, line, "metric", row["metric"], expected)


def read_claims(path: Path | str) -> tuple[list[str], list[dict[str, str]]]:
    """The header and the claims of ``path`` (one dict of stripped cells per line, in file
    order), validated.

    A missing column, a bad cell or a claim stated twice raises one ``ValueError`` naming the
    file, the line, the column, the value and the valid choices, so a typo in a new line is
    found before any report. Missing :data:`OPTIONAL_COLUMNS` are added, empty.
    """
    path = Path(path)
    header, rows = _read_rows(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}; required: {list(REQUIRED_COLUMNS)}")
    header += [c for c in OPTIONAL_COLUMNS if c not in header]
    first_line: dict[tuple[str, ...], int] = {}
    for line, row in rows:
        for column in OPTIONAL_COLUMNS:
            row.setdefault(column, "")
        _check_row(path, line, row)
        key = tuple(row[c] for c in CLAIM_KEY)
        if key in first_line:
            same = ", ".join(f"{c}={v!r}" for c, v in zip(CLAIM_KEY, key, strict=True))
            raise ValueError(
                f"{path}, line {line}: the claim ({same}) is already on line "
                f"{first_line[key]}; expected each claim once"
            )
        first_line[key] = line
    return header, [row for _, row in rows]
