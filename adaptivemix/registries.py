"""One import that loads every registry of the core (not the baselines package)."""

from adaptivemix.data import DATASETS
from adaptivemix.gan import METHODS
from adaptivemix.gan.losses import ADV_LOSSES
from adaptivemix.gan.methods import build_method
from adaptivemix.metrics.backbones import BACKBONES
from adaptivemix.models import ARCHS

__all__ = ["ADV_LOSSES", "ARCHS", "BACKBONES", "DATASETS", "METHODS", "build_method"]
