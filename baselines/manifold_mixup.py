"""Manifold Mixup for classifiers: mixup of hidden states at a randomly chosen layer.

Paper: Verma, Lamb, Beckham, Najafi, Mitliagkas, Lopez-Paz, Bengio, "Manifold Mixup: Better
Representations by Interpolating Hidden States", ICML 2019, arXiv 1806.05236.
Confirmed (paper): per batch a layer k is drawn uniformly from an eligible set, the hidden
states at k are mixed with a shuffled copy of the batch, ``h' = λh + (1−λ)h[perm]`` with
λ ~ Beta(α, α), the rest of the network runs on ``h'`` and the loss is the mixup loss; for
CIFAR with pre-activation ResNets the set is {input, after the first group, after the second
group} and α = 2.0.
Mapping to our models: the eligible layers are the classifier's mixing points
(``model.to_point`` / ``model.from_point``; for the WRN 0 = normalised input, 1 = after
group 1, 2 = after group 2). Draw order from the run's generator: k, λ, permutation.
Knobs: ``alpha``, ``layers`` (the allowed mixing points; ``[0]`` is input Mixup with a random
permutation).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from adaptivemix.classify.adaptivemix import mixup_cross_entropy
from adaptivemix.classify.methods import CLS_METHODS, ClsBatch, ClsMethod
from adaptivemix.gan.random import sample_beta


@dataclass(frozen=True)
class ManifoldMixupOptions:
    alpha: float = 2.0  # λ ~ Beta(alpha, alpha)
    layers: tuple[int, ...] = (0, 1, 2)  # mixing points a batch may use, drawn uniformly

    def __post_init__(self):
        if not self.alpha > 0:
            raise ValueError("alpha: a number > 0")
        layers = self.layers
        if (
            not isinstance(layers, (list, tuple))
            or not layers
            or not all(isinstance(k, int) and not isinstance(k, bool) and k >= 0 for k in layers)
            or len(set(layers)) != len(layers)
        ):
            raise ValueError("layers: a non-empty list of distinct mixing points (integers ≥ 0)")
        object.__setattr__(self, "layers", tuple(layers))


@CLS_METHODS.register("manifold-mixup")
class ManifoldMixup(ClsMethod):
    Options = ManifoldMixupOptions

    def loss(self, model: nn.Module, batch: ClsBatch) -> tuple[torch.Tensor, dict[str, float]]:
        opt, gen, x, y = self.options, batch.generator, batch.x, batch.y
        if max(opt.layers) >= model.n_mix_points:
            raise ValueError(
                f"manifold-mixup layers {list(opt.layers)}: the model has mixing points "
                f"0..{model.n_mix_points - 1}"
            )
        index = int(torch.randint(len(opt.layers), (1,), generator=gen, device=gen.device))
        k = opt.layers[index]
        lam = sample_beta(opt.alpha, gen)
        perm = torch.randperm(x.shape[0], generator=gen, device=gen.device).to(x.device)
        h = model.to_point(x, k)
        h_mix = lam * h + (1.0 - lam) * h[perm]
        logits = model.head(model.from_point(h_mix, k))
        loss = mixup_cross_entropy(logits, y, y[perm], lam)
        return loss, {"loss_ce": float(loss.detach()), "lam": lam, "layer": float(k)}
