"""Architecture registry and the builder the trainer calls."""

from __future__ import annotations

import torch
from torch import nn

from adaptivemix.registry import Registry

#: name -> builder(resolution, channels, z_dim, g_width, d_width) -> (G, D)
ARCHS: Registry = Registry("architecture")


def build_models(
    arch: str, resolution: int, channels: int, z_dim: int, g_width: int, d_width: int, seed: int
) -> tuple[nn.Module, nn.Module]:
    """Build (G, D) with weights initialised from ``seed`` alone (global RNG untouched)."""
    builder = ARCHS.get(arch, "gan.arch")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return builder(
            resolution=resolution, channels=channels, z_dim=z_dim, g_width=g_width, d_width=d_width
        )


def build_models_on_meta(arch: str, resolution: int, gan: dict, channels: int = 3):
    """(G, D) on the meta device: their structure, no memory, for checks before any job."""
    builder = ARCHS.get(arch, "gan.arch")
    with torch.device("meta"):
        return builder(
            resolution=resolution,
            channels=channels,
            z_dim=gan["z_dim"],
            g_width=gan["g_width"],
            d_width=gan["d_width"],
        )
