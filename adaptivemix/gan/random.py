"""Draws that torch cannot take from an explicit ``torch.Generator`` directly."""

from __future__ import annotations

import numpy as np
import torch


def sample_beta(alpha: float, generator: torch.Generator) -> float:
    """One λ ~ Beta(α, α), drawn from ``generator``.

    ``torch.distributions.Beta`` has no ``generator`` argument, so a NumPy generator is
    seeded from one draw of the run's generator: the stream stays a function of the seed.
    """
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    return float(np.random.default_rng(seed).beta(alpha, alpha))
