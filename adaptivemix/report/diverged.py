"""Runs that diverged: how the reports show them (a row that says so, never a crash).

What a diverged run leaves (the trainers stop at the first non-finite loss): ``metrics.json``
with ``status: diverged`` and null metrics (the classifier's ``val_acc`` may hold the last
finished epoch's), ``ood.json`` with the same status, null metrics and no ROC; a GAN run
also its ``samples.png`` and ``d_features.npz`` of the final networks, whose features are
NaN when the weights blew up, and its log up to the step it diverged at.

The rules every report follows: tables count diverged runs in ``n_diverged`` and never
average them; a group (method, dataset...) with no finished seed and a diverged one shows
:data:`DIVERGED` where its numbers would be; figures draw finished runs only and name what
they leave out (:func:`skipped_note`); paired tables give a pair without a finished seed on
both sides a cell saying which side diverged (:func:`unpaired_cell`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import pandas as pd

DIVERGED = "diverged"
OK = "ok"


def all_diverged(row: Mapping) -> bool:
    """A summary row (``n_seeds``, ``n_diverged``) with no finished seed but a diverged one;
    a row without ``n_diverged`` counts none."""
    n_seeds, n_diverged = row.get("n_seeds", 0), row.get("n_diverged", 0)
    if pd.isna(n_seeds) or pd.isna(n_diverged):
        return False
    return int(n_seeds) == 0 and int(n_diverged) > 0


def all_diverged_mask(table: pd.DataFrame) -> pd.Series:
    """:func:`all_diverged` of every row of a summary table, as a boolean Series."""
    return pd.Series([all_diverged(r) for _, r in table.iterrows()], index=table.index, dtype=bool)


def diverged_groups(runs: pd.DataFrame, columns: Sequence[str]) -> list[str]:
    """Labels ("a/b" of ``columns``) of the groups of runs none of which finished and at
    least one of which diverged, in order of appearance."""
    labels = []
    for key, rows in runs.groupby(list(columns), sort=False):
        statuses = set(rows["status"])
        if OK not in statuses and DIVERGED in statuses:
            values = key if isinstance(key, tuple) else (key,)
            labels.append("/".join(str(v) for v in values))
    return labels


def skipped_note(
    labels: Iterable[str], what: str = "not drawn", why: str = f"{DIVERGED} on every seed"
) -> str:
    """'diverged on every seed, not drawn: a, b', or '' when nothing was left out."""
    names = list(dict.fromkeys(labels))
    return f"{why}, {what}: {', '.join(names)}" if names else ""


def unpaired_cell(method_finished: bool, baseline_finished: bool) -> str:
    """The paired-table cell of a comparison without a seed both finished, saying why."""
    if not method_finished and not baseline_finished:
        return "no pair: both diverged"
    if not method_finished:
        return "no pair: method diverged"
    if not baseline_finished:
        return "no pair: baseline diverged"
    return "no pair: no seed measured on both sides"
