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

A claim is *reproduced* when its run keys are set, it has no ``not_runnable`` reason, the
profile has runs of those keys with a finite value of the metric, and the runs' recorded
protocol matches the claim's (``n_gen``; ``n_real`` and ``reference_split``; ``fid_mode``
against the feature backbone). Every other claim is listed with the precise reason.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from adaptivemix.report.tables import GROUP_COLS, format_mean_std, precision_of
from adaptivemix.report.writers import write_frame

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
RUN_KEYS = ("run_dataset", "run_arch", "run_method")
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

REPRODUCED_COLUMNS = (
    "paper",
    "table",
    "dataset",
    "arch",
    "method",
    "metric",
    "protocol",
    "reported",
    "ours_mean",
    "ours_std",
    "ours_ci_low",
    "ours_ci_high",
    "n_seeds",
    "deviation",
    "deviation_pct",
    "within_ci",
)
NOT_RUN_COLUMNS = (
    "paper",
    "table",
    "dataset",
    "architecture",
    "method",
    "metric",
    "reported",
    "reason",
)
NO_REPRODUCED = "No claim's protocol can be run by this profile"


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


def load_claims(path: Path | str) -> pd.DataFrame:
    """The claims of ``path`` (one row per line, in file order), validated.

    Every cell is a stripped string except ``value`` (float). A missing column, a bad cell
    or a claim stated twice raises one ``ValueError`` naming the file, the line, the column,
    the value and the valid choices, so a typo in a new line is found before any report.
    """
    path = Path(path)
    header, rows = _read_rows(path)
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}; required: {list(REQUIRED_COLUMNS)}")
    first_line: dict[tuple[str, ...], int] = {}
    for line, row in rows:
        _check_row(path, line, row)
        key = tuple(row[c] for c in CLAIM_KEY)
        if key in first_line:
            same = ", ".join(f"{c}={v!r}" for c, v in zip(CLAIM_KEY, key, strict=True))
            raise ValueError(
                f"{path}, line {line}: the claim ({same}) is already on line "
                f"{first_line[key]}; expected each claim once"
            )
        first_line[key] = line
    claims = pd.DataFrame([row for _, row in rows], columns=header, dtype=object)
    claims["value"] = claims["value"].astype(float)
    claims.attrs["path"] = str(path)
    return claims


def protocols_from_runs(runs: pd.DataFrame) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(dataset, arch, method) -> the protocol fields of its first run, from the runs frame
    of :func:`adaptivemix.report.collect.collect_runs` (a dataset's runs share one protocol:
    :func:`~adaptivemix.report.collect.check_fingerprints`)."""
    fields = ("backbone", "resize", "n_gen", "n_real", "reference_split")
    protocols = {}
    for key, rows in runs.groupby(["dataset", "arch", "method"], sort=False):
        first = rows.iloc[0]
        protocols[key] = {f: first[f] for f in fields if f in rows.columns}
    return protocols


def _shown(value: object) -> str:
    """A protocol value as text: integers without '.0', missing as 'unrecorded'."""
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return "unrecorded"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def protocol_differences(claim: Mapping[str, Any], protocol: Mapping[str, Any]) -> list[str]:
    """'<field> ours <x>, claim <y>' for every protocol field where a run and a claim differ.

    ``n_real`` 'full' means the whole training split: it matches a run whose reference split
    is ``train`` (a run's ``n_real`` is always its whole reference split).
    """
    split = _shown(protocol.get("reference_split"))
    backbone = _shown(protocol.get("backbone"))
    n_real = _shown(protocol.get("n_real"))
    if claim["n_real"] == FULL:  # compare "the whole training split" with ours
        n_real = FULL if split == "train" else f"{n_real} ({split} split)"
    ours = {
        "fid_mode": BACKBONE_MODES.get(backbone, backbone),
        "n_gen": _shown(protocol.get("n_gen")),
        "n_real": n_real,
        "reference_split": split,
    }
    return [
        f"{field} ours {value}, claim {claim[field]}"
        for field, value in ours.items()
        if value != claim[field]
    ]


def _not_run_reason(claim: Mapping[str, Any], summary_row: Any, protocol: Any) -> str | None:
    """Why ``claim`` has no reproduced number, or None when it has one."""
    if claim["not_runnable"]:
        return claim["not_runnable"]
    if not claim["run_dataset"]:
        return "no run keys: run_dataset, run_arch and run_method are empty"
    name = f"{claim['run_dataset']}/{claim['run_arch']}/{claim['run_method']}"
    if summary_row is None:
        return f"no runs of {name} in this profile"
    if protocol is None:
        return f"no protocol recorded for the runs of {name}"
    differences = protocol_differences(claim, protocol)
    if differences:
        return "protocol differs: " + "; ".join(differences)
    mean = summary_row.get(f"{claim['metric'].lower()}_mean")
    if mean is None or pd.isna(mean) or not math.isfinite(float(mean)):
        return f"metric {claim['metric'].lower()} not measured"
    return None


def _reproduced_row(claim: Mapping[str, Any], row: Mapping[str, Any]) -> dict[str, Any]:
    """A claim beside the statistics of its runs (deviation = ours − reported)."""
    metric = claim["metric"].lower()
    mean, std, low, high = (row[f"{metric}_{f}"] for f in ("mean", "std", "ci_low", "ci_high"))
    reported = float(claim["value"])
    deviation = mean - reported
    within = None if pd.isna(low) or pd.isna(high) else bool(low <= reported <= high)
    return {
        "paper": claim["paper"],
        "table": claim["table"],
        "dataset": claim["run_dataset"],
        "arch": claim["run_arch"],
        "method": claim["run_method"],
        "metric": claim["metric"],
        "protocol": claim["protocol"],
        "reported": reported,
        "ours_mean": mean,
        "ours_std": std,
        "ours_ci_low": low,
        "ours_ci_high": high,
        "n_seeds": int(row["n_seeds"]),
        "deviation": deviation,
        "deviation_pct": 100.0 * deviation / reported if reported else math.nan,
        "within_ci": within,
    }


def match_claims(
    claims: pd.DataFrame,
    summary: pd.DataFrame,
    protocols: Mapping[tuple[str, str, str], Mapping[str, Any]],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``claims`` into (reproduced, not_run), both in registry order.

    ``summary`` is :func:`adaptivemix.report.tables.summary_table`'s frame (one row per
    task, dataset, arch, method); ``protocols`` maps (dataset, arch, method) to the
    protocol recorded in those runs' ``metrics.json`` (see :func:`protocols_from_runs`).
    ``reproduced`` has :data:`REPRODUCED_COLUMNS`, ``not_run`` :data:`NOT_RUN_COLUMNS`
    with a reason per claim. The confidence level of ``summary`` travels in ``attrs``.
    """
    rows = {}
    if len(summary):
        rows = {tuple(r[c] for c in GROUP_COLS): r for r in summary.to_dict("records")}
    reproduced, not_run = [], []
    for claim in claims.to_dict("records"):
        keys = tuple(claim[k] for k in RUN_KEYS)
        row = rows.get((RUN_TASK[claim["task"]], *keys))
        reason = _not_run_reason(claim, row, protocols.get(keys))
        if reason is None:
            reproduced.append(_reproduced_row(claim, row))
            continue
        names = ("paper", "table", "dataset", "architecture", "method", "metric")
        not_run.append({**{c: claim[c] for c in names}, "reported": claim["value"]})
        not_run[-1]["reason"] = reason
    confidence = summary.attrs.get("confidence")
    out = (
        pd.DataFrame(reproduced, columns=list(REPRODUCED_COLUMNS)),
        pd.DataFrame(not_run, columns=list(NOT_RUN_COLUMNS)),
    )
    for frame in out:
        frame.attrs["confidence"] = confidence
    return out


def _digits(metric: str) -> int:
    return precision_of(str(metric).lower())


def _ours_cell(r: Mapping[str, Any], digits: int) -> str:
    text = format_mean_std(r["ours_mean"], r["ours_std"], digits)
    if pd.isna(r["ours_ci_low"]) or pd.isna(r["ours_ci_high"]):
        return text
    return f"{text} [{r['ours_ci_low']:.{digits}f}, {r['ours_ci_high']:.{digits}f}]"


def _within_cell(value: object) -> str:
    return "n/a (no CI)" if value is None or pd.isna(value) else ("yes" if value else "no")


def reproduced_shown(reproduced: pd.DataFrame) -> pd.DataFrame:
    """Formatted cells of the reproduced table: metric-specific decimals, signed deviations."""
    confidence = reproduced.attrs.get("confidence")
    ci = f"{confidence:.0%} CI" if confidence is not None else "CI"
    cells = []
    for r in reproduced.to_dict("records"):
        d = _digits(r["metric"])
        cells.append(
            {
                **{c: str(r[c]) for c in REPRODUCED_COLUMNS[:7]},
                "reported": f"{r['reported']:.{d}f}",
                f"ours (mean ± std [{ci}])": _ours_cell(r, d),
                "n_seeds": str(r["n_seeds"]),
                "ours − reported": f"{r['deviation']:+.{d}f} ({r['deviation_pct']:+.1f}%)",
                "reported within CI": _within_cell(r["within_ci"]),
            }
        )
    columns = [*REPRODUCED_COLUMNS[:8], f"ours (mean ± std [{ci}])", "n_seeds"]
    return pd.DataFrame(cells, columns=[*columns, "ours − reported", "reported within CI"])


def not_run_shown(not_run: pd.DataFrame) -> pd.DataFrame:
    """Formatted cells of the not-run table (reported value with the metric's decimals)."""
    shown = not_run.astype(str)
    shown["reported"] = [
        f"{v:.{_digits(m)}f}" for v, m in zip(not_run["reported"], not_run["metric"], strict=True)
    ]
    return shown


def write_claims_tables(
    reproduced: pd.DataFrame, not_run: pd.DataFrame, tables_dir: Path | str
) -> list[Path]:
    """Write ``claims_reproduced`` and ``claims_not_run`` (.csv, .md, .tex) into ``tables_dir``.

    Both are always written, also when empty (the CSV then holds the header only), so the
    report shows that the registry was read; an empty table's Markdown says so in words.
    Returns the six paths, reproduced first.
    """
    tables_dir = Path(tables_dir)
    empty_reproduced = (
        f"{NO_REPRODUCED}: every claim is listed with its reason in claims_not_run.\n"
    )
    empty_not_run = "Every claim in the registry was reproduced by this profile.\n"
    paths = write_frame(
        reproduced,
        reproduced_shown(reproduced),
        tables_dir / "claims_reproduced",
        caption="Reported numbers against this harness's runs of the same protocol",
        markdown=empty_reproduced if reproduced.empty else None,
    )
    paths += write_frame(
        not_run,
        not_run_shown(not_run),
        tables_dir / "claims_not_run",
        caption="Reported numbers this profile does not reproduce, with the reason",
        markdown=empty_not_run if not_run.empty else None,
    )
    return paths
