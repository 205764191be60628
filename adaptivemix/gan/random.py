"""Draws that torch cannot take from an explicit ``torch.Generator`` directly."""

from __future__ import annotations

import numpy as np
import torch


def numpy_rng(generator: torch.Generator) -> np.random.Generator:
    """A NumPy generator seeded from one draw of ``generator``, for draws torch cannot seed.

    ``torch.distributions.Beta`` has no ``generator`` argument; drawing through this keeps
    the stream a function of the run's seed.
    """
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    return np.random.default_rng(seed)


def sample_beta(alpha: float, generator: torch.Generator) -> float:
    """One λ ~ Beta(α, α), drawn from ``generator``."""
    return float(numpy_rng(generator).beta(alpha, alpha))


def sample_betas(alpha: float, n: int, generator: torch.Generator) -> torch.Tensor:
    """n draws of λ ~ Beta(α, α) (float32, on the CPU), a function of ``generator`` alone."""
    return torch.from_numpy(numpy_rng(generator).beta(alpha, alpha, size=n)).float()
