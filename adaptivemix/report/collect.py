"""Gather finished runs into tidy tables.

Every run folder holds ``metrics.json`` (final numbers, protocol, status) and ``log.jsonl``
(the training log with periodic evaluations). Reporting works on two pandas frames built
here: one row per run, and one row per (run, step, metric) evaluation for the curves.
The protocol fingerprint travels with every run so that numbers measured under different
evaluation protocols (other backbone, sample counts, reference split...) are never averaged
or compared silently.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from adaptivemix.io import read_json, read_jsonl

RUN_KEY = ("task", "dataset", "arch", "method", "seed")
RUN_COLUMNS = (
    *RUN_KEY,
    "status",
    "diverged_at_step",
    "steps",
    "train_seconds",
    "protocol_fingerprint",
)
# Human-readable protocol fields: these are what a reader needs to judge comparability.
# n_modes exists only for classifier backbones (mode metrics); elsewhere it is missing.
# label: a ready-made description, given by tasks whose protocol is not a feature backbone's
PROTOCOL_LABELS = ("backbone", "resize", "n_gen", "n_real", "reference_split", "n_modes", "label")
# Content hashes: a fingerprint can differ only in these (same names, other weights or data).
PROTOCOL_HASHES = ("backbone_sha256", "dataset_sha256")
PROTOCOL_COLUMNS = (*PROTOCOL_LABELS, *PROTOCOL_HASHES)
STATUSES = ("ok", "diverged")
CURVE_COLUMNS = ("task", "dataset", "arch", "method", "seed", "step", "metric", "value")
_NULLABLE_INTS = ("diverged_at_step", "steps", "n_gen", "n_real", "n_modes")


def _as_float(value: Any) -> float:
    """JSON null (a diverged run's metric) becomes NaN so columns stay numeric."""
    return math.nan if value is None else float(value)


def _run_row(path: Path) -> dict[str, Any]:
    """One run's row; rejects files whose status the report does not know how to count."""
    record = read_json(path)
    row: dict[str, Any] = {key: record.get(key) for key in RUN_COLUMNS}
    if row["status"] not in STATUSES:
        raise ValueError(f"{path}: status {row['status']!r}; expected one of {STATUSES}")
    protocol = record.get("protocol") or {}
    row.update({key: protocol.get(key) for key in PROTOCOL_COLUMNS})
    metrics = record.get("metrics") or {}
    clash = sorted(set(metrics) & set(row))
    if clash:
        raise ValueError(f"{path}: metric names {clash} collide with run columns")
    row.update({name: _as_float(value) for name, value in metrics.items()})
    row["run_dir"] = str(path.parent)
    return row


def collect_runs(metrics_paths: Sequence[Path | str]) -> pd.DataFrame:
    """One row per run, in the order given (first appearance drives method order later).

    Metric columns are the union of the ``metrics`` keys over all runs (NaN where a run
    lacks one): ``modes`` and ``kl_modes`` exist only where a classifier backbone measured.
    The same run key (task, dataset, arch, method, seed) given twice is an error: it would
    silently count one seed twice.
    """
    rows = [_run_row(Path(p)) for p in metrics_paths]
    base = [*RUN_COLUMNS, *PROTOCOL_COLUMNS, "run_dir"]
    metric_cols = list(dict.fromkeys(k for r in rows for k in r if k not in base))
    df = pd.DataFrame(rows, columns=[*base[:-1], *metric_cols, "run_dir"])
    dup = df.duplicated(list(RUN_KEY), keep=False)
    if dup.any():
        raise ValueError(f"the same run appears more than once: {df.loc[dup, 'run_dir'].tolist()}")
    for col in _NULLABLE_INTS:
        df[col] = pd.to_numeric(df[col]).astype("Int64")
    df["seed"] = pd.to_numeric(df["seed"]).astype("Int64")
    df["train_seconds"] = pd.to_numeric(df["train_seconds"]).astype(float)
    for col in metric_cols:
        df[col] = df[col].astype(float)
    return df


def _eval_rows(log: Iterable[dict], run: dict[str, Any], metrics: Sequence[str]) -> list[dict]:
    """Long rows for the evaluation entries of one log; a resumed run's repeats keep the last."""
    latest: dict[tuple[int, str], float] = {}
    for entry in log:
        for name in metrics:
            value = entry.get(name)
            numeric = isinstance(value, int | float) and not isinstance(value, bool)
            if numeric and math.isfinite(value):
                latest[(int(entry["step"]), name)] = float(value)
    keys = {k: run.get(k) for k in RUN_KEY}
    return [{**keys, "step": s, "metric": m, "value": v} for (s, m), v in sorted(latest.items())]


def collect_curves(metrics_paths: Sequence[Path | str]) -> pd.DataFrame:
    """Evaluation curves in long format from each run's sibling ``log.jsonl``.

    The metrics taken are fid and kid plus whatever keys the run's final ``metrics`` has,
    so a new metric shows up without code changes. Only log rows that carry a finite value
    for a metric contribute (training rows have no fid; a diverged run may log NaN).
    """
    rows: list[dict] = []
    for path in map(Path, metrics_paths):
        run = read_json(path)
        names = list(dict.fromkeys(["fid", "kid", *(run.get("metrics") or {})]))
        rows.extend(_eval_rows(read_jsonl(path.parent / "log.jsonl"), run, names))
    df = pd.DataFrame(rows, columns=list(CURVE_COLUMNS))
    df["seed"] = pd.to_numeric(df["seed"]).astype("Int64")
    df["step"] = pd.to_numeric(df["step"]).astype("Int64")
    df["value"] = df["value"].astype(float)
    return df


def _same(a: Any, b: Any) -> bool:
    """Equality where two missing values count as equal (NaN != NaN otherwise)."""
    if pd.isna(a) and pd.isna(b):
        return True
    return bool(a == b)


def _mismatch_message(group: tuple, group_cols: Sequence[str], rows: pd.DataFrame) -> str:
    """Name the group, the protocol fields that differ and each fingerprint's values/runs."""
    where = ", ".join(f"{c}={v!r}" for c, v in zip(group_cols, group, strict=True))
    fields = [c for c in PROTOCOL_COLUMNS if c in rows.columns]
    firsts = rows.drop_duplicates("protocol_fingerprint")
    differing = [
        c for c in fields if not all(_same(firsts[c].iloc[0], v) for v in firsts[c].iloc[1:])
    ]
    lines = [f"runs in {where} were evaluated under {len(firsts)} different protocols;"]
    if differing:
        lines.append(f"differing protocol fields: {', '.join(differing)}")
    else:
        lines.append("no protocol field column differs (check the other protocol entries)")
    for fp, sub in rows.groupby("protocol_fingerprint", dropna=False, sort=False):
        values = ", ".join(f"{c}={sub[c].iloc[0]!r}" for c in differing)
        runs = ", ".join(f"{m}/seed{s}" for m, s in zip(sub["method"], sub["seed"], strict=True))
        lines.append(f"  fingerprint {fp}: {values} <- {runs}")
    return "\n".join(lines)


def check_fingerprints(df: pd.DataFrame, group_cols: Sequence[str] = ("task", "dataset")) -> None:
    """Refuse to report a group whose runs used different evaluation protocols.

    FID/KID from different feature extractors or sample counts are not comparable, so a
    table mixing them would be wrong while looking right. Raises ``ValueError`` naming the
    group and the protocol fields (with values) that differ.
    """
    cols = list(group_cols)
    for group, rows in df.groupby(cols, dropna=False, sort=False):
        if rows["protocol_fingerprint"].nunique(dropna=False) > 1:
            raise ValueError(_mismatch_message(tuple(group), cols, rows))
