"""PConv: perturbed convolutions in the discriminator.

Park, Yeo, Shin, "PConv: Simple yet Effective Convolutional Layer for Generative Adversarial
Network", Neural Computing and Applications 2022; arXiv 2101.10841 (v1 titled "Generative
Adversarial Network using Perturbed-Convolutions"). No official code was found; this is an
independent implementation: no line follows an official file.
``tests/test_conformance_pconv.py`` checks D and G losses and gradients on StyleGAN2 against
forward hooks written from the definition below.

Confirmed (from the abstracts only; the paper's body was not available to us): a convolution
layer for D that randomly disturbs its input tensor before convolving, during training only,
"like the dropout"; the journal abstract says the layer "performs not only a convolution
operation but also a dropout one" and lists "Dropout" as a keyword. Aims: small local
Lipschitz constants of D's layers and less memorisation of the training set by D. Reported:
tiny-ImageNet FID 58.59 -> 50.42 (v1 abstract).

Interpreted (not confirmed):
- which layers: D's ``nn.Conv2d`` modules except the first one, which sees the image itself
  (``layers="all_but_first"``), or all of them (``layers="all"``); "first" is the first in
  module registration order, which is the forward order for sequential bodies like DCGAN's;
- the perturbation: an element-wise Bernoulli mask keeping each input element with
  probability 1 - rate, kept elements divided by 1 - rate (inverted dropout), so that the
  expected input, hence the eval-mode convolution, matches training;
- the rate: 0.1 (our choice, no source: mild enough that D still separates reals from fakes
  after several perturbed layers); a rate of 0 makes the layer a plain convolution;
- the perturbation applies whenever D runs in training mode: D on reals, D on fakes, G step;
- on StyleGAN2 (whose equalized-lr layers hold a plain ``nn.Conv2d``, see
  :mod:`adaptivemix.models.stylegan2_layers`) the first convolution is fromRGB's; there are
  8 at 16 px (fromRGB, conv0/conv1/skip per block, the epilogue's conv, which sits in
  ``D.head``). The perturbed tensor is what that ``nn.Conv2d`` receives: the activation
  times the layer's weight gain 1/√fan_in and, for a 2× down-sampling layer, after the
  low-pass filter. Dropout is unaffected by that scale; Gaussian noise of std ``rate`` is
  then std ``rate``·√fan_in on the activation itself (e.g. ×48 for a 3×3 conv over 256
  channels), so the ``gaussian`` rate is not comparable across architectures.

Knobs: ``rate``; ``distribution`` ("dropout" | "gaussian": additive noise x + rate * N(0, 1),
whatever the scale of x); ``rescale`` (dropout only: False keeps kept elements unscaled);
``layers`` ("all_but_first" | "all"). In eval mode a perturbed layer is exactly the plain
convolution. Every random draw comes from the run's generator (``StepContext.generator``),
bound to the layers by :meth:`PConv.discriminate`; masks are drawn per element of the batched
input, so samples stay independent (``D.per_sample_features`` is kept).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from adaptivemix.errors import ConfigError
from adaptivemix.gan.methods import (
    METHODS,
    Discrimination,
    GanMethod,
    IncompatibleError,
    RunEnv,
    StepContext,
)

DISTRIBUTIONS = ("dropout", "gaussian")
LAYERS = ("all_but_first", "all")
KEY = "gan.method_options.pconv"


@dataclass(frozen=True)
class PConvOptions:
    rate: float = 0.1  # dropout: probability of zeroing an element; gaussian: noise std
    distribution: str = "dropout"  # dropout | gaussian (additive)
    rescale: bool = True  # dropout only: divide kept elements by 1 - rate
    layers: str = "all_but_first"  # D's nn.Conv2d with a perturbed input: all_but_first | all

    def __post_init__(self):
        if self.distribution not in DISTRIBUTIONS:
            raise ConfigError(f"{KEY}.distribution", self.distribution, f"one of {DISTRIBUTIONS}")
        upper = 1.0 if self.distribution == "dropout" else math.inf
        if not 0.0 <= self.rate < upper:  # also refuses NaN
            span = "in [0, 1) for dropout" if upper == 1.0 else "finite and >= 0"
            raise ConfigError(f"{KEY}.rate", self.rate, f"a number {span}")
        if not isinstance(self.rescale, bool):
            raise ConfigError(f"{KEY}.rescale", self.rescale, "true or false")
        if self.layers not in LAYERS:
            raise ConfigError(f"{KEY}.layers", self.layers, f"one of {LAYERS}")


def perturb(x: torch.Tensor, options: PConvOptions, generator: torch.Generator) -> torch.Tensor:
    """``x`` randomly disturbed, one draw per element of ``x``, all from ``generator``.

    Dropout keeps an element where ``U >= rate`` for ``U ~ Uniform[0, 1)`` drawn with
    ``torch.rand(x.shape)``; the draws are made on the generator's device (it may differ from
    the data's) and then moved, so the stream depends on the seed alone.
    """
    if options.rate == 0.0:
        return x
    if options.distribution == "gaussian":
        noise = torch.randn(x.shape, generator=generator, device=generator.device)
        return x + options.rate * noise.to(x)
    scale = 1.0 / (1.0 - options.rate) if options.rescale else 1.0
    uniform = torch.rand(x.shape, generator=generator, device=generator.device)
    # In place: the draws become the 0/1 mask then the factor, without more allocations;
    # the factor is scaled in x's dtype, so kept elements are exactly x * scale.
    return x * uniform.ge_(options.rate).to(x).mul_(scale)


class PerturbedConv2d(nn.Conv2d):
    """An ``nn.Conv2d`` whose input is perturbed in training mode; plain in eval mode."""

    options: PConvOptions
    generator: torch.Generator | None

    @classmethod
    def convert(cls, conv: nn.Conv2d, options: PConvOptions) -> PerturbedConv2d:
        """Turn ``conv`` itself into a perturbed convolution.

        The class is swapped in place rather than the module rebuilt: the very Parameter
        objects, buffers, hooks and state-dict keys stay, so checkpoints, optimizers and
        anything holding a reference to the layer cannot tell the difference.
        """
        conv.__class__ = cls
        conv.options, conv.generator = options, None
        return conv

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training and self.options.rate > 0:
            x = perturb(x, self.options, self._bound_generator())
        return super().forward(x)

    def _bound_generator(self) -> torch.Generator:
        # Falling back to the global RNG would make runs depend on unrelated draws.
        if self.generator is None:
            raise RuntimeError(
                "PerturbedConv2d ran in training mode with no generator bound; call "
                "bind_generator(D, generator) first (PConv.discriminate does), or use D.eval()"
            )
        return self.generator

    def extra_repr(self) -> str:
        o = self.options
        return f"{super().extra_repr()}, perturb={o.distribution}(rate={o.rate})"


def bind_generator(D: nn.Module, generator: torch.Generator) -> int:
    """Make every perturbed layer of D draw from ``generator``; returns how many there are."""
    layers = [m for m in D.modules() if isinstance(m, PerturbedConv2d)]
    for layer in layers:
        layer.generator = generator
    return len(layers)


def convs_to_perturb(D: nn.Module, layers: str) -> list[nn.Conv2d]:
    """The convolutions of D that PConv perturbs under the ``layers`` option.

    Only modules whose type is exactly ``nn.Conv2d`` (or already perturbed) are taken: a
    subclass may have its own forward (e.g. a parametrisation) that a class swap would drop.
    """
    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d)]
    if layers == "all_but_first":
        convs = convs[1:]
    return [m for m in convs if type(m) in (nn.Conv2d, PerturbedConv2d)]


@METHODS.register("pconv")
class PConv(GanMethod):
    Options = PConvOptions

    def check_compatible(self, G: nn.Module, D: nn.Module) -> None:
        super().check_compatible(G, D)
        if not convs_to_perturb(D, self.options.layers):
            found = sum(isinstance(m, nn.Conv2d) for m in D.modules())
            raise IncompatibleError(
                f"PConv perturbs the inputs of D's plain nn.Conv2d layers, but D of type "
                f"{type(D).__name__} has none to perturb with layers={self.options.layers!r} "
                f"({found} nn.Conv2d or subclass found)"
            )

    def prepare(self, G: nn.Module, D: nn.Module, env: RunEnv) -> tuple[nn.Module, nn.Module]:
        self.check_compatible(G, D)
        for conv in convs_to_perturb(D, self.options.layers):
            PerturbedConv2d.convert(conv, self.options)
        return G, D

    def discriminate(
        self, D: nn.Module, x: torch.Tensor, phase: str, ctx: StepContext
    ) -> Discrimination:
        # Bound per call (cheap) so that the current run's generator is always the one used;
        # it stays bound afterwards so D called elsewhere in the step (e.g. by an
        # augmentation's update) still draws from the run's generator.
        bind_generator(D, ctx.generator)
        return super().discriminate(D, x, phase, ctx)
