"""ADA: adaptive discriminator augmentation with a probability ``p`` tuned from D's outputs.

Paper: Karras, Aittala, Hellsten, Laine, Lehtinen and Aila, "Training Generative
Adversarial Networks with Limited Data", NeurIPS 2020, arXiv 2006.06676 (official code:
NVlabs/stylegan2-ada-pytorch).

Followed from the paper and official code, on images in [-1, 1]: each op below is switched
on per sample with probability ``p``, with upstream's parameters and order:

- x-flip: when on, flips with probability 1/2 (so an image is flipped with prob. ``p/2``);
- 90° rotation: when on, by ``k * 90°`` with ``k`` uniform in {0, 1, 2, 3} (square images);
- integer translation: ``round(t * side)`` pixels per axis, ``t ~ U(-1/8, 1/8)``, with
  reflection padding as upstream pads before warping;
- brightness ``x + b``, ``b ~ N(0, 0.2²)``; contrast ``x * c``, ``c = 2^(0.5 N(0, 1))``, i.e.
  lognormal(0, (0.5 ln 2)²), about 0 (mid-grey in [-1, 1]) as upstream;
- saturation ``(x - m_c) * s + m_c`` (``m_c`` the channel mean, ``s = 2^N(0, 1)``), only for
  3-channel images, where upstream also applies it.

Left out: isotropic and anisotropic scaling, arbitrary rotation and fractional translation
need resampling (upstream: 2× upsampling, ``grid_sample`` and a low-pass filter), which
interpolates pixels, so it is neither exact nor cheap, and blurs 16–32 px images. Hue
rotation does nothing to 1-channel images (upstream skips it there too) and luma flip turns
them into ``-x``; both are left out by choice, to keep the subset to pixel moves and the
three scalar colour ops (on RGB data they would be exact linear maps and could be added).
So this is "bgc" minus those six ops. Upstream runs even the integer ops through its
resampling path; here they are exact re-indexings (``flip``, ``rot90``, ``gather``).

Adaptation, as upstream: every ``interval`` steps, ``r_t = E[sign(D(augment(real)))]`` and
``p <- clip(p + sign(r_t - target) * batch * interval / (ada_kimg * 1000), 0, 1)``. Our
interpretation: upstream averages the signs of the logits of every D step since the last
adjustment; we measure ``r_t`` with one extra no-grad D pass on the current augmented real
batch (D's mode untouched, no graph). Upstream only floors ``p`` at 0; we also cap it at 1.
All draws come from the run's generator; with ``p == 0`` the input is returned unchanged.

Options (``gan.method_options.ada``): ``target`` (0.6), ``interval`` (4 steps), ``ada_kimg``
(500: thousands of images for ``p`` to move by 1), ``initial_p`` (0).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from adaptivemix.errors import ConfigError
from adaptivemix.gan.augment import AUGMENTS, Augmentation
from baselines.diffaugment import draw_int, translate

KEY = "gan.method_options.ada"
TRANSLATE_MAX = 0.125  # largest shift as a fraction of the side (upstream xint_max)
BRIGHTNESS_STD, CONTRAST_LOG2_STD, SATURATION_LOG2_STD = 0.2, 0.5, 1.0


def _on(n: int, p: float, generator: torch.Generator, device) -> torch.Tensor:
    """Per-sample Bernoulli(p) switches, shaped (n, 1, 1, 1)."""
    u = torch.rand(n, generator=generator, device=generator.device)
    return (u < p).to(device).view(n, 1, 1, 1)


def _normal(n: int, generator: torch.Generator, x: torch.Tensor) -> torch.Tensor:
    z = torch.randn(n, generator=generator, device=generator.device, dtype=x.dtype)
    return z.to(x.device).view(n, 1, 1, 1)


def flip_rotate(x: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    n = x.shape[0]
    flip = draw_int(0, 1, n, generator, x.device).view(n, 1, 1, 1).bool()
    x = torch.where(flip & _on(n, p, generator, x.device), x.flip(-1), x)
    k = draw_int(0, 3, n, generator, x.device).view(n, 1, 1, 1)
    k = k * _on(n, p, generator, x.device)
    # k = 2a + b: a quarter turn where b, then a half turn where a
    x = torch.where(k % 2 == 1, x.rot90(1, dims=(-2, -1)), x)
    return torch.where(k >= 2, x.flip(-2, -1), x)


def integer_translation(x: torch.Tensor, p: float, generator: torch.Generator):
    n, _, h, w = x.shape
    t = torch.rand(n, 2, generator=generator, device=generator.device) * 2 - 1
    t = t * TRANSLATE_MAX * _on(n, p, generator, generator.device).view(n, 1)
    dx = torch.round(t[:, 0] * w).long().to(x.device)
    dy = torch.round(t[:, 1] * h).long().to(x.device)
    pad = math.floor(max(h, w) * TRANSLATE_MAX + 0.5)  # bounds |round(t * side)|
    return translate(x, dy, dx, pad, "reflect")


# colour ops: ``torch.where`` (not a blend with 0/1) keeps switched-off samples bit-exact


def brightness(x: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    b = _normal(x.shape[0], generator, x) * BRIGHTNESS_STD
    return torch.where(_on(x.shape[0], p, generator, x.device), x + b, x)


def contrast(x: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    c = torch.exp2(_normal(x.shape[0], generator, x) * CONTRAST_LOG2_STD)
    return torch.where(_on(x.shape[0], p, generator, x.device), x * c, x)


def saturation(x: torch.Tensor, p: float, generator: torch.Generator) -> torch.Tensor:
    if x.shape[1] != 3:
        return x  # no colour to scale: no draws either
    s = torch.exp2(_normal(x.shape[0], generator, x) * SATURATION_LOG2_STD)
    mean = x.mean(dim=1, keepdim=True)
    return torch.where(_on(x.shape[0], p, generator, x.device), (x - mean) * s + mean, x)


@dataclass(frozen=True)
class AdaOptions:
    target: float = 0.6  # r_t above it means D overfits: raise p
    interval: int = 4  # steps between adjustments of p
    ada_kimg: float = 500.0  # thousands of images for p to move from 0 to 1
    initial_p: float = 0.0

    def __post_init__(self) -> None:
        _require("target", self.target, math.isfinite(self.target) and 0 <= self.target <= 1)
        _require("interval", self.interval, self.interval >= 1, "an integer >= 1")
        kimg_ok = math.isfinite(self.ada_kimg) and self.ada_kimg > 0
        _require("ada_kimg", self.ada_kimg, kimg_ok, "a finite number > 0")
        _require("initial_p", self.initial_p, 0 <= self.initial_p <= 1)


def _require(name: str, value: object, ok: bool, expected: str = "a number in [0, 1]") -> None:
    if not ok:
        raise ConfigError(f"{KEY}.{name}", value, expected)


@AUGMENTS.register("ada")
class Ada(Augmentation):
    Options = AdaOptions

    def __init__(self, options: AdaOptions | None = None):
        super().__init__(options)
        self.p = float(self.options.initial_p)

    def __call__(self, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if self.p <= 0:
            return x  # nothing would be switched on; skip the draws and the work
        if x.shape[-1] != x.shape[-2]:
            raise ValueError(f"ADA's 90° rotations need square images, got {tuple(x.shape)}")
        x = flip_rotate(x, self.p, generator)
        x = integer_translation(x, self.p, generator)
        for op in (brightness, contrast, saturation):  # upstream's order
            x = op(x, self.p, generator)
        return x

    def update(
        self, D: nn.Module, real: torch.Tensor, step: int, generator: torch.Generator
    ) -> dict[str, float]:
        if step % self.options.interval != 0:
            return {"ada_p": self.p}
        with torch.no_grad():  # a measurement: no graph, no grads, D's mode left as it is
            logits = D.head(D.features(self(real, generator)))
        r_t = float(torch.sign(logits).mean())
        direction = (r_t > self.options.target) - (r_t < self.options.target)
        step_size = real.shape[0] * self.options.interval / (self.options.ada_kimg * 1000.0)
        self.p = min(max(self.p + direction * step_size, 0.0), 1.0)
        return {"ada_p": self.p, "ada_rt": r_t}

    def state_dict(self) -> dict:
        return {"p": self.p}  # r_t is re-measured, so p is all a resume needs

    def load_state_dict(self, state: dict) -> None:
        self.p = float(state.get("p", self.options.initial_p))
