"""DiffAugment: the same random, differentiable augmentation on every image D sees.

Paper: Zhao, Liu, Lin, Zhu and Han, "Differentiable Augmentation for Data-Efficient GAN
Training", NeurIPS 2020, arXiv 2006.10738 (official code: mit-han-lab/data-efficient-gans).

Followed from the official PyTorch code (commit 0b63395): ``DiffAugment_pytorch.py`` (repo
root; the same file ships in ``DiffAugment-stylegan2-pytorch/``), functions
``rand_brightness``, ``rand_saturation``, ``rand_contrast`` (policy ``color``),
``rand_translation``, ``rand_cutout`` and the ``AUGMENT_FNS`` order, on images in [-1, 1] as
there; ``DiffAugment-stylegan2-pytorch/training/loss.py`` ``StyleGAN2Loss.run_D``: every image
D sees is augmented (reals and fakes in the D step, fakes in the G step), R1's gradient is
taken w.r.t. the un-augmented reals; default policy ``color,translation,cutout`` (``train.py``).

- ``color``: brightness ``x + b`` with ``b ~ U(-0.5, 0.5)``; then saturation
  ``(x - m_c) * s + m_c`` with ``m_c`` the per-pixel mean over channels, ``s ~ U(0, 2)``;
  then contrast ``(x - m) * c + m`` with ``m`` the image mean, ``c ~ U(0.5, 1.5)``. One draw
  per sample each. Saturation is the identity on 1-channel images (``x == m_c``).
- ``translation``: an integer shift per sample and axis, uniform in ``[-s, s]`` with
  ``s = int(ratio * side + 0.5)``; pixels shifted in from outside are 0 (zero padding).
- ``cutout``: a square of side ``k = int(ratio * side + 0.5)`` per axis, set to 0. Its centre
  is uniform over ``0 .. side - 1`` (``0 .. side`` when ``k`` is even), so the square may be
  clipped at the border, as upstream; the rest of the image is untouched.

Policies run in the order listed. Our interpretation: every draw comes from the run's
``torch.Generator`` (upstream uses the global RNG), in upstream's order and shapes (one
U[0, 1) per sample for each colour op; the H shift then the W shift; the H centre then the W
centre), and the ops are written with ``gather`` and masks instead of upstream's index grids.
As upstream, for a drawn shift ``t`` output pixel ``i`` reads input ``i + t`` (content moves
by −t), so the same draws give the same images (``tests/test_conformance_diffaugment.py``
replays upstream's ops on the same draws).

Options (``gan.method_options.diffaugment``): ``policy`` (a subset of ``color``,
``translation``, ``cutout``, in the order applied), ``translation_ratio`` (largest shift as a
fraction of the side, default 1/8), ``cutout_ratio`` (square side as a fraction, default 1/2).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from adaptivemix.errors import ConfigError
from adaptivemix.gan.augment import AUGMENTS, Augmentation

KEY = "gan.method_options.diffaugment"


def draw_uniform(n: int, generator: torch.Generator, like: torch.Tensor) -> torch.Tensor:
    """``n`` draws of U(0, 1), shaped (n, 1, 1, 1) to broadcast over an image batch."""
    u = torch.rand(n, generator=generator, device=generator.device, dtype=like.dtype)
    return u.to(like.device).view(n, 1, 1, 1)


def draw_int(low: int, high: int, n: int, generator: torch.Generator, device) -> torch.Tensor:
    """``n`` integers uniform in ``[low, high]`` (both ends included)."""
    k = torch.randint(low, high + 1, (n,), generator=generator, device=generator.device)
    return k.to(device)


def translate(x: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, pad: int, mode: str):
    """Move sample ``b``'s content by ``(dy[b], dx[b])`` pixels; ``|shift| <= pad``.

    Output pixel ``(i, j)`` reads input ``(i - dy, j - dx)``; outside the image the value
    comes from ``F.pad(mode=...)``. Two gathers (rows, then columns) keep it a pure
    re-indexing, hence exact and differentiable.
    """
    if pad == 0:
        return x
    b, c, h, w = x.shape
    padded = F.pad(x, (pad, pad, pad, pad), mode=mode)
    rows = torch.arange(h, device=x.device) + pad - dy.view(b, 1)
    padded = padded.gather(2, rows.view(b, 1, h, 1).expand(b, c, h, w + 2 * pad))
    cols = torch.arange(w, device=x.device) + pad - dx.view(b, 1)
    return padded.gather(3, cols.view(b, 1, 1, w).expand(b, c, h, w))


def brightness(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return x + (draw_uniform(x.shape[0], generator, x) - 0.5)


def saturation(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    channel_mean = x.mean(dim=1, keepdim=True)  # the grey level of each pixel
    return (x - channel_mean) * (2 * draw_uniform(x.shape[0], generator, x)) + channel_mean


def contrast(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    image_mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return (x - image_mean) * (draw_uniform(x.shape[0], generator, x) + 0.5) + image_mean


def color(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    return contrast(saturation(brightness(x, generator), generator), generator)


def random_translation(x: torch.Tensor, generator: torch.Generator, ratio: float):
    n, _, h, w = x.shape
    sy, sx = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = draw_int(-sy, sy, n, generator, x.device)
    dx = draw_int(-sx, sx, n, generator, x.device)
    # upstream's output pixel i reads input i + t: content moves by −t
    return translate(x, -dy, -dx, max(sy, sx), "constant")


def random_cutout(x: torch.Tensor, generator: torch.Generator, ratio: float):
    n, _, h, w = x.shape
    kh, kw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    # the centre may sit one past the last pixel for an even side, which keeps the
    # distribution of covered pixels symmetric (upstream's choice)
    top = draw_int(0, h - kh % 2, n, generator, x.device) - kh // 2
    left = draw_int(0, w - kw % 2, n, generator, x.device) - kw // 2
    rows = torch.arange(h, device=x.device).view(1, h)
    cols = torch.arange(w, device=x.device).view(1, w)
    in_rows = (rows >= top.view(n, 1)) & (rows < top.view(n, 1) + kh)
    in_cols = (cols >= left.view(n, 1)) & (cols < left.view(n, 1) + kw)
    keep = ~(in_rows.view(n, 1, h, 1) & in_cols.view(n, 1, 1, w))
    return x * keep.to(x.dtype)  # a product, so the kept pixels pass their gradient


# name -> op(x, generator, options); options carry the ratios
POLICIES: dict[str, Callable[..., torch.Tensor]] = {
    "color": lambda x, g, o: color(x, g),
    "translation": lambda x, g, o: random_translation(x, g, o.translation_ratio),
    "cutout": lambda x, g, o: random_cutout(x, g, o.cutout_ratio),
}


@dataclass(frozen=True)
class DiffAugmentOptions:
    policy: tuple[str, ...] = ("color", "translation", "cutout")
    translation_ratio: float = 0.125  # largest shift, as a fraction of the side
    cutout_ratio: float = 0.5  # side of the zeroed square, as a fraction of the side

    def __post_init__(self) -> None:
        object.__setattr__(self, "policy", tuple(self.policy))  # YAML gives a list
        unknown = [name for name in self.policy if name not in POLICIES]
        if unknown or len(set(self.policy)) != len(self.policy):
            expected = f"distinct names among {sorted(POLICIES)}"
            raise ConfigError(f"{KEY}.policy", list(self.policy), expected)
        _check_fraction("translation_ratio", self.translation_ratio, upper_open=True)
        _check_fraction("cutout_ratio", self.cutout_ratio, upper_open=False)


def _check_fraction(name: str, value: float, upper_open: bool) -> None:
    # a shift of a whole side would move every pixel out; a cutout of the whole side is legal
    ok = math.isfinite(value) and value >= 0 and (value < 1 if upper_open else value <= 1)
    if not ok:
        expected = "a number in [0, 1)" if upper_open else "a number in [0, 1]"
        raise ConfigError(f"{KEY}.{name}", value, expected)


@AUGMENTS.register("diffaugment")
class DiffAugment(Augmentation):
    Options = DiffAugmentOptions

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        for name in self.options.policy:
            x = POLICIES[name](x, generator, self.options)
        return x
