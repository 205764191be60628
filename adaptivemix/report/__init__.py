"""Reporting: collect finished runs, summarize over seeds, write tables and figures.

Entry point for the workflow: :func:`aggregate_gan`. The pieces are public so that
notebooks and other tasks can reuse them. They are imported on first use: the config check
reads the claims registry through this package, and must not pay for pandas' plotting
neighbours (matplotlib, SciPy) on every ``snakemake`` call.
"""

import importlib

_HOMES = {
    "aggregate_gan": "aggregate",
    "check_fingerprints": "collect",
    "collect_curves": "collect",
    "collect_runs": "collect",
    "format_markdown": "tables",
    "mean_std_ci": "stats",
    "plot_metric_curves": "figures",
    "sample_grid_figure": "figures",
    "summary_table": "tables",
    "write_table": "tables",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
