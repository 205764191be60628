"""Perceptual distances between image batches, as a registered choice recorded with results.

GLeaD (Bai et al., CVPR 2023) measures its reconstructions with LPIPS-AlexNet. Choices:

- ``lpips``: LPIPS (Zhang et al. 2018), AlexNet trunk, v0.1 calibration, computed by the
  ``lpips`` package (:mod:`adaptivemix.metrics.lpips_alexnet`). Its AlexNet weights are a
  local file configured as ``perceptual.lpips.weights`` / ``.sha256``, never downloaded;
- ``pixel``: mean squared pixel error (no network, no file).

The run's FID feature network is refused as a perceptual network (``backbone``, or the name
of any FID backbone): a loss measured by the network that later scores the generator leaks
the metric into training, and FID would then reward fitting that network's features.

An entry is a :class:`PerceptualDistance` subclass: ``build(env, key)`` makes it for a run
(weights from ``RunEnv.perceptual_files``), ``check_config(files, resolution, key)`` refuses
at config validation what it cannot measure, and ``describe()`` goes into the results. A
method names the distances it uses with ``GanMethod.perceptual_distances()``; the config check
(:func:`check_method_distances`), the workflow (each run's weights files as inputs) and the
start-up check (:func:`missing_perceptual_files`) read them from there.
"""

from __future__ import annotations

import torch

from adaptivemix.errors import ConfigError
from adaptivemix.metrics import lpips_alexnet
from adaptivemix.registry import Registry

#: Refused names that are not FID backbone names themselves.
FID_NETWORK_NAMES = ("backbone",)
LEAK = (
    "not the FID feature network: a method trains through its perceptual distance, so the "
    "metric network would leak into training"
)


class PerceptualRegistry(Registry):
    """A registry that refuses FID feature networks by name and says why.

    ``name in PERCEPTUAL_DISTANCES`` holds for a refused name too, so an option check written
    ``if name not in PERCEPTUAL_DISTANCES`` lets it through to :meth:`get` (and to the config
    check), which raises the reason instead of a bare list of choices.
    """

    def refused(self, name: object) -> bool:
        from adaptivemix.metrics.backbones import BACKBONES

        if not isinstance(name, str) or name in self._entries:
            return False
        return name in FID_NETWORK_NAMES or name in BACKBONES

    def get(self, name: str, key: str | None = None):
        if self.refused(name):
            raise ConfigError(key or self.kind, name, f"one of {self.names()}; {LEAK}")
        return super().get(name, key)

    def __contains__(self, name: object) -> bool:
        return super().__contains__(name) or self.refused(name)


PERCEPTUAL_DISTANCES: PerceptualRegistry = PerceptualRegistry("perceptual distance")


class PerceptualDistance:
    """``distance(a, b)`` -> per-sample distances (B,), differentiable in both arguments."""

    name = "base"
    needs_weights = False  # reads a local weights file (config ``perceptual.<name>``)

    @classmethod
    def build(cls, env, key: str) -> PerceptualDistance:
        return cls()

    @classmethod
    def check_config(cls, files: dict, resolution: int, key: str) -> None:
        """Refuse, at config validation, a run this distance cannot measure (``files``: the
        config's ``perceptual.<name>``; ``key``: the option naming the distance)."""

    @classmethod
    def check_files(cls, files: dict) -> None:
        """Raise :class:`ConfigError` if a local file it reads is missing or not the expected
        one (the start-up check, before any job)."""

    @classmethod
    def install(cls, files: dict, out: str) -> None:
        """Copy its verified weights file to ``out`` (the workflow's copy)."""
        raise NotImplementedError(f"perceptual distance '{cls.name}' reads no weights file")

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def describe(self) -> dict:
        return {"name": self.name}


@PERCEPTUAL_DISTANCES.register("pixel")
class PixelDistance(PerceptualDistance):
    name = "pixel"

    def __call__(self, a, b):
        return (a - b).square().flatten(1).mean(1)


@PERCEPTUAL_DISTANCES.register("lpips")
class LpipsDistance(PerceptualDistance):
    """LPIPS-AlexNet v0.1 of images in [-1, 1]; 1-channel images are repeated to RGB."""

    name = "lpips"
    needs_weights = True

    def __init__(self, model: torch.nn.Module, trunk_sha256: str):
        self.model, self.trunk_sha256 = model, trunk_sha256

    @classmethod
    def build(cls, env, key: str) -> LpipsDistance:
        files = env.perceptual_files.get(cls.name) or {}
        if not files.get("weights"):
            raise ConfigError(
                lpips_alexnet.WEIGHTS_KEY, None, f"a local copy of torchvision's "
                f"{lpips_alexnet.TRUNK_FILE} for {key} = 'lpips': this run was given none "
                "(train-gan --perceptual-files)",
            )  # fmt: skip
        model, found = lpips_alexnet.build_lpips(files["weights"], files.get("sha256"), env.device)
        return cls(model, found)

    @classmethod
    def check_config(cls, files: dict, resolution: int, key: str) -> None:
        if resolution < lpips_alexnet.MIN_SIDE:
            expected = (
                f"'pixel' at this resolution ({resolution}): LPIPS's AlexNet needs images of "
                f"side ≥ {lpips_alexnet.MIN_SIDE}"
            )
            raise ConfigError(key, cls.name, expected)
        if not files.get("weights"):
            expected = (
                f"the path of a local copy of torchvision's {lpips_alexnet.TRUNK_FILE} "
                f"(LPIPS's AlexNet trunk), which {key} = 'lpips' reads; nothing is downloaded"
            )
            raise ConfigError(lpips_alexnet.WEIGHTS_KEY, None, expected)

    @classmethod
    def check_files(cls, files: dict) -> None:
        lpips_alexnet.verify_trunk(files.get("weights"), files.get("sha256"))

    @classmethod
    def install(cls, files: dict, out: str) -> None:
        lpips_alexnet.install_trunk(files.get("weights"), files.get("sha256"), out)

    def __call__(self, a, b):
        a, b = self._rgb(a), self._rgb(b)
        if self.model.training:  # stays in eval mode: no dropout in the calibration layers
            self.model.eval()
        return self.model(a, b, normalize=False).flatten()

    @staticmethod
    def _rgb(x: torch.Tensor) -> torch.Tensor:
        if x.shape[1] == 1:
            return x.expand(-1, 3, -1, -1)
        if x.shape[1] != 3:
            raise ValueError(f"LPIPS measures 1- or 3-channel images; got {x.shape[1]} channels")
        return x

    def describe(self) -> dict:
        return {
            "name": self.name,
            "net": lpips_alexnet.NET,
            "version": lpips_alexnet.VERSION,
            "trunk_sha256": self.trunk_sha256,
            "calibration_sha256": lpips_alexnet.calibration_sha256(),
            "lpips_package": lpips_alexnet.lpips_version(),
        }


def check_perceptual_name(name: str, key: str) -> None:
    """Raise :class:`ConfigError` unless ``name`` is a usable perceptual distance."""
    PERCEPTUAL_DISTANCES.get(name, key)


def build_perceptual(name: str, env, key: str) -> PerceptualDistance:
    """The distance ``name`` for a run (``env``: its RunEnv); ``key`` is named in errors."""
    return PERCEPTUAL_DISTANCES.get(name, key).build(env, key)


def check_method_distances(method, options_key: str, files: dict, resolution: int) -> None:
    """Config validation of the distances a method uses (``options_key``: its options' key;
    ``files``: the config's ``perceptual`` section)."""
    for option, name in method.perceptual_distances().items():
        key = f"{options_key}.{option}"
        PERCEPTUAL_DISTANCES.get(name, key).check_config(files.get(name, {}), resolution, key)


def weights_needed(method) -> list[str]:
    """Names of the distances ``method`` uses that read a local weights file."""
    names = method.perceptual_distances().values()
    return [n for n in dict.fromkeys(names) if PERCEPTUAL_DISTANCES.get(n).needs_weights]


def missing_perceptual_files(names, files: dict) -> list[str]:
    """Start-up check: one line per distance in ``names`` whose local file is missing or not
    the expected one (``files``: the config's ``perceptual`` section)."""
    lines = []
    for name in dict.fromkeys(names):
        try:
            PERCEPTUAL_DISTANCES.get(name).check_files(files.get(name, {}))
        except ConfigError as err:
            lines.append(str(err))
    return lines


def install_weights(name: str, files: dict, out: str) -> None:
    """The workflow's verified copy of distance ``name``'s weights file."""
    PERCEPTUAL_DISTANCES.get(name, "perceptual").install(files, out)


def weights_of_variant(variant: str, method_options: dict) -> list[str]:
    """Names of the distances a GAN variant's method uses that read a local weights file."""
    from adaptivemix.gan.variants import build_variant

    method, _ = build_variant(variant, method_options)
    return weights_needed(method)
