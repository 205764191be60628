"""ADA conformance: ``baselines/ada.py`` against a small reference written here.

The reference follows the ADA paper (Karras et al. 2020, arXiv 2006.06676, appendix B) and
the semantics of stylegan2-ada-pytorch's ``AugmentPipe`` (read, not copied): each op's
FORWARD matrix built on its own and the composite inverted numerically (the code under test
composes inverses); resampling as explicit float64 linear maps (reflect-index padding,
upsampling and downsampling matrices from the filter taps, bilinear sampling by hand); colour
matrices from their definitions (the hue rotation as a matrix exponential). Per-op
expectations are computed by hand: integer translation is an exact re-indexing; x-flips and
quarter turns are exact re-indexings followed by a known symmetric filter along each
mirrored axis (the sym6 filter is not symmetric, so a reflection turns the up/down filter
pair f, f̃ into f∗f, whose even taps are that filter); colour ops are their matrices.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from adaptivemix.gan.augment import AdaptiveProbability, DStepReport
from baselines import ada

# Daubechies' least-asymmetric wavelet, 6 vanishing moments: low-pass decomposition taps
SYM6 = np.array([
    0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
    0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
    -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148,
])  # fmt: skip
F = SYM6 / SYM6.sum()
REACH = len(F) // 4  # 3: the output grid is 2·(side + 2·3) on the 2× image
BGC = ada.GEOMETRIC + ada.COLOUR


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(n=3, c=3, h=12, w=16, seed=1, dtype=torch.float32) -> torch.Tensor:
    return (torch.rand(n, c, h, w, generator=gen(seed), dtype=torch.float64) * 2 - 1).to(dtype)


# ---------------------------------------------------------------- reference: geometry


def rot(theta: float) -> np.ndarray:
    c, s = math.cos(theta), math.sin(theta)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])


def diag(sx: float, sy: float) -> np.ndarray:
    return np.diag([sx, sy, 1.0])


def shift(tx: float, ty: float) -> np.ndarray:
    return np.array([[1, 0, tx], [0, 1, ty], [0, 0, 1.0]])


def forward_ops(d: dict, b: int, h: int, w: int) -> list[np.ndarray]:
    """Each op's image-space map (input pixel → output pixel), in the order applied.

    Upstream's inverses: flip diag(±1, 1), quarter turn rot(+kπ/2), shift by −t, scale 1/s,
    rotations rot(+θ), aniso diag(1/s, s); so the forward maps are these inverted.
    """
    xi, xf = d["xint"][b], d["xfrac"][b]
    return [
        diag(1 - 2 * d["xflip"][b], 1),
        rot(-d["rotate90"][b] * math.pi / 2),
        shift(round(xi[0] * w), round(xi[1] * h)),
        diag(d["scale"][b], d["scale"][b]),
        rot(-d["rotate_pre"][b]),
        diag(d["aniso"][b], 1 / d["aniso"][b]),
        rot(-d["rotate_post"][b]),
        shift(xf[0] * w, xf[1] * h),
    ]


def ref_inverse(d: dict, b: int, h: int, w: int) -> np.ndarray:
    total = np.eye(3)
    for m in forward_ops(d, b, h, w):
        total = m @ total
    return np.linalg.inv(total)


def ref_pads(g_invs: list[np.ndarray], h: int, w: int) -> tuple[int, int, int, int]:
    """Per side: farthest source of an output corner beyond the image + 2·REACH px, within
    [0, side − 1], rounded up; the largest over the batch."""
    cx, cy = (w - 1) / 2, (h - 1) / 2
    src = np.concatenate([(g @ np.array([[-cx, cx, cx, -cx], [-cy, -cy, cy, cy], [1] * 4]))[:2]
                          for g in g_invs], 1)  # fmt: skip
    left = min(max(-src[0].min() - cx + 2 * REACH, 0), w - 1)
    right = min(max(src[0].max() - cx + 2 * REACH, 0), w - 1)
    top = min(max(-src[1].min() - cy + 2 * REACH, 0), h - 1)
    bottom = min(max(src[1].max() - cy + 2 * REACH, 0), h - 1)
    return tuple(math.ceil(v) for v in (left, right, top, bottom))


def reflect_rows(n: int, before: int, after: int) -> torch.Tensor:
    """(n + before + after, n) selection matrix of reflect padding (edge not repeated)."""
    idx = [abs(i) if i < 0 else (2 * (n - 1) - i if i >= n else i)
           for i in range(-before, n + after)]  # fmt: skip
    return torch.eye(n, dtype=torch.float64)[idx]


def up_matrix(n: int) -> torch.Tensor:
    """(2n, n): y[j] = 2 Σ_i F[5 + j − 2i] x[i] (zeros inserted, convolution, gain 2)."""
    m = torch.zeros(2 * n, n, dtype=torch.float64)
    for j in range(2 * n):
        for i in range(n):
            if 0 <= 5 + j - 2 * i < len(F):
                m[j, i] = 2 * F[5 + j - 2 * i]
    return m


def down_matrix(n: int) -> torch.Tensor:
    """(n/2 − 6, n): y[o] = Σ_t F[t] x[2o + 1 + t] (crop 1, correlation, every 2nd)."""
    out = (n - 2 - len(F)) // 2 + 1
    m = torch.zeros(out, n, dtype=torch.float64)
    for o in range(out):
        m[o, 2 * o + 1 : 2 * o + 1 + len(F)] = torch.from_numpy(F)
    return m


def bilinear(img: torch.Tensor, px: torch.Tensor, py: torch.Tensor) -> torch.Tensor:
    """Sample (C, H, W) at pixel-index positions (zeros outside), by hand."""
    _, h, w = img.shape
    x0, y0 = torch.floor(px), torch.floor(py)
    out = 0
    for dx, dy in ((0, 0), (1, 0), (0, 1), (1, 1)):
        xi, yi = x0 + dx, y0 + dy
        weight = (1 - (px - xi).abs()) * (1 - (py - yi).abs())
        inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        value = img[:, yi.clamp(0, h - 1).long(), xi.clamp(0, w - 1).long()]
        out = out + value * (weight * inside)
    return out


def ref_warp(img: torch.Tensor, g_inv: np.ndarray, pads) -> torch.Tensor:
    """One (C, H, W) float64 image: pad, 2× up, sample, 2× down."""
    _, h, w = img.shape
    left, right, top, bottom = pads
    rows, cols = reflect_rows(h, top, bottom), reflect_rows(w, left, right)
    big = up_matrix(h + top + bottom) @ (rows @ img @ cols.T) @ up_matrix(w + left + right).T
    # output → input on the 2× grids (centred coordinates, pivot (−0.5, −0.5)): the padded
    # image's centre is ((left − right)/2, (top − bottom)/2) in the original's coordinates
    g = shift(left - right, top - bottom) @ diag(2, 2) @ g_inv @ diag(0.5, 0.5)
    g = shift(-0.5, -0.5) @ g @ shift(0.5, 0.5)
    out_h, out_w = 2 * (h + 2 * REACH), 2 * (w + 2 * REACH)
    ys, xs = torch.meshgrid(*(torch.arange(k, dtype=torch.float64) for k in (out_h, out_w)),
                            indexing="ij")  # fmt: skip
    ox, oy = xs - (out_w - 1) / 2, ys - (out_h - 1) / 2
    g = torch.from_numpy(g)
    px = g[0, 0] * ox + g[0, 1] * oy + g[0, 2] + (big.shape[-1] - 1) / 2
    py = g[1, 0] * ox + g[1, 1] * oy + g[1, 2] + (big.shape[-2] - 1) / 2
    sampled = bilinear(big, px, py)
    return down_matrix(out_h) @ sampled @ down_matrix(out_w).T


# ---------------------------------------------------------------- reference: colour


def ref_colour(d: dict, b: int) -> torch.Tensor:
    v = torch.tensor([1.0, 1.0, 1.0], dtype=torch.float64) / math.sqrt(3)
    eye = torch.eye(4, dtype=torch.float64)
    vv = torch.zeros(4, 4, dtype=torch.float64)
    vv[:3, :3] = torch.outer(v, v)
    bright = eye.clone()
    bright[:3, 3] = d["brightness"][b]
    contrast = torch.diag(torch.tensor([d["contrast"][b]] * 3 + [1.0], dtype=torch.float64))
    flip = eye - 2 * d["lumaflip"][b] * vv
    generator = torch.zeros(4, 4, dtype=torch.float64)  # so(3) element of v×
    generator[:3, :3] = torch.tensor([[0, -v[2], v[1]], [v[2], 0, -v[0]], [-v[1], v[0], 0]])
    hue = torch.linalg.matrix_exp(d["hue"][b] * generator)
    sat = vv + d["saturation"][b] * (eye - vv)
    return sat @ hue @ flip @ contrast @ bright


def ref_apply_colour(img: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    if img.shape[0] == 3:
        return torch.einsum("ij,jhw->ihw", c[:3, :3], img) + c[:3, 3, None, None]
    row = c[:3].mean(0)  # a grey image gets the average of the colour rows (upstream)
    return img * row[:3].sum() + row[3]


def reference(x: torch.Tensor, draws: ada.AdaDraws) -> torch.Tensor:
    d = {k: v.double().tolist() for k, v in vars(draws).items()}
    n, _, h, w = x.shape
    g_invs = [ref_inverse(d, b, h, w) for b in range(n)]
    pads = ref_pads(g_invs, h, w)
    out = [ref_apply_colour(ref_warp(x[b], g_invs[b], pads), ref_colour(d, b)) for b in range(n)]
    return torch.stack(out)


# ---------------------------------------------------------------- the whole pipeline


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("p", [1.0, 0.6])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_pipeline_and_input_gradient_match_the_reference(channels, p, dtype):
    x = images(n=4, c=channels, dtype=dtype).requires_grad_()
    x_ref = x.detach().double().requires_grad_()
    opt = ada.AdaOptions()
    draws = ada.draw_params(4, channels, p, opt, gen(7))
    out, want = ada.augment(x, draws, opt), reference(x_ref, draws)
    # float64: 1e-9; float32: 1e-5 of the largest magnitude (contrast, saturation: |x| ≈ 6)
    scale = 1e-4 if dtype == torch.float64 else float(want.detach().abs().max())
    torch.testing.assert_close(out.double(), want, atol=1e-5 * scale, rtol=0)
    weights = images(n=4, c=channels, seed=9, dtype=torch.float64)
    (out.double() * weights).sum().backward()
    (want * weights).sum().backward()
    scale = 1e-4 if dtype == torch.float64 else float(x_ref.grad.abs().max())
    torch.testing.assert_close(x.grad.double(), x_ref.grad, atol=1e-5 * scale, rtol=0)


def test_large_transforms_and_a_non_square_batch_match_the_reference():
    x = images(n=3, c=3, h=10, w=14, dtype=torch.float64)
    opt = ada.AdaOptions()
    draws = ada.draw_params(3, 3, 1.0, opt, gen(0))
    draws.scale = torch.tensor([0.5, 1.7, 1.0])  # zoom out far: the padding reaches its cap
    draws.xfrac = torch.tensor([[0.4, -0.3], [0.0, 0.0], [-0.2, 0.25]])
    torch.testing.assert_close(ada.augment(x, draws, opt), reference(x, draws), atol=1e-9, rtol=0)


def test_the_augmentation_is_twice_differentiable():
    """R1 through the augmentation needs the gradient of an input gradient."""
    x = images(n=2).requires_grad_()
    w = torch.ones(3, requires_grad=True)
    out = ada.Ada(ada.AdaOptions(initial_p=1.0))(x, gen())
    (g,) = torch.autograd.grad((out * w.view(1, 3, 1, 1)).square().sum(), x, create_graph=True)
    g.square().sum().backward()
    assert w.grad is not None and torch.isfinite(w.grad).all() and w.grad.abs().sum() > 0


# ---------------------------------------------------------------- draws


def reference_draws(n: int, channels: int, p: float, mult: dict, g: torch.Generator) -> dict:
    """Upstream's sequence: per op (when its multiplier is > 0) the value, then the switch."""

    def rand(*shape):
        return torch.rand(n, *shape, generator=g)

    def randn(*shape):
        return torch.randn(n, *shape, generator=g)

    def on(prob, *shape):
        return rand(*shape) < prob

    out = {}

    def op(name, value, identity, prob=None, shape=()):
        if mult[name] > 0:
            v = value()
            out[name] = torch.where(on(mult[name] * p if prob is None else prob, *shape), v,
                                    torch.full_like(v, identity))  # fmt: skip

    op("xflip", lambda: torch.floor(rand() * 2), 0)
    op("rotate90", lambda: torch.floor(rand() * 4), 0)
    op("xint", lambda: (rand(2) * 2 - 1) * 0.125, 0, shape=(1,))
    op("scale", lambda: torch.exp2(randn() * 0.2), 1)
    p_rot = 1 - math.sqrt(max(0.0, 1 - mult["rotate"] * p))
    for name in ("rotate_pre", "aniso", "rotate_post"):
        if name == "aniso":
            op("aniso", lambda: torch.exp2(randn() * 0.2), 1)
        elif mult["rotate"] > 0:
            angle = (rand() * 2 - 1) * math.pi
            out[name] = torch.where(on(p_rot), angle, torch.zeros_like(angle))
    op("xfrac", lambda: randn(2) * 0.125, 0, shape=(1,))
    op("brightness", lambda: randn() * 0.2, 0)
    op("contrast", lambda: torch.exp2(randn() * 0.5), 1)
    op("lumaflip", lambda: torch.floor(rand() * 2), 0)
    if channels == 3:
        op("hue", lambda: (rand() * 2 - 1) * math.pi, 0)
        op("saturation", lambda: torch.exp2(randn() * 1.0), 1)
    return out


@pytest.mark.parametrize("channels", [3, 1])
@pytest.mark.parametrize("off", [(), ("rotate", "xint", "hue")])
def test_draws_follow_upstreams_sequence(channels, off):
    mult = {name: 0.0 if name in off else 1.0 for name in BGC}
    opt = ada.AdaOptions(**mult)
    g_ours, g_ref = gen(3), gen(3)
    draws = vars(ada.draw_params(64, channels, 0.7, opt, g_ours))
    want = reference_draws(64, channels, 0.7, mult, g_ref)
    for name, value in want.items():
        torch.testing.assert_close(draws[name], value.float(), atol=0, rtol=0, msg=name)
    assert torch.equal(g_ours.get_state(), g_ref.get_state())  # nothing more was drawn
    identity = {"scale": 1, "aniso": 1, "contrast": 1, "saturation": 1}
    for name in set(draws) - set(want):
        assert torch.all(draws[name] == identity.get(name, 0)), name


@pytest.mark.parametrize("name", ["xflip", "brightness", "scale", "rotate"])
def test_each_op_is_on_with_probability_multiplier_times_p(name):
    opt = ada.AdaOptions(**{other: 0.0 for other in BGC if other != name}, **{name: 0.5})
    draws = vars(ada.draw_params(20000, 3, 0.8, opt, gen(1)))
    key = "rotate_pre" if name == "rotate" else name
    identity = 1.0 if name == "scale" else 0.0
    changed = float((draws[key] != identity).float().mean())
    want = {"xflip": 0.4 / 2, "rotate": 1 - math.sqrt(1 - 0.4)}.get(name, 0.4)
    assert abs(changed - want) < 0.015  # binomial sd ≤ 0.0035


def test_p_zero_returns_the_input_and_draws_nothing():
    x, g = images(), gen(4)
    before = g.get_state()
    assert ada.Ada()(x, g) is x
    assert torch.equal(g.get_state(), before)


# ---------------------------------------------------------------- single ops by hand


def only(name: str) -> ada.AdaOptions:
    return ada.AdaOptions(**{other: float(other == name) for other in BGC})


def forced(name: str, values, n: int, channels: int = 3) -> ada.AdaDraws:
    draws = ada.draw_params(n, channels, 1e-12, only(name), gen())  # all at identity
    setattr(draws, name, torch.as_tensor(values, dtype=torch.float32))
    return draws


def mirror_filter(img: torch.Tensor, dim: int) -> torch.Tensor:
    """y[o] = Σ_s K[s] img[o − s], K[s] = 2·(F∗F)[10 − 2s] for s in −6..5 (circular: only
    the interior is compared)."""
    ff = np.convolve(F, F)
    return sum(2 * ff[10 - 2 * s] * torch.roll(img, s, dims=dim) for s in range(-6, 6))


INTERIOR = (..., slice(8, -8), slice(8, -8))


def test_xflip_is_a_mirror_then_the_mirror_filter():
    x = images(n=2, c=1, h=32, w=32, dtype=torch.float64)
    out = ada.augment(x, forced("xflip", [1.0, 0.0], 2), only("xflip"))
    want = mirror_filter(x[:1].flip(-1), -1)
    torch.testing.assert_close(out[:1][INTERIOR], want[INTERIOR], atol=1e-9, rtol=0)
    torch.testing.assert_close(out[1], x[1], atol=1e-9, rtol=0)  # off: the identity
    assert float((out[0] - x[0].flip(-1)).abs().max()) > 0.05  # not a bare permutation


@pytest.mark.parametrize("k,mirrored", [(1, (-2,)), (2, (-2, -1)), (3, (-1,))])
def test_quarter_turns_are_rot90_then_the_mirror_filter(k, mirrored):
    x = images(n=1, c=3, h=32, w=32, dtype=torch.float64)
    out = ada.augment(x, forced("rotate90", [float(k)], 1), only("rotate90"))
    want = torch.rot90(x, k, dims=(-2, -1))
    for dim in mirrored:  # the axes a quarter turn reverses
        want = mirror_filter(want, dim)
    torch.testing.assert_close(out[INTERIOR], want[INTERIOR], atol=1e-9, rtol=0)


def test_integer_translation_is_an_exact_shift_away_from_borders():
    x = images(n=3, c=1, h=16, w=16, dtype=torch.float64)
    t = [[2 / 16, 0.0], [0.0, -1 / 16], [-2 / 16, 1 / 16]]  # (x, y) as fractions of 16 px
    out = ada.augment(x, forced("xint", t, 3, 1), only("xint"))
    torch.testing.assert_close(out[0, :, :, 2:], x[0, :, :, :-2], atol=1e-9, rtol=0)
    torch.testing.assert_close(out[1, :, :-1], x[1, :, 1:], atol=1e-9, rtol=0)
    torch.testing.assert_close(out[2, :, 1:, :-2], x[2, :, :-1, 2:], atol=1e-9, rtol=0)


def test_integer_translation_rounds_to_whole_pixels():
    x = images(n=1, c=1, h=16, w=16, dtype=torch.float64)
    out = ada.augment(x, forced("xint", [[0.11, 0.0]], 1, 1), only("xint"))  # 1.76 → 2 px
    torch.testing.assert_close(out[0, :, :, 2:], x[0, :, :, :-2], atol=1e-9, rtol=0)


def rgb_mean(x: torch.Tensor) -> torch.Tensor:
    return x.mean(1, keepdim=True)


@pytest.mark.parametrize("channels", [3, 1])
def test_colour_ops_by_hand(channels):
    x = images(n=2, c=channels, dtype=torch.float64)

    def run(name, values):
        return ada.augment(x, forced(name, values, 2, channels), only(name))

    torch.testing.assert_close(run("brightness", [0.3, -0.1]),
                               x + torch.tensor([0.3, -0.1]).view(2, 1, 1, 1).double())  # fmt: skip
    torch.testing.assert_close(run("contrast", [1.5, 0.5]),
                               x * torch.tensor([1.5, 0.5]).view(2, 1, 1, 1).double())  # fmt: skip
    # Householder reflection about the plane ⟂ (1,1,1)/√3: rgb − 2·mean(rgb) per pixel; a
    # grey image gets the average row of I − (2/3)·ones: gain 1 − 2 = −1
    flipped = run("lumaflip", [1.0, 0.0])
    want = x[:1] - 2 * rgb_mean(x[:1]) if channels == 3 else -x[:1]
    torch.testing.assert_close(flipped[:1], want)
    torch.testing.assert_close(flipped[1:], x[1:])


def test_hue_and_saturation_by_hand():
    x = images(n=2, c=3, dtype=torch.float64)
    theta = [2.0, -0.7]
    out = ada.augment(x, forced("hue", theta, 2), only("hue"))
    # rotation about the grey axis: the grey part stays, the chroma part c turns to
    # cos θ·c + sin θ·(v × c)
    m = rgb_mean(x)
    c = x - m
    v = torch.ones(3, dtype=torch.float64) / math.sqrt(3)
    cross = torch.cross(v.view(1, 3, 1, 1).expand_as(c), c, dim=1)
    t = torch.tensor(theta, dtype=torch.float64).view(2, 1, 1, 1)
    torch.testing.assert_close(out, m + torch.cos(t) * c + torch.sin(t) * cross)
    out = ada.augment(x, forced("saturation", [2.0, 0.25], 2), only("saturation"))
    s = torch.tensor([2.0, 0.25], dtype=torch.float64).view(2, 1, 1, 1)
    torch.testing.assert_close(out, m + s * (x - m))


def test_grey_images_skip_hue_and_saturation():
    x = images(n=2, c=1)
    opt = ada.AdaOptions(**{name: float(name in ("hue", "saturation")) for name in BGC})
    g = gen(2)
    before = g.get_state()
    out = ada.Ada(ada.AdaOptions(**{**vars(opt), "initial_p": 1.0}))(x, g)
    assert torch.equal(g.get_state(), before) and torch.allclose(out, x)


# ---------------------------------------------------------------- the p rule by hand


class FakeDist:
    """Two ranks: the other one always reports ``other`` (Σ sign, count)."""

    enabled, world_size = True, 2

    def __init__(self, other):
        self.other = torch.tensor(other, dtype=torch.float32)

    def mean(self, t):
        return (t + self.other) / 2


def report(*signs_per_pass, batch=16, dist=None):
    logits = [torch.tensor(s, dtype=torch.float32) * 3.0 for s in signs_per_pass]
    return DStepReport(logits, batch, **({"dist": dist} if dist else {}))


def test_p_rule_over_a_scripted_sequence_of_logits():
    # batch 16, interval 3, kimg 1: each adjustment moves p by 16·3/1000 = 0.048
    rule = AdaptiveProbability(target=0.6, interval=3, kimg=1.0, p=0.1)
    plus, minus = [1.0] * 8, [-1.0] * 8
    # interval 1: signs 8 + (8 − 8) + (4·1 + 4·0 − 0): two passes in the first step
    assert not rule.observe(report(plus, [1.0] * 4 + [0.0] * 4))
    assert not rule.observe(report(plus, minus))
    assert rule.observe(report([1.0] * 8))
    r1 = (8 + 4 + 0 + 8) / (16 + 16 + 8)  # = 0.5 < 0.6: p falls
    assert rule.last_rt == pytest.approx(r1) and rule.p == pytest.approx(0.1 - 0.048)
    # interval 2: all positive, p rises; then 3 intervals all negative: 0.052, 0.004, 0
    for _ in range(3):
        rule.observe(report(plus))
    assert rule.last_rt == 1.0 and rule.p == pytest.approx(0.1)
    for _ in range(9):
        rule.observe(report(minus))
    assert rule.last_rt == -1.0 and rule.p == 0.0
    # an interval with no real logit (e.g. a mixing step without R1) leaves p alone
    for _ in range(3):
        rule.observe(report())
    assert rule.p == 0.0 and rule.last_rt == -1.0


def test_p_has_no_upper_clamp_and_moves_by_batch_times_interval():
    rule = AdaptiveProbability(target=0.6, interval=2, kimg=0.1, p=0.95)
    for _ in range(2):
        rule.observe(report([1.0] * 10, batch=10))
    assert rule.p == pytest.approx(0.95 + 10 * 2 / 100)  # 1.15: upstream only floors p


def test_r_t_at_the_target_leaves_p_unchanged():
    rule = AdaptiveProbability(target=0.5, interval=1, kimg=1.0, p=0.25)
    assert rule.observe(report([1.0] * 12 + [-1.0] * 4))  # (12 − 4)/16 = 0.5
    assert rule.p == 0.25


def test_the_sign_statistic_is_averaged_over_ranks():
    # this rank: 8 positive of 8; the other: Σ sign −6 over 8 → r_t = 2/16 < 0.6
    rule = AdaptiveProbability(target=0.6, interval=1, kimg=1.0, p=0.5)
    rule.observe(report([1.0] * 8, dist=FakeDist([-6.0, 8.0])))
    assert rule.last_rt == pytest.approx(2 / 16) and rule.p == pytest.approx(0.5 - 0.016)


def test_state_round_trip_mid_interval_continues_exactly():
    sequence = [([1.0] * 5 + [-1.0] * 3,), ([-1.0] * 8,), ([1.0] * 8, [1.0] * 8)] * 3
    straight = ada.Ada(ada.AdaOptions(interval=4, ada_kimg=1.0, initial_p=0.3))
    for signs in sequence:
        straight.update(report(*signs, batch=8))
    first = ada.Ada(ada.AdaOptions(interval=4, ada_kimg=1.0, initial_p=0.3))
    for signs in sequence[:5]:
        first.update(report(*signs, batch=8))
    resumed = ada.Ada(ada.AdaOptions(interval=4, ada_kimg=1.0, initial_p=0.3))
    resumed.load_state_dict(torch.load(_saved(first.state_dict()), weights_only=True))
    for signs in sequence[5:]:
        resumed.update(report(*signs, batch=8))
    assert resumed.state_dict() == straight.state_dict()
    assert straight.p != 0.3


def _saved(state: dict):
    import io

    buffer = io.BytesIO()
    torch.save(state, buffer)
    buffer.seek(0)
    return buffer


def _two_rank_worker(rank: int, init_file: str, out_file: str) -> None:
    import torch.distributed as dist

    from adaptivemix.gan.distributed import DistEnv

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        rule = AdaptiveProbability(target=0.6, interval=2, kimg=1.0, p=0.5)
        env = DistEnv(rank, 2)
        # rank 0: all positive; rank 1: 3 of 4 negative, then no logits at all
        signs = [[1.0] * 4, [1.0] * 4] if rank == 0 else [[-1.0] * 3 + [1.0], []]
        for s in signs:
            rule.observe(DStepReport([torch.tensor(s)] if s else [], 8, env))
        torch.save(rule.state_dict(), f"{out_file}.{rank}")
    finally:
        dist.destroy_process_group()


def test_two_gloo_ranks_share_one_statistic_and_p(tmp_path):
    import torch.multiprocessing as mp

    out = str(tmp_path / "state")
    mp.spawn(_two_rank_worker, args=(str(tmp_path / "init"), out), nprocs=2)
    states = [torch.load(f"{out}.{rank}", weights_only=True) for rank in (0, 1)]
    assert states[0] == states[1]  # the same p on every rank, so a rank-0 checkpoint suffices
    # all ranks' signs: (4 + 4) + (−3 + 1) = 6 over 12 logits → r_t = 0.5 < 0.6
    assert states[0]["last_rt"] == pytest.approx(0.5)
    assert states[0]["p"] == pytest.approx(0.5 - 8 * 2 / 1000)
