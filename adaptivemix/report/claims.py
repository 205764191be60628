"""Claims against runs: how this harness's runs compare with every reported number.

The registry itself (``config/claims.csv``, its columns and checks) is
:mod:`adaptivemix.report.claims_registry`.

A claim is *reproduced* when its run keys are set, it has no ``not_runnable`` reason, the
profile has runs of those keys with a finite value of the metric, and the runs' recorded
protocol matches the claim's (``n_gen``; ``n_real`` and ``reference_split``; ``fid_mode``
against the feature backbone; the dataset of the real statistics, ``metric_data``). An OOD
claim is matched against the aggregated OOD tables (``ood_<dataset>.csv``, one row per
dataset, arch, detector, method and OOD set) on its run keys plus ``run_detector`` and
``run_ood_set``, and its ``ood_benchmark`` must be the benchmark of that row (so its
metrics follow the same rule). Every other claim is listed with the precise reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pandas as pd

from adaptivemix.report.claims_registry import (
    BACKBONE_MODES,
    FULL,
    OOD_METRICS,
    RUN_KEYS,
    RUN_TASK,
    read_claims,
)
from adaptivemix.report.collect import PROTOCOL_FIELDS
from adaptivemix.report.diverged import all_diverged
from adaptivemix.report.tables import GROUP_COLS, format_mean_std, precision_of
from adaptivemix.report.writers import write_frame

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
#: an OOD table row's key, and the claim columns that name it
OOD_TABLE_KEY = ("dataset", "arch", "method", "detector", "ood_set")
OOD_CLAIM_KEY = (*RUN_KEYS, "run_detector", "run_ood_set")
STATS = ("mean", "std", "ci_low", "ci_high")
OOD_PRECISION = 2  # decimals of an OOD metric in %, as the OOD tables print them


def load_claims(path: Path | str) -> pd.DataFrame:
    """The claims of ``path`` as a frame (every cell a stripped string except ``value``, a
    float), validated by :func:`~adaptivemix.report.claims_registry.read_claims`."""
    header, rows = read_claims(path)
    claims = pd.DataFrame(rows, columns=header, dtype=object)
    claims["value"] = claims["value"].astype(float)
    claims.attrs["path"] = str(path)
    return claims


def load_ood_tables(paths) -> pd.DataFrame:
    """The aggregated OOD tables (``ood_<dataset>.csv`` of ``aggregate-classify``, metrics in
    %) in one frame, with ``detection_error_*`` = 100 − ``detection_acc_*`` (ODIN's
    detection error; the CI bounds swap)."""
    frames = [pd.read_csv(p, keep_default_na=False, na_values=[""]) for p in paths]
    table = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    if "detection_acc_mean" in table.columns:
        acc = {f: table[f"detection_acc_{f}"] for f in STATS}
        table = table.assign(
            detection_error_mean=100.0 - acc["mean"],
            detection_error_std=acc["std"],
            detection_error_ci_low=100.0 - acc["ci_high"],
            detection_error_ci_high=100.0 - acc["ci_low"],
        )
    return table


def protocols_from_runs(runs: pd.DataFrame) -> dict[tuple[str, str, str], dict[str, Any]]:
    """(dataset, arch, method) -> the protocol fields of its first run, from the runs frame
    of :func:`adaptivemix.report.collect.collect_runs` (a dataset's runs share one protocol:
    :func:`~adaptivemix.report.collect.check_fingerprints`)."""
    fields = ("backbone", "resize", "n_gen", "n_real", "reference_split")
    protocols = {}
    for key, rows in runs.groupby(["dataset", "arch", "method"], sort=False):
        first = rows.iloc[0]
        protocols[key] = {f: first[f] for f in fields if f in rows.columns}
        recorded = first.get(PROTOCOL_FIELDS)  # the whole protocol, when the frame has it
        if isinstance(recorded, Mapping) and recorded.get("metric_data"):
            protocols[key]["metric_data"] = recorded["metric_data"]
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
    is ``train`` (a run's ``n_real`` is always its whole reference split). ``metric_data``:
    the dataset of the real statistics, the run's own (``run_dataset``) when not recorded
    by the run or not named by the claim.
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
    theirs = {field: claim[field] for field in ours}
    ours["metric_data"] = protocol.get("metric_data") or claim["run_dataset"]
    theirs["metric_data"] = claim.get("metric_data") or claim["run_dataset"]
    return [
        f"{field} ours {value}, claim {theirs[field]}"
        for field, value in ours.items()
        if value != theirs[field]
    ]


def _metric_column(claim: Mapping[str, Any]) -> str:
    """The runs' metric a claim states: its name lower-cased, an OOD claim's via OOD_METRICS."""
    metric = claim["metric"].lower()
    return OOD_METRICS.get(metric, metric) if claim["task"] == "ood" else metric


def _unrunnable(claim: Mapping[str, Any]) -> str | None:
    if claim["not_runnable"]:
        return claim["not_runnable"]
    if not claim["run_dataset"]:
        return "no run keys: run_dataset, run_arch and run_method are empty"
    return None


def _unmeasured(claim: Mapping[str, Any], row: Mapping[str, Any]) -> str | None:
    mean = row.get(f"{_metric_column(claim)}_mean")
    if mean is None or pd.isna(mean) or not math.isfinite(float(mean)):
        if all_diverged(row):
            return f"every run diverged ({int(row['n_diverged'])} seeds), no finished seed"
        return f"metric {_metric_column(claim)} not measured"
    return None


def _ood_not_run_reason(claim: Mapping[str, Any], row: Any) -> str | None:
    """Why an OOD claim has no reproduced number, or None when it has one."""
    reason = _unrunnable(claim)
    if reason is not None:
        return reason
    name = "/".join(claim[k] for k in RUN_KEYS)
    name += f" with detector {claim['run_detector']} on {claim['run_ood_set']}"
    if row is None:
        return f"no OOD results of {name} in this profile"
    benchmark = row.get("benchmark")
    if benchmark != claim["ood_benchmark"]:
        ours = _shown(benchmark)
        return f"protocol differs: benchmark ours {ours}, claim {claim['ood_benchmark']}"
    return _unmeasured(claim, row)


def _not_run_reason(claim: Mapping[str, Any], summary_row: Any, protocol: Any) -> str | None:
    """Why ``claim`` has no reproduced number, or None when it has one."""
    reason = _unrunnable(claim)
    if reason is not None:
        return reason
    name = f"{claim['run_dataset']}/{claim['run_arch']}/{claim['run_method']}"
    if summary_row is None:
        return f"no runs of {name} in this profile"
    if protocol is None:
        return f"no protocol recorded for the runs of {name}"
    differences = protocol_differences(claim, protocol)
    if differences:
        return "protocol differs: " + "; ".join(differences)
    return _unmeasured(claim, summary_row)


def _reproduced_row(claim: Mapping[str, Any], row: Mapping[str, Any]) -> dict[str, Any]:
    """A claim beside the statistics of its runs (deviation = ours − reported); an OOD claim
    shows dataset as 'ID set vs OOD set' and method as 'method + detector'."""
    metric = _metric_column(claim)
    mean, std, low, high = (row[f"{metric}_{f}"] for f in STATS)
    dataset, method = claim["run_dataset"], claim["run_method"]
    if claim["task"] == "ood":
        dataset += f" vs {claim['run_ood_set']}"
        method += f" + {claim['run_detector']}"
    reported = float(claim["value"])
    deviation = mean - reported
    within = None if pd.isna(low) or pd.isna(high) else bool(low <= reported <= high)
    return {
        "paper": claim["paper"],
        "table": claim["table"],
        "dataset": dataset,
        "arch": claim["run_arch"],
        "method": method,
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
    ood: pd.DataFrame | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split ``claims`` into (reproduced, not_run), both in registry order.

    ``summary`` is :func:`adaptivemix.report.tables.summary_table`'s frame (one row per
    task, dataset, arch, method); ``protocols`` maps (dataset, arch, method) to the
    protocol recorded in those runs' ``metrics.json`` (see :func:`protocols_from_runs`).
    ``reproduced`` has :data:`REPRODUCED_COLUMNS`, ``not_run`` :data:`NOT_RUN_COLUMNS`
    with a reason per claim. ``ood`` is :func:`load_ood_tables`'s frame (OOD claims are
    matched there). The confidence level of ``summary`` travels in ``attrs``.
    """
    rows = {}
    if len(summary):
        rows = {tuple(r[c] for c in GROUP_COLS): r for r in summary.to_dict("records")}
    ood_rows = {}
    if ood is not None and len(ood):
        ood_rows = {tuple(r[c] for c in OOD_TABLE_KEY): r for r in ood.to_dict("records")}
    reproduced, not_run = [], []
    for claim in claims.to_dict("records"):
        keys = tuple(claim[k] for k in RUN_KEYS)
        if claim["task"] == "ood":
            row = ood_rows.get(tuple(claim[k] for k in OOD_CLAIM_KEY))
            reason = _ood_not_run_reason(claim, row)
        else:
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
    metric = str(metric).lower()
    return OOD_PRECISION if metric in OOD_METRICS else precision_of(metric)


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
