"""ADA: adaptive discriminator augmentation, the ``bgc`` pipeline with an adaptive ``p``.

Paper: Karras, Aittala, Hellsten, Laine, Lehtinen and Aila, "Training Generative
Adversarial Networks with Limited Data", NeurIPS 2020, arXiv 2006.06676, appendix B.
Official code (read, not copied; its licence forbids that): NVlabs/stylegan2-ada-pytorch,
``training/augment.py`` (``AugmentPipe.__init__``/``forward`` up to the colour transform,
with ``xflip=rotate90=xint=scale=rotate=aniso=xfrac=brightness=contrast=lumaflip=hue=
saturation=1``, the ``bgc`` preset of ``train.py``), ``torch_utils/ops/upfirdn2d.py``
(``upsample2d``/``downsample2d`` conventions), ``grid_sample_gradfix.py`` (plain bilinear
``grid_sample``, zeros outside, ``align_corners=False``), ``training/loss.py`` (the real
logits' signs) and ``training/training_loop.py`` (the ``ada_stats`` adjustment).

Followed, on images in [-1, 1] (B, C, H, W), C = 1 or 3. Each op is switched on per sample
with probability ``multiplier * p``, in upstream's order, each drawing its value and then its
switch from ``generator`` (ops whose multiplier is 0 draw nothing):

1. geometric ops, composed into one inverse homogeneous 2-D matrix (output pixel → input
   pixel, origin at the image centre, y down): x-flip (mirrors with prob. 1/2 when on),
   quarter turns ``k ~ U{0..3}``, integer translation ``round(U(-0.125, 0.125) · side)`` px,
   isotropic scale ``2^N(0, 0.2²)``, rotation ``U(-π, π)`` before and after anisotropic scale
   ``2^N(0, 0.2²)`` (x by s, y by 1/s), each rotation switched with ``1 - sqrt(1 - p)`` so that
   "either" has probability ``p``, fractional translation ``N(0, 0.125²) · side`` px.
   Resampling: reflect padding by the batch's largest reach of the output corners plus the
   filter support, 2× upsampling with the 12-tap ``sym6`` low-pass filter (normalised to sum
   1, gain 4, true convolution), bilinear ``grid_sample`` (zeros outside) on a grid of
   2·(side + 6) px, and 2× downsampling with the same filter (correlation) that crops back.
2. colour ops, composed into one 4×4 matrix acting on (r, g, b, 1): brightness
   ``+N(0, 0.2²)``, contrast ``×2^N(0, 0.5²)``, luma flip (Householder reflection about the
   plane ⟂ v = (1, 1, 1)/√3, with prob. 1/2 when on), hue rotation about v by ``U(-π, π)``,
   saturation ``v vᵀ + (I - v vᵀ) · 2^N(0, 1)``. 1-channel images get what upstream gives
   them: no hue or saturation (no draws), and the mean of the matrix's three colour rows
   (a gain, the row sum, and an offset), so a luma flip is ``-x``.

Every option default is upstream's (``bgc`` multipliers 1; ``AugmentPipe`` ranges; training
loop ``ada_target=0.6``, ``ada_interval=4``, ``ada_kimg=500``, ``augment_p=0``).

Adaptation (:class:`adaptivemix.gan.augment.AdaptiveProbability`): ``r_t`` is the mean sign
of the real logits of every real D pass the loss made (reported through
``StepContext.report_real_logits``; under AdaptiveMix its mixed logits) over ``interval`` D
steps, over all ranks; then ``p ← max(p + sign(r_t - target) · batch · interval /
(ada_kimg · 1000), 0)`` with no upper clamp, as upstream.

Interpretation: with ``p == 0`` the input is returned unchanged without any draw (upstream
still resamples, which is the identity up to rounding); an interval with no real logit
leaves ``p`` as it is (upstream would get NaN); ``interval`` counts D steps, i.e. real
batches (upstream: iterations, one real batch each); R1 shares the D loss's real pass here,
so a lazy-R1 step contributes its real logits once (upstream's separate ``Dreg`` pass
reports them a second time); ``p`` is a Python float (upstream: a float32 buffer).
Matrices are built in float32 (float64 for float64 images).

Implementation (ours, same maps): upsampling and downsampling are dense per-axis operator
matrices applied by matrix products (far faster on CPU than 1-channel convolutions; the
result equals upstream's ``upfirdn2d`` to float rounding). A fact worth knowing: sym6 is
not symmetric, so upstream's x-flip and quarter turns are not bare pixel permutations: along
each mirrored axis the image is also filtered by the even taps of ``2·(f∗f)`` (centre tap
0.965); integer translations are exact. ``draw_params`` + ``augment`` expose the pipeline
for already drawn parameters (used by tests/test_ada_conformance.py).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch
import torch.nn.functional as F

from adaptivemix.errors import ConfigError
from adaptivemix.gan.augment import AUGMENTS, AdaptiveProbability, Augmentation, DStepReport

KEY = "gan.method_options.ada"
# Daubechies' least-asymmetric "sym6" low-pass decomposition filter (the coefficients listed
# by PyWavelets and by stylegan2-ada-pytorch's ``wavelets['sym6']``): published numbers.
SYM6 = (
    0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
    0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
    -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148,
)  # fmt: skip
GEOMETRIC = ("xflip", "rotate90", "xint", "scale", "rotate", "aniso", "xfrac")
COLOUR = ("brightness", "contrast", "lumaflip", "hue", "saturation")


@dataclass(frozen=True)
class AdaOptions:
    target: float = 0.6  # r_t above it means D overfits: raise p
    interval: int = 4  # D steps (real batches) between adjustments of p
    ada_kimg: float = 500.0  # thousands of real images for p to move by 1
    initial_p: float = 0.0
    xflip: float = 1.0  # per-op probability multipliers (upstream's bgc: all 1)
    rotate90: float = 1.0
    xint: float = 1.0
    scale: float = 1.0
    rotate: float = 1.0
    aniso: float = 1.0
    xfrac: float = 1.0
    brightness: float = 1.0
    contrast: float = 1.0
    lumaflip: float = 1.0
    hue: float = 1.0
    saturation: float = 1.0
    xint_max: float = 0.125  # integer translation range, fraction of the side
    scale_std: float = 0.2  # log2 std of isotropic scaling
    rotate_max: float = 1.0  # rotation range, 1 = full circle
    aniso_std: float = 0.2  # log2 std of anisotropic scaling
    xfrac_std: float = 0.125  # std of fractional translation, fraction of the side
    brightness_std: float = 0.2
    contrast_std: float = 0.5  # log2 std
    hue_max: float = 1.0  # hue rotation range, 1 = full circle
    saturation_std: float = 1.0  # log2 std

    def __post_init__(self) -> None:
        _require("target", self.target, 0 <= self.target <= 1, "a number in [0, 1]")
        _require("interval", self.interval, self.interval >= 1, "an integer >= 1")
        _require("ada_kimg", self.ada_kimg, self.ada_kimg > 0, "a finite number > 0")
        _require("initial_p", self.initial_p, 0 <= self.initial_p <= 1, "a number in [0, 1]")
        for f in fields(self)[4:]:
            value = getattr(self, f.name)
            _require(f.name, value, value >= 0, "a finite number >= 0")


def _require(name: str, value: float, ok: bool, expected: str) -> None:
    if not (ok and math.isfinite(value)):
        raise ConfigError(f"{KEY}.{name}", value, expected)


@dataclass
class AdaDraws:
    """One call's per-sample parameters on ``generator.device``; identity where an op is off."""

    xflip: torch.Tensor  # (B,) 1: mirror x
    rotate90: torch.Tensor  # (B,) quarter turns k
    xint: torch.Tensor  # (B, 2) translation (x, y), fraction of the side (rounded to pixels)
    scale: torch.Tensor  # (B,) isotropic factor
    rotate_pre: torch.Tensor  # (B,) radians, before anisotropic scaling
    aniso: torch.Tensor  # (B,) x scaled by it, y by its inverse
    rotate_post: torch.Tensor  # (B,) radians, after anisotropic scaling
    xfrac: torch.Tensor  # (B, 2) translation (x, y), fraction of the side
    brightness: torch.Tensor  # (B,) offset
    contrast: torch.Tensor  # (B,) factor
    lumaflip: torch.Tensor  # (B,) 1: reflect about the luma plane
    hue: torch.Tensor  # (B,) radians about the luma axis
    saturation: torch.Tensor  # (B,) factor off the luma axis


class _Draws:
    """Upstream's order within an op: the value, then the switch ``U(0, 1) < prob``."""

    def __init__(self, n: int, generator: torch.Generator):
        self.n, self.gen = n, generator

    def uniform(self, *shape: int) -> torch.Tensor:
        return torch.rand(self.n, *shape, generator=self.gen, device=self.gen.device)

    def normal(self, *shape: int) -> torch.Tensor:
        return torch.randn(self.n, *shape, generator=self.gen, device=self.gen.device)

    def signed(self, *shape: int) -> torch.Tensor:
        return self.uniform(*shape) * 2 - 1

    def log2normal(self, std: float) -> torch.Tensor:
        return torch.exp2(self.normal() * std)

    def switched(
        self, value, prob: float, identity: float, mult: float, pair: bool = False
    ) -> torch.Tensor:
        """``value()`` where switched on, ``identity`` elsewhere (shape (B,), or (B, 2) for a
        ``pair``, one switch per sample); nothing is drawn when the multiplier is 0."""
        shape = (self.n, 2) if pair else (self.n,)
        off = torch.full(shape, float(identity), device=self.gen.device)
        if mult <= 0:
            return off
        value = value()
        on = self.uniform(*([1] * (value.ndim - 1))) < prob
        return torch.where(on, value, off)


def draw_params(
    n: int, channels: int, p: float, opt: AdaOptions, generator: torch.Generator
) -> AdaDraws:
    """Every per-sample parameter of one call, drawn from ``generator`` in upstream's order."""
    d = _Draws(n, generator)
    on = {name: getattr(opt, name) * p for name in GEOMETRIC + COLOUR}
    # each rotation on with 1 - sqrt(1 - p): P(pre or post) = p (upstream's p_rot)
    p_rot = 1 - math.sqrt(min(max(1 - on["rotate"], 0.0), 1.0))
    angle = lambda: d.signed() * math.pi * opt.rotate_max  # noqa: E731
    rgb = channels > 1  # hue and saturation leave a grey image alone: no draws
    return AdaDraws(
        xflip=d.switched(lambda: torch.floor(d.uniform() * 2), on["xflip"], 0, opt.xflip),
        rotate90=d.switched(lambda: torch.floor(d.uniform() * 4), on["rotate90"], 0, opt.rotate90),
        xint=d.switched(lambda: d.signed(2) * opt.xint_max, on["xint"], 0, opt.xint, True),
        scale=d.switched(lambda: d.log2normal(opt.scale_std), on["scale"], 1, opt.scale),
        rotate_pre=d.switched(angle, p_rot, 0, opt.rotate),
        aniso=d.switched(lambda: d.log2normal(opt.aniso_std), on["aniso"], 1, opt.aniso),
        rotate_post=d.switched(angle, p_rot, 0, opt.rotate),
        xfrac=d.switched(lambda: d.normal(2) * opt.xfrac_std, on["xfrac"], 0, opt.xfrac, True),
        brightness=d.switched(
            lambda: d.normal() * opt.brightness_std, on["brightness"], 0, opt.brightness
        ),
        contrast=d.switched(
            lambda: d.log2normal(opt.contrast_std), on["contrast"], 1, opt.contrast
        ),
        lumaflip=d.switched(lambda: torch.floor(d.uniform() * 2), on["lumaflip"], 0, opt.lumaflip),
        hue=d.switched(lambda: d.signed() * math.pi * opt.hue_max, on["hue"], 0, opt.hue * rgb),
        saturation=d.switched(
            lambda: d.log2normal(opt.saturation_std), on["saturation"], 1, opt.saturation * rgb
        ),
    )


# ---------------------------------------------------------------- geometry


def _affine(a, b, c, d, tx, ty) -> torch.Tensor:
    """(B, 3, 3) homogeneous matrices [[a, b, tx], [c, d, ty], [0, 0, 1]] from (B,) tensors."""
    zero, one = torch.zeros_like(a), torch.ones_like(a)
    rows = [a, b, tx, c, d, ty, zero, zero, one]
    return torch.stack([torch.as_tensor(r, dtype=a.dtype, device=a.device).expand_as(a)
                        for r in rows], -1).view(-1, 3, 3)  # fmt: skip


def _rotation(theta: torch.Tensor) -> torch.Tensor:
    zero = torch.zeros_like(theta)
    cos, sin = torch.cos(theta), torch.sin(theta)
    return _affine(cos, -sin, sin, cos, zero, zero)


def _scaling(sx: torch.Tensor, sy: torch.Tensor) -> torch.Tensor:
    zero = torch.zeros_like(sx)
    return _affine(sx, zero, zero, sy, zero, zero)


def _translation(tx: torch.Tensor, ty: torch.Tensor) -> torch.Tensor:
    one, zero = torch.ones_like(tx), torch.zeros_like(tx)
    return _affine(one, zero, zero, one, tx, ty)


def inverse_geometry(draws: AdaDraws, height: int, width: int, dtype=torch.float32):
    """(B, 3, 3) map from output to input pixel (origin at the centre, x right, y down).

    Each op's inverse is multiplied on the right, so the image sees x-flip first and the
    fractional translation last (upstream's order).
    """
    v = {name: t.to(dtype) for name, t in vars(draws).items()}
    xint = torch.round(v["xint"] * v["xint"].new_tensor([width, height]))
    xfrac = v["xfrac"] * v["xfrac"].new_tensor([width, height])
    inverses = (
        _scaling(1 - 2 * v["xflip"], torch.ones_like(v["xflip"])),
        _rotation(v["rotate90"] * (math.pi / 2)),
        _translation(-xint[:, 0], -xint[:, 1]),
        _scaling(1 / v["scale"], 1 / v["scale"]),
        _rotation(v["rotate_pre"]),
        _scaling(1 / v["aniso"], v["aniso"]),
        _rotation(v["rotate_post"]),
        _translation(-xfrac[:, 0], -xfrac[:, 1]),
    )
    g_inv = inverses[0]
    for m in inverses[1:]:
        g_inv = g_inv @ m
    return g_inv


def lowpass(dtype=torch.float32, device=None) -> torch.Tensor:
    """The sym6 filter normalised to unit DC gain."""
    f = torch.tensor(SYM6, dtype=torch.float64)
    return (f / f.sum()).to(dtype=dtype, device=device)


def upsampling_matrix(n: int, f: torch.Tensor) -> torch.Tensor:
    """(2n, n) operator of upstream's ``upsample2d`` along one axis (zeros inserted, true
    convolution with gain 2, zeros outside): ``y[j] = 2 Σ_i f[k/2 - 1 + j - 2i] x[i]``.
    A dense matrix product beats a 1-channel convolution on CPU by far."""
    j = torch.arange(2 * n, device=f.device)[:, None]
    i = torch.arange(n, device=f.device)[None, :]
    tap = f.numel() // 2 - 1 + j - 2 * i
    inside = (tap >= 0) & (tap < f.numel())
    return torch.where(inside, 2 * f[tap.clamp(0, f.numel() - 1)], torch.zeros((), dtype=f.dtype))


def downsampling_matrix(n: int, f: torch.Tensor) -> torch.Tensor:
    """(n/2 - k/2, n) operator of upstream's ``downsample2d`` along one axis with
    ``flip_filter=True`` and padding ``-k/2`` (correlation, then cropped):
    ``y[o] = Σ_t f[t] x[2o + 1 + t]``."""
    k = f.numel()
    o = torch.arange((n - 2 - k) // 2 + 1, device=f.device)[:, None]
    tap = torch.arange(n, device=f.device)[None, :] - 2 * o - 1
    inside = (tap >= 0) & (tap < k)
    return torch.where(inside, f[tap.clamp(0, k - 1)], torch.zeros((), dtype=f.dtype))


def _separable(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """``rows @ x @ colsᵀ`` on the last two axes."""
    return rows.to(x.dtype) @ (x @ cols.to(x.dtype).T)


def upsample2x(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    return _separable(x, upsampling_matrix(h, f), upsampling_matrix(w, f))


def downsample2x(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    h, w = x.shape[-2:]
    return _separable(x, downsampling_matrix(h, f), downsampling_matrix(w, f))


def _padding(g_inv: torch.Tensor, height: int, width: int, reach: int) -> list[int]:
    """Reflect padding (left, right, top, bottom): how far the batch's output corners reach
    beyond the image in the input, plus the filter's support, within one image side."""
    cx, cy = (width - 1) / 2, (height - 1) / 2
    corners = g_inv.new_tensor([[-cx, cx, cx, -cx], [-cy, -cy, cy, cy], [1, 1, 1, 1]])
    src = (g_inv @ corners)[:, :2]  # (B, xy, corner)
    centre, limit = src.new_tensor([cx, cy]), src.new_tensor([width - 1, height - 1])
    before = (-src).amax(dim=(0, 2)) - centre + 2 * reach
    after = src.amax(dim=(0, 2)) - centre + 2 * reach
    pads = torch.stack([before, after]).clamp(min=0).minimum(limit).ceil().long()
    (left, top), (right, bottom) = pads.tolist()
    return [left, right, top, bottom]


def resample(x: torch.Tensor, g_inv: torch.Tensor) -> torch.Tensor:
    """Warp x by ``g_inv`` (output → input pixel): pad, 2× up, bilinear sampling, 2× down."""
    n, c, height, width = x.shape
    f = lowpass(g_inv.dtype, x.device)
    reach = f.numel() // 4
    left, right, top, bottom = _padding(g_inv, height, width, reach)
    x = F.pad(x, [left, right, top, bottom], mode="reflect")
    one = g_inv.new_ones(n)
    g = _translation(one * (left - right) / 2, one * (top - bottom) / 2) @ g_inv
    x = upsample2x(x, f)
    # on the 2× grid, about the point (-0.5, -0.5) of its centred coordinates, as upstream
    g = _scaling(2 * one, 2 * one) @ g @ _scaling(one / 2, one / 2)
    g = _translation(-one / 2, -one / 2) @ g @ _translation(one / 2, one / 2)
    out_h, out_w = 2 * (height + 2 * reach), 2 * (width + 2 * reach)
    in_h, in_w = x.shape[-2:]
    # pixels ↦ align_corners=False normalised coordinates, on both sides
    g = _scaling(2 / in_w * one, 2 / in_h * one) @ g @ _scaling(out_w / 2 * one, out_h / 2 * one)
    grid = F.affine_grid(g[:, :2].to(x.dtype), [n, c, out_h, out_w], align_corners=False)
    x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return downsample2x(x, f)


# ---------------------------------------------------------------- colour


def _luma_axis(dtype, device) -> torch.Tensor:
    return torch.tensor([1.0, 1.0, 1.0, 0.0], dtype=dtype, device=device) / math.sqrt(3)


def colour_matrix(draws: AdaDraws, dtype=torch.float32, device=None) -> torch.Tensor:
    """(B, 4, 4) map of (r, g, b, 1): brightness, contrast, luma flip, hue, saturation, in
    that order (each op's matrix multiplied on the left)."""
    v = {name: t.to(dtype=dtype, device=device) for name, t in vars(draws).items()}
    n = v["brightness"].shape[0]
    eye = torch.eye(4, dtype=dtype, device=device).expand(n, 4, 4)
    axis = _luma_axis(dtype, device)
    vv = torch.outer(axis, axis)
    bright = eye.clone()
    bright[:, :3, 3] = v["brightness"][:, None]
    contrast = torch.diag_embed(torch.stack([v["contrast"]] * 3 + [torch.ones(n, dtype=dtype,
                                device=device)], -1))  # fmt: skip
    flip = eye - 2 * vv * v["lumaflip"].view(n, 1, 1)
    sat = vv + (eye - vv) * v["saturation"].view(n, 1, 1)
    c = sat @ _hue_rotation(v["hue"], axis) @ flip @ contrast @ bright
    return c


def _hue_rotation(theta: torch.Tensor, axis: torch.Tensor) -> torch.Tensor:
    """Rotation by theta about the unit ``axis`` (Rodrigues), homogeneous (B, 4, 4)."""
    n = theta.shape[0]
    x, y, z = axis[:3]
    cross = torch.stack([torch.stack([0 * x, -z, y]), torch.stack([z, 0 * x, -x]),
                         torch.stack([-y, x, 0 * x])])  # fmt: skip
    cos, sin = torch.cos(theta).view(n, 1, 1), torch.sin(theta).view(n, 1, 1)
    eye3 = torch.eye(3, dtype=theta.dtype, device=theta.device)
    rot = cos * eye3 + sin * cross + (1 - cos) * torch.outer(axis[:3], axis[:3])
    out = torch.eye(4, dtype=theta.dtype, device=theta.device).repeat(n, 1, 1)
    out[:, :3, :3] = rot
    return out


def apply_colour(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """RGB: ``C[:3, :3] rgb + C[:3, 3]``; grey: the three colour rows averaged, as upstream
    (gain = the averaged row's colour sum, offset = its last entry)."""
    n, channels, height, width = x.shape
    flat = x.reshape(n, channels, height * width)
    c = c.to(x.dtype)
    if channels == 3:
        out = c[:, :3, :3] @ flat + c[:, :3, 3:]
    else:
        row = c[:, :3, :].mean(dim=1, keepdim=True)
        out = flat * row[:, :, :3].sum(dim=2, keepdim=True) + row[:, :, 3:]
    return out.reshape(n, channels, height, width)


def augment(x: torch.Tensor, draws: AdaDraws, opt: AdaOptions) -> torch.Tensor:
    """The pipeline for already drawn parameters: geometry, then colour (each skipped, as
    upstream, when all of its multipliers are 0)."""
    dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    if any(getattr(opt, name) > 0 for name in GEOMETRIC):
        g_inv = inverse_geometry(draws, *x.shape[-2:], dtype).to(x.device)
        x = resample(x, g_inv)
    if any(getattr(opt, name) > 0 for name in COLOUR):
        x = apply_colour(x, colour_matrix(draws, dtype, x.device))
    return x


@AUGMENTS.register("ada")
class Ada(Augmentation):
    Options = AdaOptions

    def __init__(self, options: AdaOptions | None = None):
        super().__init__(options)
        o = self.options
        self.schedule = AdaptiveProbability(o.target, o.interval, o.ada_kimg, o.initial_p)

    @property
    def p(self) -> float:
        return self.schedule.p

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.p <= 0:
            return x  # nothing would be switched on: no draws, no resampling
        if x.shape[1] not in (1, 3):
            raise ValueError(f"ADA needs 1- or 3-channel images, got {tuple(x.shape)}")
        draws = draw_params(x.shape[0], x.shape[1], self.p, self.options, generator)
        return augment(x, draws, self.options)

    def update(self, report: DStepReport) -> dict[str, float]:
        self.schedule.observe(report)
        return {"ada_p": self.schedule.p, "ada_rt": self.schedule.last_rt}

    def state_dict(self) -> dict:
        return self.schedule.state_dict()

    def load_state_dict(self, state: dict) -> None:
        self.schedule.load_state_dict(state)
