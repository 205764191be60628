"""Architecture registry and the builder the trainer calls.

A family registers ``build(resolution, channels, z_dim, g_width, d_width, options) -> (G, D)``
with :func:`register_arch`, optionally with an ``Options`` dataclass for its own knobs
(``gan.arch_options`` in the config), checked like every plugin's options.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from adaptivemix.options import NoOptions, parse_options
from adaptivemix.registry import Registry


@dataclass(frozen=True)
class ArchSpec:
    build: Callable[..., tuple[nn.Module, nn.Module]]
    Options: type = NoOptions

    def options(self, values: dict | None, key: str = "gan.arch_options"):
        return parse_options(self.Options, dict(values or {}), key)


#: name -> ArchSpec
ARCHS: Registry = Registry("architecture")


def register_arch(name: str, options: type = NoOptions) -> Callable:
    """Decorator: register ``build`` as architecture family ``name`` with its Options class."""

    def add(build: Callable) -> Callable:
        ARCHS.register(name)(ArchSpec(build, options))
        return build

    return add


def build_models(
    arch: str,
    resolution: int,
    channels: int,
    z_dim: int,
    g_width: int,
    d_width: int,
    seed: int,
    arch_options: dict | None = None,
) -> tuple[nn.Module, nn.Module]:
    """Build (G, D) with weights initialised from ``seed`` alone (global RNG untouched)."""
    spec = ARCHS.get(arch, "gan.arch")
    options = spec.options(arch_options)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return spec.build(
            resolution=resolution, channels=channels, z_dim=z_dim, g_width=g_width,
            d_width=d_width, options=options,
        )  # fmt: skip


def build_models_on_meta(
    arch: str, resolution: int, gan: dict, channels: int = 3, key: str = "gan.arch_options"
):
    """(G, D) on the meta device: their structure, no memory, for checks before any job.

    ``key`` is where ``gan["arch_options"]`` sits in the config, for error messages.
    """
    spec = ARCHS.get(arch, "gan.arch")
    options = spec.options(gan.get("arch_options"), key)
    with torch.device("meta"):
        return spec.build(
            resolution=resolution,
            channels=channels,
            z_dim=gan["z_dim"],
            g_width=gan["g_width"],
            d_width=gan["d_width"],
            options=options,
        )
