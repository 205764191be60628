"""Step-cost table from a pytest-benchmark JSON file: each method relative to vanilla.

python -m adaptivemix.report.bench step_cost.json results/benchmarks/step_cost
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pandas as pd

from adaptivemix.io import atomic_write

BASELINE = "vanilla"


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


def main(argv: list[str]) -> None:
    table = step_cost_table(Path(argv[0]))
    stem = Path(argv[1])
    atomic_write(stem.with_suffix(".csv"), lambda f: f.write(table.to_csv(index=False).encode()))
    markdown = table.to_markdown(index=False, floatfmt=".2f") + "\n"
    atomic_write(stem.with_suffix(".md"), lambda f: f.write(markdown.encode()))
    print(markdown)


if __name__ == "__main__":
    main(sys.argv[1:])
