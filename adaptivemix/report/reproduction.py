"""Reproduced vs reported: the claims registry matched against this profile's runs.

    adaptivemix claims --metrics R1/metrics.json ... [--ood-tables T/ood_cifar10.csv ...]
        --claims config/claims.csv --out-dir D

Each task's runs are summarised as its own tables summarise them (GAN metrics as measured,
accuracies in %, as the paper prints them), OOD claims are matched against the aggregated
OOD tables (metrics in %), then every claim is matched with
:func:`adaptivemix.report.claims.match_claims`.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from adaptivemix.report.claims import (
    load_claims,
    load_ood_tables,
    match_claims,
    protocols_from_runs,
    write_claims_tables,
)
from adaptivemix.report.classify import accuracy_metrics, as_percent
from adaptivemix.report.collect import collect_runs
from adaptivemix.report.tables import summary_table


def _task_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """One task's summary: accuracies (``*_acc``) in %, other metrics as recorded."""
    accuracies = accuracy_metrics(runs)
    if accuracies:
        return summary_table(as_percent(runs, accuracies), metrics=accuracies)
    return summary_table(runs)


def reproduction_tables(
    metrics_paths: Sequence[Path | str],
    claims_path: Path | str,
    tables_dir: Path | str,
    ood_tables: Sequence[Path | str] = (),
) -> list[Path]:
    """Write ``claims_reproduced`` and ``claims_not_run`` (.csv/.md/.tex) for these runs and
    the aggregated OOD tables ``ood_tables`` (``ood_<dataset>.csv``)."""
    claims = load_claims(claims_path)
    runs = collect_runs(metrics_paths)
    parts = [_task_summary(rows) for _, rows in runs.groupby("task", sort=False)]
    summary = pd.concat(parts, ignore_index=True) if parts else summary_table(runs)
    summary.attrs["confidence"] = 0.95
    ood = load_ood_tables(ood_tables)
    reproduced, not_run = match_claims(claims, summary, protocols_from_runs(runs), ood)
    return write_claims_tables(reproduced, not_run, tables_dir)
