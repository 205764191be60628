"""Gather finished runs into tidy tables.

Every run folder holds ``metrics.json`` (final numbers, protocol, status) and ``log.jsonl``
(the training log with periodic evaluations). Reporting works on two pandas frames built
here: one row per run, and one row per (run, step, metric) evaluation for the curves.
The protocol fingerprint travels with every run so that numbers measured under different
evaluation protocols (other backbone, sample counts, reference split...) are never averaged
or compared silently.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
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
# Every protocol entry, flattened (see flatten_protocol), as one dict per row: what a
# fingerprint mismatch is explained with, nested entries such as libraries.torch included.
PROTOCOL_FIELDS = "protocol_fields"
STATUSES = ("ok", "diverged")
CURVE_COLUMNS = ("task", "dataset", "arch", "method", "seed", "step", "metric", "value")
_NULLABLE_INTS = ("diverged_at_step", "steps", "n_gen", "n_real", "n_modes")


def _as_float(value: Any) -> float:
    """JSON null (a diverged run's metric) becomes NaN so columns stay numeric."""
    return math.nan if value is None else float(value)


def _run_row(path: Path) -> dict[str, Any]:
    """One run's row; rejects files whose status the report does not know how to count.

    Every metric of a run that did not finish is NaN, whatever its record holds (a diverged
    classifier records the ``val_acc`` of no selection as -1): such a run is counted in
    ``n_diverged``, never read for a number.
    """
    record = read_json(path)
    row: dict[str, Any] = {key: record.get(key) for key in RUN_COLUMNS}
    if row["status"] not in STATUSES:
        raise ValueError(f"{path}: status {row['status']!r}; expected one of {STATUSES}")
    protocol = record.get("protocol") or {}
    row.update({key: protocol.get(key) for key in PROTOCOL_COLUMNS})
    row[PROTOCOL_FIELDS] = flatten_protocol(protocol)
    metrics = record.get("metrics") or {}
    clash = sorted(set(metrics) & set(row))
    if clash:
        raise ValueError(f"{path}: metric names {clash} collide with run columns")
    finished = row["status"] == "ok"
    row.update(
        {name: _as_float(value) if finished else math.nan for name, value in metrics.items()}
    )
    row["run_dir"] = str(path.parent)
    return row


def collect_runs(metrics_paths: Sequence[Path | str]) -> pd.DataFrame:
    """One row per run, in the order given (first appearance drives method order later).

    ``protocol_fields`` holds each run's whole protocol, flattened (:func:`flatten_protocol`).
    Metric columns are the union of the ``metrics`` keys over all runs (NaN where a run
    lacks one): ``modes`` and ``kl_modes`` exist only where a classifier backbone measured.
    The same run key (task, dataset, arch, method, seed) given twice is an error: it would
    silently count one seed twice.
    """
    rows = [_run_row(Path(p)) for p in metrics_paths]
    base = [*RUN_COLUMNS, *PROTOCOL_COLUMNS, PROTOCOL_FIELDS, "run_dir"]
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


def flatten_protocol(protocol: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Nested entries as dotted keys, so a difference can name them.

    ``{"n_gen": 5, "libraries": {"torch": "2.1"}}`` -> ``{"n_gen": 5, "libraries.torch":
    "2.1"}``. Lists become their JSON text, so every value compares with ``==`` to a bool.
    """
    flat: dict[str, Any] = {}
    for key, value in protocol.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_protocol(value, prefix=f"{name}."))
        elif isinstance(value, list | tuple):
            flat[name] = json.dumps(value)
        else:
            flat[name] = value
    return flat


_ABSENT = "<absent>"


def differing_fields(protocols: Sequence[Mapping[str, Any]]) -> list[str]:
    """Flattened keys whose value is not the same in every protocol (absent counts as a value),
    in order of first appearance."""
    keys = list(dict.fromkeys(k for p in protocols for k in p))
    return [k for k in keys if len({_canonical(p.get(k, _ABSENT)) for p in protocols}) > 1]


def _canonical(value: Any) -> str:
    """Comparable text of a protocol value (NaN equals NaN; 1 and 1.0 stay distinct)."""
    return f"{type(value).__name__}:{json.dumps(value, sort_keys=True, default=str)}"


def protocol_mismatch(where: str, rows: pd.DataFrame, run_columns: Sequence[str]) -> str:
    """Explain why ``rows`` (one report column, described by ``where``, e.g. "runs in
    dataset='digits'") cannot be pooled: how many protocols, the flattened fields that differ
    with their values (``libraries.torch: '2.4.1' vs '2.5.0'``) and, per fingerprint, those
    fields' values and its runs.

    ``rows`` needs ``protocol_fingerprint`` and ``protocol_fields`` (flattened protocols);
    ``run_columns`` name a run in the message (e.g. method, seed). The one message of every
    report's protocol check.
    """
    groups = list(rows.groupby("protocol_fingerprint", dropna=False, sort=False))
    protocols = [_fields_of(sub) for _, sub in groups]
    differing = differing_fields(protocols)
    lines = [f"{where} were evaluated under {len(groups)} different protocols;"]
    if differing:
        lines.append(f"differing protocol fields: {', '.join(differing)}")
        for key in differing:
            lines.append(f"  {key}: {' vs '.join(repr(p.get(key, _ABSENT)) for p in protocols)}")
    else:
        lines.append("no protocol field differs (fingerprints computed from other protocols?)")
    for (fp, sub), proto in zip(groups, protocols, strict=True):
        values = ", ".join(f"{k}={proto.get(k, _ABSENT)!r}" for k in differing)
        names = sub[list(run_columns)].itertuples(index=False)
        runs = ", ".join(
            " ".join(f"{c}={v}" for c, v in zip(run_columns, r, strict=True)) for r in names
        )
        lines.append(f"  fingerprint {fp}: {values} <- {runs}")
    return "\n".join(lines)


def _fields_of(rows: pd.DataFrame) -> Mapping[str, Any]:
    """The flattened protocol of a fingerprint's first row ({} if it has none)."""
    fields = rows[PROTOCOL_FIELDS].iloc[0] if PROTOCOL_FIELDS in rows.columns else None
    return fields if isinstance(fields, Mapping) else {}


def check_fingerprints(df: pd.DataFrame, group_cols: Sequence[str] = ("task", "dataset")) -> None:
    """Refuse to report a group whose runs used different evaluation protocols.

    FID/KID from different feature extractors or sample counts are not comparable, so a
    table mixing them would be wrong while looking right. Raises ``ValueError`` naming the
    group, the protocol fields that differ (nested ones dotted: ``libraries.torch``) with
    their values, and which runs have which (:func:`protocol_mismatch`).
    """
    cols = list(group_cols)
    for group, rows in df.groupby(cols, dropna=False, sort=False):
        if rows["protocol_fingerprint"].nunique(dropna=False) > 1:
            where = "runs in " + ", ".join(f"{c}={v!r}" for c, v in zip(cols, group, strict=True))
            raise ValueError(protocol_mismatch(where, rows, ("method", "seed")))
