"""Step-cost tables from a pytest-benchmark JSON file: each method relative to vanilla.

python -m adaptivemix.report.bench step_cost.json results/benchmarks/step_cost

writes ``step_cost.csv`` and ``step_cost.md`` (the variants timed one after another, group
``gan-step``) and ``step_ratio.json`` beside them (the interleaved ratio, group
``gan-step-ratio``: one process, alternating rounds; ``step_cost.md`` shows it too).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from adaptivemix.io import atomic_write

BASELINE = "vanilla"
RATIO_GROUP = "gan-step-ratio"
#: what ``tests/benchmarks/test_step_ratio.py`` records in ``extra_info``, in table order
RATIO_COLUMNS = [
    "baseline", "method", "rounds", "ratio_median", "ratio_min", "ratio_max",
    "baseline_ms_median", "method_ms_median",
]  # fmt: skip


def step_cost_table(benchmark_json: Path) -> pd.DataFrame:
    """One row per method: mean/median/stddev of a step in ms and the ratio to vanilla."""
    data = json.loads(Path(benchmark_json).read_text())
    rows = [
        {
            "method": bench["params"]["method"],
            "mean_ms": bench["stats"]["mean"] * 1e3,
            "median_ms": bench["stats"]["median"] * 1e3,
            "stddev_ms": bench["stats"]["stddev"] * 1e3,
            "rounds": bench["stats"]["rounds"],
        }
        for bench in data["benchmarks"]
        if bench.get("group") == "gan-step"
    ]
    table = pd.DataFrame(rows).set_index("method")
    base = table.loc[BASELINE]
    table["ratio_mean"] = table["mean_ms"] / base["mean_ms"]
    table["ratio_median"] = table["median_ms"] / base["median_ms"]
    table.attrs["machine"] = data.get("machine_info", {}).get("cpu", {}).get("brand_raw", "")
    return table.reset_index()


def step_ratio_table(benchmark_json: Path) -> pd.DataFrame:
    """One row per interleaved pair: median, min and max over rounds of the per-round ratio
    (method step / baseline step, timed back to back), and each one's median ms per step."""
    data = json.loads(Path(benchmark_json).read_text())
    rows = [
        {key: bench["extra_info"].get(key) for key in RATIO_COLUMNS}
        for bench in data["benchmarks"]
        if bench.get("group") == RATIO_GROUP
    ]
    return pd.DataFrame(rows, columns=RATIO_COLUMNS)


def main(argv: list[str]) -> None:
    table = step_cost_table(Path(argv[0]))
    ratios = step_ratio_table(Path(argv[0]))
    stem = Path(argv[1])
    atomic_write(stem.with_suffix(".csv"), lambda f: f.write(table.to_csv(index=False).encode()))
    records = json.dumps(ratios.to_dict(orient="records"), indent=2) + "\n"
    atomic_write(stem.with_name("step_ratio.json"), lambda f: f.write(records.encode()))
    markdown = table.to_markdown(index=False, floatfmt=".2f") + "\n"
    if len(ratios):
        markdown += (
            "\nInterleaved (one process; each round times one step of each, in alternating "
            "order; ratio = method / baseline per round):\n\n"
            + ratios.to_markdown(index=False, floatfmt=".3f")
            + "\n"
        )
    atomic_write(stem.with_suffix(".md"), lambda f: f.write(markdown.encode()))
    print(markdown)


if __name__ == "__main__":
    main(sys.argv[1:])
