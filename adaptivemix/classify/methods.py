"""Classification training methods: a registry of losses the classifier trainer calls.

A method turns one augmented batch into a scalar loss (and named scalars to log). The
trainer knows nothing else about it, exactly as the GAN trainer knows GAN methods only
through their hooks. Options come from ``classify.method_options.<name>``.

Every classifier the trainer builds follows one protocol (see
:class:`adaptivemix.classify.wrn.TrunkClassifier`): inputs are pixels in [0, 1]
(normalisation is inside the model, so attacks act on pixels), ``features(x)`` gives the
per-sample embedding the head reads (L2-normalised with the orthogonal head),
``pooled_features(x)`` the pooled trunk output before that normalisation (what the OOD
feature detectors read), ``head(f)`` the logits, and ``to_point(x, k)`` /
``from_point(h, k)`` split the trunk at mixing point ``k`` (0 = input) for feature-level
mixing.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from adaptivemix.options import Configurable
from adaptivemix.registry import Registry

#: name -> ClsMethod subclass
CLS_METHODS: Registry = Registry("classification method")
OPTIONS_SECTION = "classify.method_options"


@dataclass
class ClsBatch:
    x: torch.Tensor  # (N, C, H, W) pixels in [0, 1], already augmented (crop, flip)
    y: torch.Tensor  # (N,) int64 labels
    num_classes: int
    generator: torch.Generator  # the run's stream: every random draw of a method uses it


class ClsMethod(Configurable):
    """Base: empirical risk minimisation (cross-entropy on the batch as it is)."""

    def loss(self, model: nn.Module, batch: ClsBatch) -> tuple[torch.Tensor, dict[str, float]]:
        loss = F.cross_entropy(model(batch.x), batch.y)
        return loss, {"loss_ce": float(loss.detach())}


@CLS_METHODS.register("erm")
class ERM(ClsMethod):
    """Empirical risk minimisation: the baseline every table compares against."""


def build_cls_method(name: str, options: dict | None = None) -> ClsMethod:
    return CLS_METHODS.get(name, "classify.methods").from_config(name, options, OPTIONS_SECTION)
