"""The classification track: Wide-ResNet classifiers, training methods, attacks.

Importing this package registers the core methods (ERM, AdaptiveMix), the architectures
(``wrn``, ours; ``wrn-official``, the AdaptiveMix code's) and the attacks; the
classification baselines register from ``baselines/``.
"""

from adaptivemix.classify import (
    adaptivemix,  # noqa: F401  (registers "adaptivemix")
    wrn_official,  # noqa: F401  (registers "wrn-official")
)
from adaptivemix.classify.attacks import ATTACKS
from adaptivemix.classify.methods import CLS_METHODS
from adaptivemix.classify.wrn import CLS_ARCHS

__all__ = ["ATTACKS", "CLS_ARCHS", "CLS_METHODS"]
