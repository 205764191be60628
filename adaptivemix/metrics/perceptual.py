"""Perceptual distances between image batches, as a registered choice recorded with results.

GLeaD (Bai et al., CVPR 2023) measures its reconstructions with LPIPS-AlexNet, whose
pretrained weights cannot be fetched on an offline machine. The distance is therefore a
registered choice, and what a run used is written into its results (``describe()``):

- ``backbone``: squared L2 distance between the unit-normalised embeddings of the run's frozen
  FID feature backbone (the digits classifier in the embedded profiles), the closest offline
  analogue of LPIPS's "distance between normalised deep features";
- ``pixel``: mean squared pixel error.

Each entry is a builder ``build(env) -> PerceptualDistance``; a choice that needs something the
run does not have (no backbone) raises a clear error when the method is prepared.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from adaptivemix.registry import Registry

PERCEPTUAL_DISTANCES: Registry = Registry("perceptual distance")


class PerceptualDistance:
    """``distance(a, b)`` -> per-sample distances (B,), differentiable in both arguments."""

    name = "base"

    def __call__(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def describe(self) -> dict:
        return {"name": self.name}


class PixelDistance(PerceptualDistance):
    name = "pixel"

    def __call__(self, a, b):
        return (a - b).square().flatten(1).mean(1)


class BackboneDistance(PerceptualDistance):
    name = "backbone"

    def __init__(self, backbone):
        self.backbone = backbone

    def __call__(self, a, b):
        # the backbone is frozen; a target that needs no gradient (a reconstruction's input)
        # is embedded without building a graph, which halves the backward work
        fa = self.backbone.embed(a)
        with torch.set_grad_enabled(b.requires_grad and torch.is_grad_enabled()):
            fb = self.backbone.embed(b)
        return (F.normalize(fa, dim=1) - F.normalize(fb, dim=1)).square().sum(1)

    def describe(self) -> dict:
        return {
            "name": self.name,
            "backbone": self.backbone.name,
            "backbone_sha256": self.backbone.weights_sha256,
        }


@PERCEPTUAL_DISTANCES.register("pixel")
def build_pixel(env) -> PerceptualDistance:
    return PixelDistance()


@PERCEPTUAL_DISTANCES.register("backbone")
def build_backbone(env) -> PerceptualDistance:
    if env.feature_backbone is None:
        raise ValueError(
            "perceptual distance 'backbone' needs the run's feature backbone, and this run has "
            "none; choose 'pixel' (gan.method_options.glead.perceptual)"
        )
    return BackboneDistance(env.feature_backbone)


def build_perceptual(name: str, env, key: str) -> PerceptualDistance:
    return PERCEPTUAL_DISTANCES.get(name, key)(env)
