"""GLeaD: the generator leads a reconstruction task for the discriminator.

Bai, Yang, Xu, Liu, Yang, Shen, "GLeaD: Improving GANs with A Generator-Leading Task",
CVPR 2023, arXiv 2212.03752. Official code: github.com/EzioBy/glead (on
stylegan2-ada-pytorch). This is an independent implementation of its semantics.

Followed, by official file and function:
- ``training/networks_glead.py``, ``Discriminator.__init__``/``forward`` (the decoder): from
  D's coarsest (4×4) map, one layer per resolution 8, 16, ..., ``res_d`` (upstream
  ``decoder_res``, 64 in every official script); each layer is upstream's ``Conv2dLayer(in,
  out, kernel_size=1, activation='linear', up=2)`` (equalized learning rate, 1×1 convolution,
  2× upsampling with the [1, 3, 3, 1] FIR filter, bias, no activation), its input D's map at
  half its resolution, after the first layer concatenated behind the previous layer's output;
  its width is D's channel count at its resolution. Three 1×1 heads on the last map (upstream
  ``decoder_out_channel == 512``, which ``train.py`` sets for ``reg_target_real=gfwimage``):
  ``feat_proj1`` (G's features at ``res_g``), ``img_proj`` (G's skip image) and
  ``feat_proj2`` (w, globally average-pooled).
- ``training/networks_glead.py``, ``SynthesisNetwork.forward(feat2img=True, inter_image=...)``:
  G's blocks above ``res_g`` decode the predicted features and image, every style the predicted
  w (``loss_glead.py``: ``decoder_ws_out.repeat(1, w_amount, 1)``), with random noise.
- ``training/loss_glead.py``, ``StyleGAN2GLeaDLoss.accumulate_gradients`` and
  ``get_glead_reg_single_res`` / ``cosine_distance``:
  * the predictions are resized bilinearly (``align_corners=False``) from ``res_d`` to
    ``res_g`` when they differ (LSUN: 64 -> 32);
  * reals (``reg_target_real='gfwimage'``): perceptual distance (LPIPS-AlexNet, batch mean)
    between G's reconstruction and the un-augmented real image, weight 10. Upstream computes it
    whenever D sees reals: in ``Dmain`` (gain 1) and, with lazy R1, again in ``Dreg`` (gain
    k = the R1 interval), so on R1 steps it counts 1 + k times (once in ``Dboth``, k = 1);
  * fakes, ``fake_target: image`` (``gfwimage``, "Ours"): the same distance to the
    un-augmented fake, weight 3; ``feature`` (``gfeat``, "Ours*", GLeaD with GGDR): cosine
    distance over channels, per pixel (1 − mean of ``F.cosine_similarity(dim=1)``), between
    the feature head and G's feature map at ``res_g`` from the very forward that made the
    fake (``run_G(get_feat=True)``: style mixing and random noise included), weight 10;
  * G is not trained by these terms (upstream: G does not require grad in D phases); G's loss
    is the plain adversarial one (``Gmain``).
- ``train_scripts_{ffhq,church,bedroom}.py``: ``res_d`` 64; ``res_g`` 64 (FFHQ) or 32 (LSUN);
  reals LPIPS ×10; fakes LPIPS ×3 or cosine ×10; no augmentation.

Our interpretation and differences:
- Lazy R1 is fused into the k-th D step (:mod:`adaptivemix.gan.regularizers`), so upstream's
  ``Dreg`` real term is added to that step with weight k: one D forward and one noise draw
  where upstream has two (after ``Dmain``'s update).
- Targets are the un-augmented images, as upstream. Upstream augments G's feature maps along
  with the fakes for ``gfeat``; we do not (the official runs use no augmentation).
- Head widths: upstream ``img_proj`` has 3 outputs, ``feat_proj2`` 512 (w_dim of paper256) and
  ``feat_proj1`` D's channel count at ``res_g`` (G's at paper256); ours take G's image
  channels, w_dim and feature channels.
- A G without styles or skip image (the DCGAN of the embedded profiles) gets only the feature
  head; its later stages decode the prediction (batch-norm running statistics left unchanged).
- The perceptual distance is a registered choice, recorded with every result: ``lpips``
  (upstream, default) or ``pixel`` (MSE, the embedded digits profile).
Knobs: ``res_g``, ``res_d``, ``real_weight``, ``fake_target``, ``fake_weight``, ``perceptual``.
"""

from __future__ import annotations

import contextlib
import inspect
import math
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
from adaptivemix.models.stylegan2_layers import bias_act, make_filter, upsample2d

KEY = "gan.method_options.glead"
#: upstream's fake-image targets and their weights in the official scripts
FAKE_WEIGHTS = {"image": 3.0, "feature": 10.0, "none": 0.0}


@dataclass(frozen=True)
class GLeaDOptions:
    res_g: int = 0  # G decodes above it (upstream glead_res_g: FFHQ 64, LSUN 32); 0: side/4
    res_d: int = 0  # decoder output (upstream glead_res_d 64); 0: side/4, at least 2× D's 4×4
    real_weight: float = 10.0  # reg_weight_real
    fake_target: str = "image"  # image (gfwimage, "Ours") | feature (gfeat, "Ours*") | none
    fake_weight: float | None = None  # None: upstream's for the target (image 3, feature 10)
    perceptual: str = "lpips"  # registered distance of the image terms (upstream LPIPS-Alex)

    def __post_init__(self):
        for name in ("res_g", "res_d"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 0:
                raise ConfigError(f"{KEY}.{name}", value, "0 (auto) or a resolution")
        if self.real_weight < 0:
            raise ConfigError(f"{KEY}.real_weight", self.real_weight, "a number ≥ 0")
        weight = self.fake_weight
        if weight is not None and (isinstance(weight, bool) or not weight >= 0):
            raise ConfigError(f"{KEY}.fake_weight", weight, "null (upstream's) or a number ≥ 0")
        if self.fake_target not in FAKE_WEIGHTS:
            raise ConfigError(f"{KEY}.fake_target", self.fake_target, f"one of {[*FAKE_WEIGHTS]}")
        PERCEPTUAL_DISTANCES.get(self.perceptual, f"{KEY}.perceptual")  # unknown or refused


class DecoderConv(nn.Module):
    """Upstream ``Conv2dLayer(in_c, out_c, kernel_size=1, activation='linear', up=2 or 1)``:
    weight N(0, 1) used as weight/sqrt(in_c), the 1×1 convolution before the FIR 2×
    upsampling (upstream's fast path), then the bias."""

    def __init__(self, in_c: int, out_c: int, up: bool = False):
        super().__init__()
        self.up = up
        self.weight = nn.Parameter(torch.randn(out_c, in_c, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_c))
        self.weight_gain = 1.0 / math.sqrt(in_c)
        self.register_buffer("filter", make_filter(), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.conv2d(x, (self.weight * self.weight_gain).to(x.dtype))
        if self.up:
            x = upsample2d(x, self.filter)
        return bias_act(x, self.bias.to(x.dtype))


@dataclass
class Prediction:
    """The decoder's output at ``res_d``: G's features, skip image and w (N, w_dim)."""

    features: torch.Tensor
    image: torch.Tensor | None
    w: torch.Tensor | None


class GLeaDDecoder(nn.Module):
    """D's maps -> :class:`Prediction` (upstream ``Discriminator``'s decoder part)."""

    def __init__(self, d_channels: dict[int, int], res_d: int, feat_c: int, img_c: int, w_dim):
        super().__init__()
        start = min(d_channels)
        self.resolutions = [start * 2**i for i in range(1, int(math.log2(res_d // start)) + 1)]
        self.layers = nn.ModuleDict()
        c = 0
        for r in self.resolutions:
            self.layers[str(r)] = DecoderConv(c + d_channels[r // 2], d_channels[r], up=True)
            c = d_channels[r]
        self.feat_proj = DecoderConv(c, feat_c)
        self.img_proj = DecoderConv(c, img_c) if img_c else None
        self.w_proj = DecoderConv(c, w_dim) if w_dim else None

    def forward(self, maps: dict[int, torch.Tensor]) -> Prediction:
        y = None
        for r in self.resolutions:
            skip = maps[r // 2]
            y = self.layers[str(r)](skip if y is None else torch.cat([y, skip], dim=1))
        image = self.img_proj(y) if self.img_proj is not None else None
        w = self.w_proj(y).mean(dim=(2, 3)) if self.w_proj is not None else None
        return Prediction(self.feat_proj(y), image, w)


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


def resized(x: torch.Tensor | None, res: int) -> torch.Tensor | None:
    """Upstream's ``F.interpolate(bilinear, align_corners=False)`` to ``res`` when needed."""
    if x is None or x.shape[-1] == res:
        return x
    return F.interpolate(x, size=(res, res), mode="bilinear", align_corners=False)


def is_styled(G: nn.Module) -> bool:
    return hasattr(G, "w_dim") and hasattr(G, "num_ws")


@METHODS.register("glead")
class GLeaD(GanMethod):
    Options = GLeaDOptions

    @property
    def records_g_maps(self) -> bool:  # the feature target is G's map of the fake's forward
        return self.options.fake_target == "feature"

    @property
    def fake_weight(self) -> float:
        weight = self.options.fake_weight
        return FAKE_WEIGHTS[self.options.fake_target] if weight is None else float(weight)

    def check_compatible(self, G: nn.Module, D: nn.Module) -> None:
        super().check_compatible(G, D)
        for name in ("synthesize_from", "feature_maps", "stage_channels", "stage_resolutions"):
            if not hasattr(G, name):
                raise IncompatibleError(f"GLeaD decodes through G's later stages: G has no {name}")
        for name in ("feature_maps", "stage_channels"):
            if not hasattr(D, name):
                raise IncompatibleError(f"GLeaD's decoder takes skips from D: D has no {name}")
        if self.records_g_maps and "maps" not in inspect.signature(G.forward).parameters:
            raise IncompatibleError("GLeaD's feature target needs G(z, generator, maps=...)")
        res_g, inner = self.res_g(G), G.stage_resolutions[:-1]
        if res_g not in inner:
            raise IncompatibleError(f"res_g={res_g} must be a stage of G before its last: {inner}")
        res_d, start = self.res_d(D), min(D.stage_channels)
        needed = [start * 2**i for i in range(int(math.log2(max(res_d, start) // start)) + 1)]
        if res_d <= start or res_d not in D.stage_channels or set(needed) - set(D.stage_channels):
            valid = sorted(r for r in D.stage_channels if r > start)
            raise IncompatibleError(f"res_d={res_d} must be one of D's map resolutions {valid}")

    def res_g(self, G: nn.Module) -> int:
        return self.options.res_g or G.stage_resolutions[-1] // 4

    def res_d(self, D: nn.Module) -> int:
        return self.options.res_d or max(max(D.stage_channels) // 4, 2 * min(D.stage_channels))

    def prepare(self, G: nn.Module, D: nn.Module, env: RunEnv) -> tuple[nn.Module, nn.Module]:
        self.check_compatible(G, D)
        self._res_g, self._res_d = self.res_g(G), self.res_d(D)
        img_c = getattr(G, "stage_image_channels", 0)
        self._feat_c = G.stage_channels[self._res_g] - img_c
        w_dim = G.w_dim if is_styled(G) else 0
        D.glead_decoder = GLeaDDecoder(  # a submodule: D's optimizer trains it
            D.stage_channels, self._res_d, self._feat_c, img_c, w_dim
        ).to(next(D.parameters()).device)
        self._G = G
        self.distance = build_perceptual(self.options.perceptual, env, f"{KEY}.perceptual")
        return G, D

    def reconstruct(self, pred: Prediction, generator: torch.Generator) -> torch.Tensor:
        """G's blocks above ``res_g`` (frozen) decode the prediction into an image."""
        image = resized(pred.image, self._res_g)
        h = resized(pred.features, self._res_g)
        h = h if image is None else torch.cat([h, image], dim=1)
        with frozen_generator(self._G) as G:
            if pred.w is None:
                return G.synthesize_from(h, self._res_g)
            ws = pred.w.unsqueeze(1).repeat(1, G.num_ws, 1)
            return G.synthesize_from(h, self._res_g, ws=ws, generator=generator)

    def discriminate(
        self, D: nn.Module, x: torch.Tensor, phase: str, ctx: StepContext
    ) -> Discrimination:
        if phase not in ("d_real", "d_fake"):
            return super().discriminate(D, x, phase, ctx)
        maps = D.feature_maps(x)
        logits = D.head(maps[min(maps)])
        pred = D.glead_decoder(maps)
        if phase == "d_real":
            term = self.distance(self.reconstruct(pred, ctx.generator), ctx.real.detach()).mean()
            weight = self.options.real_weight * real_passes(ctx)
            return Discrimination(logits, weight * term, {"glead_real": float(term.detach())})
        term = self._fake_term(pred, ctx)
        return Discrimination(logits, self.fake_weight * term, {"glead_fake": float(term.detach())})

    def _fake_term(self, pred: Prediction, ctx: StepContext) -> torch.Tensor:
        target = self.options.fake_target
        if target == "image":
            return self.distance(self.reconstruct(pred, ctx.generator), ctx.fake.detach()).mean()
        if target == "feature":
            if ctx.g_maps is None:
                raise ValueError("GLeaD's feature target needs G's maps of the step (ctx.g_maps)")
            source = resized(pred.features, self._res_g)
            truth = ctx.g_maps[self._res_g].detach()[:, : self._feat_c].to(source.dtype)
            return (1.0 - F.cosine_similarity(source, truth, dim=1)).mean()
        return torch.zeros((), device=pred.features.device)

    def describe(self) -> dict:
        details = super().describe()
        details["resolved_fake_weight"] = self.fake_weight
        distance = getattr(self, "distance", None)
        if distance is not None:  # known once prepared for a run
            details["perceptual_distance"] = distance.describe()
            details["resolved_res_g"], details["resolved_res_d"] = self._res_g, self._res_d
        return details


def real_passes(ctx: StepContext) -> int:
    """How often upstream counts the real term in this (fused) D step: ``Dmain`` once, plus
    ``Dreg``'s gain k on lazy R1 steps (k > 1; a non-lazy ``Dboth`` computes it once)."""
    lazy_r1_step = ctx.r1_gamma > 0 and ctx.r1_interval > 1
    return 1 + ctx.r1_interval if lazy_r1_step else 1
