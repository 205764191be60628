"""Building one OOD set for one in-distribution set (the ``prepare-ood-set`` job).

Apart from :mod:`adaptivemix.ood.run` so that the job imports the set readers only, not the
detectors' metrics (scikit-learn, about 1.2 s of start-up per job).
"""

from __future__ import annotations

from pathlib import Path

from adaptivemix.data import load_prepared
from adaptivemix.io import save_torch
from adaptivemix.ood.sets import OOD_SETS


def prepare_ood_set(name: str, id_dataset_file: Path, source: dict, out: Path) -> Path:
    """Build OOD set ``name`` at the ID set's resolution and channels; save it atomically."""
    ident = load_prepared(id_dataset_file)
    images = OOD_SETS.get(name, "ood.sets")(ident.resolution, ident.channels, ident.name, **source)
    spec = OOD_SETS.get(name)
    return save_torch(out, {"name": name, "images": images.contiguous(), "group": spec.group})
