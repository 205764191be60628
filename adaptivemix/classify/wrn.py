"""Wide residual networks for the classification experiments, registered in :data:`CLS_ARCHS`.

Zagoruyko & Komodakis, "Wide Residual Networks", BMVC 2016, arXiv 1605.07146. WRN-d-k:
depth ``d = 6n + 4`` (n pre-activation basic blocks per group), a 3×3 stem of 16 channels,
three groups of widths 16k, 32k, 64k with strides 1, 2, 2, global average pooling and the
classifier. Dropout is 0, as in the AdaptiveMix classification code.

Two architectures share the classifier protocol of :class:`TrunkClassifier`:

- ``wrn`` (this file, ours): the paper's reference model: bias-free convolutions, the stride
  on a block's first convolution, a 1×1 projection of the pre-activated input when a block
  changes width or resolution, and a final BN-ReLU before pooling (WRN-28-10 for 10 classes:
  36,479,194 parameters with the linear head).
- ``wrn-official`` (:mod:`adaptivemix.classify.wrn_official`): the network of the AdaptiveMix
  classification code, with biased convolutions, the stride on the second convolution and no
  final BN-ReLU; the paper profile trains it.

Classifier (``head``):

- ``"linear"``: ``nn.Linear`` with bias on the pooled features.
- ``"orthogonal"``: the classifier of Zaeemzadeh et al., "Out-of-Distribution Detection Using
  Union of 1-Dimensional Subspaces", CVPR 2021, used by the AdaptiveMix classification code:
  features are L2-normalised, the classifier is a bias-free linear map with orthogonally
  initialised rows (gain 1), frozen (``requires_grad`` False), and the logits are ``|W·f|``
  (no scaling: each logit lies in [0, 1]).

Inputs are pixels in [0, 1]; the per-channel ``mean``/``std`` are buffers and normalisation
happens inside the model, so attacks perturb pixels. Example::

    model = CLS_ARCHS.get("wrn")(10, 3, 28, 10, "orthogonal", mean, std)
    logits = model(x)  # == model.head(model.features(x))
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from adaptivemix.registry import Registry

#: name -> builder(num_classes, in_channels, depth, widen, head, mean, std) -> nn.Module
CLS_ARCHS: Registry = Registry("classifier architecture")
HEADS = ("linear", "orthogonal")


class BasicBlock(nn.Module):
    """Pre-activation block: BN-ReLU-conv3×3(stride)-BN-ReLU-conv3×3, plus the shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.projection = None
        if stride != 1 or in_channels != out_channels:
            self.projection = nn.Conv2d(in_channels, out_channels, 1, stride, 0, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o = F.relu(self.bn1(x))
        y = self.conv2(F.relu(self.bn2(self.conv1(o))))
        # the projection sees the pre-activated input, as in the reference WRN
        return y + (x if self.projection is None else self.projection(o))


class OrthogonalHead(nn.Module):
    """Frozen bias-free linear map with orthogonal rows; logits are absolute values."""

    def __init__(self, feature_dim: int, num_classes: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, feature_dim), requires_grad=False)
        nn.init.orthogonal_(self.weight)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return F.linear(f, self.weight).abs()


def check_wrn_args(depth: int, widen: int, head: str, in_channels: int, mean, std) -> int:
    """Refuse a bad WRN configuration; return the blocks per group ``n``."""
    if depth < 10 or (depth - 4) % 6 != 0:
        raise ValueError(f"depth must be 6n + 4 with n ≥ 1 (10, 16, 22, 28, ...), got {depth}")
    if widen < 1:
        raise ValueError(f"widen must be an integer ≥ 1, got {widen}")
    if head not in HEADS:
        raise ValueError(f"head must be one of {list(HEADS)}, got {head!r}")
    if len(mean) != in_channels or len(std) != in_channels:
        raise ValueError(f"mean and std need {in_channels} values (one per channel)")
    if min(std) <= 0:
        raise ValueError(f"std must be positive, got {list(std)}")
    return (depth - 4) // 6


class TrunkClassifier(nn.Module):
    """The classifier protocol every classification method and detector relies on.

    ``features(x)`` -> (N, D) embedding the head reads (unit-norm with the orthogonal head),
    ``pooled_features(x)`` -> the pooled trunk output before that normalisation (the
    ``out_feat`` the OOD code of Zaeemzadeh et al. extracts; equal to ``features`` with the
    linear head), ``head(f)`` -> logits, ``to_point(x, k)`` / ``from_point(h, k)`` split the
    trunk at mixing point ``k``: 0 = the normalised input, 1 = after group 1, 2 = after
    group 2. Subclasses build ``stem`` and ``groups`` and define :meth:`pool`.
    """

    n_mix_points = 3

    def __init__(self, num_classes: int, feature_dim: int, head: str, mean, std):
        super().__init__()
        self.num_classes, self.feature_dim, self.head_kind = num_classes, feature_dim, head
        self.register_buffer(
            "mean", torch.tensor(list(mean), dtype=torch.float32).view(1, -1, 1, 1)
        )
        self.register_buffer("std", torch.tensor(list(std), dtype=torch.float32).view(1, -1, 1, 1))

    def _build_head(self) -> None:
        """Add the head last, so that it follows the trunk in the module order."""
        if self.head_kind == "linear":
            self.head = nn.Linear(self.feature_dim, self.num_classes)
            nn.init.zeros_(self.head.bias)
        else:
            self.head = OrthogonalHead(self.feature_dim, self.num_classes)

    def pool(self, h: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) output of the last group -> (N, C) pooled features."""
        raise NotImplementedError

    def to_point(self, x: torch.Tensor, k: int) -> torch.Tensor:
        """The activation at mixing point ``k`` for pixels ``x`` in [0, 1]."""
        self._check_point(k)
        h = (x - self.mean) / self.std
        if k == 0:
            return h
        h = self.stem(h)
        for group in self.groups[:k]:
            h = group(h)
        return h

    def pooled_from_point(self, h: torch.Tensor, k: int) -> torch.Tensor:
        """The rest of the trunk from mixing point ``k``, pooled, before any normalisation."""
        self._check_point(k)
        if k == 0:
            h = self.stem(h)
        for group in self.groups[k:]:
            h = group(h)
        return self.pool(h)

    def from_point(self, h: torch.Tensor, k: int) -> torch.Tensor:
        """The rest of the trunk from mixing point ``k`` up to and including the features."""
        f = self.pooled_from_point(h, k)
        return F.normalize(f, dim=1) if self.head_kind == "orthogonal" else f

    def pooled_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pooled_from_point(self.to_point(x, 0), 0)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.from_point(self.to_point(x, 0), 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    def _check_point(self, k: int) -> None:
        if not 0 <= k < self.n_mix_points:
            raise ValueError(f"mixing point must be in [0, {self.n_mix_points}), got {k}")


class WideResNet(TrunkClassifier):
    """Our WRN-depth-widen (the reference model of the WRN paper), see the module docstring."""

    def __init__(
        self,
        num_classes: int,
        in_channels: int,
        depth: int,
        widen: int,
        head: str,
        mean: Sequence[float],
        std: Sequence[float],
    ):
        n = check_wrn_args(depth, widen, head, in_channels, mean, std)
        widths = [16, 16 * widen, 32 * widen, 64 * widen]
        super().__init__(num_classes, widths[3], head, mean, std)
        self.stem = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=False)
        self.groups = nn.ModuleList(
            _group(widths[i], widths[i + 1], n, stride) for i, stride in enumerate((1, 2, 2))
        )
        self.bn = nn.BatchNorm2d(widths[3])
        self._init_trunk()
        self._build_head()

    def _init_trunk(self) -> None:
        if self.stem.weight.is_meta:
            # structure only (the config check): nothing to draw, and drawing on meta tensors
            # imports torch's compiler stack (seconds of every `snakemake` call)
            return
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # He-normal (fan-out), as the AdaptiveMix code
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def pool(self, h: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(F.relu(self.bn(h)), 1).flatten(1)


def _group(in_channels: int, out_channels: int, n: int, stride: int) -> nn.Sequential:
    blocks = [BasicBlock(in_channels, out_channels, stride)]
    blocks += [BasicBlock(out_channels, out_channels, 1) for _ in range(n - 1)]
    return nn.Sequential(*blocks)


@CLS_ARCHS.register("wrn")
def build_wrn(
    num_classes: int,
    in_channels: int = 3,
    depth: int = 28,
    widen: int = 10,
    head: str = "linear",
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> WideResNet:
    """WRN-``depth``-``widen``; ``mean``/``std`` default to 0/1 (no normalisation)."""
    mean = [0.0] * in_channels if mean is None else mean
    std = [1.0] * in_channels if std is None else std
    return WideResNet(num_classes, in_channels, depth, widen, head, mean, std)
