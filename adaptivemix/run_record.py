"""The ``metrics.json`` of a finished run: what every task records beside its numbers."""

from __future__ import annotations

import math
from pathlib import Path

from adaptivemix.io import write_json
from adaptivemix.metrics.fid import protocol_fingerprint
from adaptivemix.provenance import provenance

METRICS_FILE = "metrics.json"


def write_run_record(
    run_dir: Path, head: dict, metrics: dict[str, float], protocol: dict, extra: dict
) -> dict:
    """``head`` (task, dataset, arch, method, seed, status...), metrics (NaN -> null), the
    protocol with its fingerprint, ``extra`` (config, train_seconds...) and provenance."""
    record = head | {
        "metrics": {k: (None if math.isnan(v) else v) for k, v in metrics.items()},
        "protocol": protocol,
        "protocol_fingerprint": protocol_fingerprint(protocol),
        **extra,
        "provenance": provenance(),
    }
    write_json(Path(run_dir) / METRICS_FILE, record)
    return record
