"""Reporting: collect finished runs, summarize over seeds, write tables and figures.

Entry point for the workflow: :func:`aggregate_gan`. The pieces are public so that
notebooks and other tasks can reuse them.
"""

from adaptivemix.report.aggregate import aggregate_gan
from adaptivemix.report.collect import check_fingerprints, collect_curves, collect_runs
from adaptivemix.report.figures import plot_metric_curves, sample_grid_figure
from adaptivemix.report.stats import mean_std_ci
from adaptivemix.report.tables import format_markdown, summary_table, write_table

__all__ = [
    "aggregate_gan",
    "check_fingerprints",
    "collect_curves",
    "collect_runs",
    "format_markdown",
    "mean_std_ci",
    "plot_metric_curves",
    "sample_grid_figure",
    "summary_table",
    "write_table",
]
