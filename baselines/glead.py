"""GLeaD: the generator leads a reconstruction task for the discriminator.

Bai, Yang, Shen, et al., "GLeaD: Improving GANs with A Generator-Leading Task", CVPR 2023,
arXiv 2212.03752. Reference code: github.com/EzioBy/glead (on stylegan2-ada-pytorch); this is
an independent implementation.

Followed from the paper (Table 1) and its official code:
- D gets a decoder: from D's last feature map, 2× upsampling and 1×1 convolutions with skips
  from D's own feature maps, up to resolution ``res_g``, then 1×1 heads predicting what G's
  synthesis needs from that resolution on; G's later stages (frozen in the D step) decode the
  prediction into an image;
- the reconstruction loss is taken in the D step only (G's loss stays the plain adversarial
  one): on reals, a perceptual distance between the reconstruction and the image D saw,
  weight 10; on fakes either the same with weight 3 ("Ours", ``fake_target: image``) or a
  cosine distance between the predicted and G's true feature map at ``res_g``, weight 10
  ("Ours*", ``fake_target: feature``).
- ``res_g`` is 64 for FFHQ-256 upstream (a quarter of the side), our default when 0.

Our interpretation and differences:
- Upstream predicts three things: G's feature map at ``res_g``, a low-resolution image (the
  StyleGAN2 skip branch) and w. The decoder builds one head per input G's
  ``synthesize_from(h, res)`` consumes; the DCGAN generator of the embedded profiles has no
  skip image and no w, so only the feature-map head exists there. Every prediction goes
  through G's real synthesis layers, as upstream.
- LPIPS needs pretrained AlexNet weights this offline setting cannot fetch: the perceptual
  distance is a registered choice (``perceptual``: ``backbone`` = unit-normalised features of
  the run's frozen FID backbone, default; ``pixel`` = MSE), recorded with every result.
- G's batch-norm running statistics are left untouched by the reconstruction passes (they
  run with batch statistics, as G's own training passes do); StyleGAN2 has no batch norm.
Knobs: ``res_g``, ``real_weight``, ``fake_target`` (image | feature | none), ``fake_weight``,
``perceptual``, ``decoder_width``.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from adaptivemix.errors import ConfigError
from adaptivemix.gan.methods import (
    METHODS,
    Discrimination,
    GanMethod,
    IncompatibleError,
    RunEnv,
    StepContext,
)  # fmt: skip
from adaptivemix.metrics.perceptual import PERCEPTUAL_DISTANCES, build_perceptual

KEY = "gan.method_options.glead"
FAKE_TARGETS = ("image", "feature", "none")


@dataclass(frozen=True)
class GLeaDOptions:
    res_g: int = 0  # where G takes over; 0: a quarter of the image side (upstream FFHQ-256: 64)
    real_weight: float = 10.0  # weight of the reconstruction loss on reals (upstream 10)
    fake_target: str = "image"  # image ("Ours", weight 3) | feature ("Ours*", weight 10) | none
    fake_weight: float = 3.0  # weight of the fake-image term
    perceptual: str = "backbone"  # registered perceptual distance (backbone | pixel)
    decoder_width: int = 0  # channels of the decoder's layers; 0: those of D's skip at each res

    def __post_init__(self):
        if self.res_g < 0:
            raise ConfigError(f"{KEY}.res_g", self.res_g, "0 (auto) or a resolution of G")
        for name in ("real_weight", "fake_weight"):
            if getattr(self, name) < 0:
                raise ConfigError(f"{KEY}.{name}", getattr(self, name), "a number ≥ 0")
        if self.fake_target not in FAKE_TARGETS:
            raise ConfigError(f"{KEY}.fake_target", self.fake_target, f"one of {FAKE_TARGETS}")
        if self.perceptual not in PERCEPTUAL_DISTANCES:
            expected = f"one of {PERCEPTUAL_DISTANCES.names()}"
            raise ConfigError(f"{KEY}.perceptual", self.perceptual, expected)
        if self.decoder_width < 0:
            raise ConfigError(f"{KEY}.decoder_width", self.decoder_width, "an integer ≥ 0")


class ReconstructionDecoder(nn.Module):
    """D's feature maps -> a prediction of G's feature map at ``res_g``.

    Starting from the coarsest map, each step upsamples 2× (nearest), concatenates D's own
    map at the new resolution (the skip) and mixes channels with a 1×1 convolution.
    """

    def __init__(self, d_channels: dict[int, int], res_g: int, g_channels: int, width: int = 0):
        super().__init__()
        resolutions = sorted(d_channels)
        self.start = resolutions[0]
        self.steps = [r for r in resolutions if self.start < r <= res_g]
        self.mix = nn.ModuleDict()
        c = d_channels[self.start]
        for r in self.steps:
            out = width or d_channels[r]
            self.mix[str(r)] = nn.Conv2d(c + d_channels[r], out, 1)
            c = out
        self.to_g_features = nn.Conv2d(c, g_channels, 1)

    def forward(self, maps: dict[int, torch.Tensor]) -> torch.Tensor:
        h = maps[self.start]
        for r in self.steps:
            h = F.interpolate(h, scale_factor=2.0, mode="nearest")
            h = F.leaky_relu(self.mix[str(r)](torch.cat([h, maps[r]], dim=1)), 0.2)
        return self.to_g_features(h)


@contextlib.contextmanager
def frozen_generator(G: nn.Module):
    """G as a fixed decoder: no parameter gradients, batch-norm running statistics untouched."""
    norms = [m for m in G.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    momenta = [m.momentum for m in norms]
    counts = [m.num_batches_tracked.clone() for m in norms if m.num_batches_tracked is not None]
    flags = [p.requires_grad for p in G.parameters()]
    try:
        for m in norms:
            m.momentum = 0.0  # running = (1 − 0)·running + 0·batch: unchanged
        G.requires_grad_(False)
        yield G
    finally:
        for m, momentum in zip(norms, momenta, strict=True):
            m.momentum = momentum
        tracked = [m for m in norms if m.num_batches_tracked is not None]
        for m, count in zip(tracked, counts, strict=True):
            m.num_batches_tracked.copy_(count)
        for p, flag in zip(G.parameters(), flags, strict=True):
            p.requires_grad_(flag)


@METHODS.register("glead")
class GLeaD(GanMethod):
    Options = GLeaDOptions

    def check_compatible(self, G: nn.Module, D: nn.Module) -> None:
        super().check_compatible(G, D)
        for name in ("synthesize_from", "feature_maps", "stage_channels", "stage_resolutions"):
            if not hasattr(G, name):
                raise IncompatibleError(f"GLeaD decodes through G's later stages: G has no {name}")
        for name in ("feature_maps", "stage_channels"):
            if not hasattr(D, name):
                raise IncompatibleError(f"GLeaD's decoder takes skips from D: D has no {name}")
        res_g, inner = self.res_g(G), G.stage_resolutions[:-1]
        if res_g not in inner or res_g < min(D.stage_channels):
            raise IncompatibleError(f"res_g={res_g} must be a stage of G before its last: {inner}")

    def res_g(self, G: nn.Module) -> int:
        return self.options.res_g or G.stage_resolutions[-1] // 4

    def prepare(self, G: nn.Module, D: nn.Module, env: RunEnv) -> tuple[nn.Module, nn.Module]:
        self.check_compatible(G, D)
        self._res_g = self.res_g(G)
        g_channels = G.stage_channels[self._res_g]
        D.glead_decoder = ReconstructionDecoder(  # a submodule: D's optimizer trains it
            D.stage_channels, self._res_g, g_channels, self.options.decoder_width
        ).to(next(D.parameters()).device)
        self._G = G
        self.distance = build_perceptual(self.options.perceptual, env, f"{KEY}.perceptual")
        return G, D

    def reconstruct(self, D: nn.Module, maps: dict[int, torch.Tensor]) -> torch.Tensor:
        """D's prediction decoded into an image by G's frozen later stages."""
        with frozen_generator(self._G) as G:
            return G.synthesize_from(D.glead_decoder(maps), self._res_g)

    def discriminate(
        self, D: nn.Module, x: torch.Tensor, phase: str, ctx: StepContext
    ) -> Discrimination:
        if phase == "g":
            return super().discriminate(D, x, phase, ctx)
        maps = D.feature_maps(x)
        logits = D.head(maps[min(maps)])
        if phase == "d_real":
            term = self.distance(self.reconstruct(D, maps), x.detach()).mean()
            logs = {"glead_real": float(term.detach())}
            return Discrimination(logits, self.options.real_weight * term, logs)
        term, weight = self._fake_term(D, maps, x, ctx)
        return Discrimination(logits, weight * term, {"glead_fake": float(term.detach())})

    def _fake_term(self, D, maps, x, ctx) -> tuple[torch.Tensor, float]:
        opt = self.options
        if opt.fake_target == "image":
            return self.distance(self.reconstruct(D, maps), x.detach()).mean(), opt.fake_weight
        if opt.fake_target == "feature":
            if ctx.z is None:
                raise ValueError("GLeaD's feature target needs the step's latents (ctx.z)")
            with frozen_generator(self._G) as G, torch.no_grad():
                target = G.feature_maps(ctx.z)[self._res_g]
            predicted = D.glead_decoder(maps)
            cos = F.cosine_similarity(predicted.flatten(1), target.flatten(1), dim=1)
            return (1.0 - cos).mean(), opt.fake_weight
        return torch.zeros((), device=x.device), 0.0

    def describe(self) -> dict:
        details = super().describe()
        distance = getattr(self, "distance", None)
        if distance is not None:  # known once prepared for a run
            details["perceptual_distance"] = distance.describe()
            details["resolved_res_g"] = self._res_g
        return details
