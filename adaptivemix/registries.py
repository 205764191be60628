"""One import that loads every registry of the core (not the baselines package)."""

from adaptivemix.classify import ATTACKS, CLS_ARCHS, CLS_METHODS
from adaptivemix.data import DATASETS
from adaptivemix.gan import METHODS
from adaptivemix.gan.losses import ADV_LOSSES
from adaptivemix.gan.methods import build_method
from adaptivemix.metrics.backbones import BACKBONES
from adaptivemix.models import ARCHS
from adaptivemix.ood.detectors import DETECTORS
from adaptivemix.ood.sets import OOD_SETS

__all__ = [
    "ADV_LOSSES", "ARCHS", "ATTACKS", "BACKBONES", "CLS_ARCHS", "CLS_METHODS", "DATASETS",
    "DETECTORS", "METHODS", "OOD_SETS", "build_method",
]  # fmt: skip
