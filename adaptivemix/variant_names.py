"""What a GAN variant's name says, read without torch or pandas (workflow and reports).

A variant is ``method+aug1+aug2`` (:mod:`adaptivemix.gan.variants`), optionally with a sweep
point's options after ``@`` (:mod:`adaptivemix.sweeps`).
"""

from __future__ import annotations

from adaptivemix.registry import VARIANT_SEPARATOR as SEPARATOR
from adaptivemix.sweeps import POINT_SEPARATOR

__all__ = ["baseline_of"]


def baseline_of(variant: str, baseline: str) -> str:
    """The variant ``variant`` is compared with: ``baseline`` with the same augmentations.

    An augmentation is credited to neither side: baseline_of("adaptivemix+ada", "vanilla") is
    "vanilla+ada"; a sweep point's options belong to its method, so
    baseline_of("adaptivemix+ada@alpha=0.2", "vanilla") is "vanilla+ada" too. A variant that is
    its own baseline ("vanilla+ada" for "vanilla") is the reference row.
    """
    _, *augments = variant.split(POINT_SEPARATOR)[0].split(SEPARATOR)
    return SEPARATOR.join([baseline, *augments])
