"""Where each FID curve stands at the end of training: still falling, flat, or turned.

A run stopped while its curve still falls says nothing about which method ends better, so the
tables say it. Per (dataset, arch, method), on the mean over seeds of the in-training
evaluations (same protocol at every step):

- ``last``: the mean at the final evaluation; ``change``: last minus the one before, relative
  to it; ``best`` and ``best_step``: the lowest mean and where it was.
- ``trend``: ``turned`` when the best came before the final evaluation and the final value
  is above it by more than ``tolerance`` (relative): the curve went back up, as a D that
  overfits makes it; ``falling`` when the final change is below ``-tolerance``; ``flat``
  otherwise.
- ``seeds_rising``: the seeds whose own final change is positive, of those with two
  evaluations: how consistent the end of the curve is.
"""

from __future__ import annotations

import pandas as pd

from adaptivemix.report.tables import precision_of, rank_order

#: A relative change of the final evaluation within this is "flat".
TOLERANCE = 0.05
TREND_COLUMNS = (
    "dataset", "arch", "method", "metric", "n_evals", "last_steps", "last_values", "last",
    "change", "best", "best_step", "trend", "seeds_rising", "n_seeds", "tolerance",
)  # fmt: skip


def trend_of(steps: list[int], values: list[float], tolerance: float = TOLERANCE) -> dict:
    """The trend record of one mean curve (``steps`` ascending, lower is better)."""
    last = values[-1]
    change = (last - values[-2]) / abs(values[-2]) if len(values) > 1 and values[-2] else 0.0
    best_at = min(range(len(values)), key=values.__getitem__)
    best = values[best_at]
    if best_at < len(values) - 1 and best and (last - best) / abs(best) > tolerance:
        trend = "turned"
    elif change < -tolerance:
        trend = "falling"
    else:
        trend = "flat"
    return {"last": last, "change": change, "best": best, "best_step": steps[best_at],
            "trend": trend}  # fmt: skip


def _seeds_rising(rows: pd.DataFrame) -> tuple[int, int]:
    rising = counted = 0
    for _, seed_rows in rows.groupby("seed"):
        values = seed_rows.sort_values("step")["value"].tolist()
        if len(values) > 1:
            counted += 1
            rising += values[-1] > values[-2]
    return rising, counted


def curve_trends(
    curves: pd.DataFrame, metric: str = "fid", last: int = 3, tolerance: float = TOLERANCE,
    method_order=(),
) -> pd.DataFrame:  # fmt: skip
    """One :data:`TREND_COLUMNS` row per (dataset, arch, method) with ``metric`` curves."""
    data = curves[(curves["metric"] == metric) & curves["value"].notna()]
    records = []
    for (dataset, arch, method), rows in data.groupby(["dataset", "arch", "method"], sort=False):
        mean = rows.groupby("step")["value"].mean().sort_index()
        steps, values = [int(s) for s in mean.index], mean.tolist()
        rising, counted = _seeds_rising(rows)
        records.append(
            {"dataset": dataset, "arch": arch, "method": method, "metric": metric,
             "n_evals": len(steps), "last_steps": steps[-last:], "last_values": values[-last:],
             **trend_of(steps, values, tolerance), "seeds_rising": rising, "n_seeds": counted,
             "tolerance": tolerance}
        )  # fmt: skip
    table = pd.DataFrame(records, columns=list(TREND_COLUMNS))
    rank = rank_order(table["method"], method_order or ())
    return table.sort_values(
        ["dataset", "arch", "method"], key=lambda c: c.map(rank) if c.name == "method" else c,
        kind="stable",
    ).reset_index(drop=True)  # fmt: skip


def trend_layout(trends: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    """(data, shown, markdown) of :func:`curve_trends`'s frame for the table writers."""
    digits = precision_of(trends["metric"].iloc[0]) if len(trends) else 2
    shown = pd.DataFrame(
        {
            "dataset": trends["dataset"],
            "method": trends["method"],
            "last evaluations (step: mean)": [
                ", ".join(f"{s}: {v:.{digits}f}" for s, v in zip(st, va, strict=True))
                for st, va in zip(trends["last_steps"], trends["last_values"], strict=True)
            ],
            "final change": [f"{c:+.1%}".replace("-", "−") for c in trends["change"]],
            "best (step)": [
                f"{b:.{digits}f} ({s})"
                for b, s in zip(trends["best"], trends["best_step"], strict=True)
            ],
            "trend": trends["trend"],
            "seeds rising at the end": [
                f"{r}/{n}" for r, n in zip(trends["seeds_rising"], trends["n_seeds"], strict=True)
            ],
        }
    )
    if trends["arch"].nunique() > 1:
        shown.insert(1, "arch", trends["arch"])
    tolerance = trends["tolerance"].iloc[0] if len(trends) else TOLERANCE
    legend = (
        "In-training evaluations of the EMA generator, mean over seeds (the final metrics "
        "use more samples). final change: last evaluation vs the one before. trend: "
        f"turned = the best came earlier and the last is more than {tolerance:.0%} above it; "
        f"falling = the final change is below −{tolerance:.0%}; flat otherwise."
    )
    data = trends.assign(
        last_steps=[" ".join(map(str, s)) for s in trends["last_steps"]],
        last_values=[" ".join(f"{v:.6g}" for v in s) for s in trends["last_values"]],
    )
    markdown = legend + "\n\n" + shown.to_markdown(index=False, disable_numparse=True) + "\n"
    return data, shown, markdown
