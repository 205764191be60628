"""The Wide-ResNet of the AdaptiveMix classification code, registered as ``wrn-official``.

Liu, Zhang, et al., "Improving GAN Training via Feature Space Shrinkage", CVPR 2023, arXiv
2303.01559; reference code github.com/WentianZhang-ML/AdaptiveMix, ``classification/models.py``
(``wide_basic``, ``Wide_ResNet_orthognal``, ``OverfittingNet``), itself following the network
of Zaeemzadeh et al. (github.com/zaeemzadeh/OOD, ``wideresnet_UoS.py``). Independent code.

Followed from ``models.py``:
  - every convolution has a bias (the 3×3 stem, both 3×3 convolutions of a block and the
    1×1 shortcut);
  - block: ``conv2(relu(bn2(conv1(relu(bn1(x)))))) + shortcut(x)`` with the stride on
    ``conv2`` (``conv1`` keeps the resolution), and the shortcut taken from the block's raw
    input ``x`` (identity, or a biased 1×1 convolution with the stride when width or
    resolution change);
  - no BatchNorm + ReLU after the last group: the pooled features can be negative (the
    network of ``models.py`` defines a ``bn1`` that its forward never calls; Zaeemzadeh et
    al. commented theirs out, since non-negative features all lie in one orthant);
  - initialisation: conv weights N(0, 2 / (k·k·out_channels)), conv biases left at PyTorch's
    default, BatchNorm weight 1 and bias 0 (default momentum 0.1), the head orthogonal with
    gain 1; dropout 0 (``dropout_rate`` is never set by ``train.py``).
  - the embedding is the pooled last group, L2-normalised; the logits of the orthogonal head
    are ``|W·f|`` (``head="orthogonal"``, :class:`adaptivemix.classify.wrn.OrthogonalHead`).

Our choices, which leave the function at 32×32 pixels unchanged:
  - the unused ``bn1`` is left out (1,280 parameters of WRN-28-10 that no forward touches
    and no step updates; an unused parameter would also trip DistributedDataParallel);
  - global average pooling instead of ``avg_pool2d(out, 8)`` (the same at 32 px, where the
    last map is 8×8; any resolution works);
  - ``in_channels`` inputs (upstream: 3) and the per-channel normalisation of
    ``OverfittingNet`` as buffers of the model (pixels in [0, 1] in, as upstream);
  - ``head="linear"`` (an ``nn.Linear`` with bias on the un-normalised pooled features) is
    offered for comparison; upstream has the orthogonal head only.
WRN-28-10, 10 classes, orthogonal head: 36,488,000 parameters (36,481,600 trainable),
1,280 fewer than the 36,489,280 of ``Wide_ResNet_orthognal(28, 10, 10)`` with its unused ``bn1``.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from adaptivemix.classify.wrn import CLS_ARCHS, TrunkClassifier, check_wrn_args


class OfficialBlock(nn.Module):
    """BN-ReLU-conv3×3-BN-ReLU-conv3×3(stride), plus the shortcut of the raw input."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, 1, 1, bias=True)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, stride, 1, bias=True)
        self.shortcut = None
        if stride != 1 or in_channels != out_channels:
            self.shortcut = nn.Conv2d(in_channels, out_channels, 1, stride, 0, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(F.relu(self.bn2(self.conv1(F.relu(self.bn1(x))))))
        return y + (x if self.shortcut is None else self.shortcut(x))


class OfficialWideResNet(TrunkClassifier):
    """WRN-depth-widen as the AdaptiveMix classification code builds it."""

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
        self.stem = nn.Conv2d(in_channels, widths[0], 3, 1, 1, bias=True)
        self.groups = nn.ModuleList()
        for i, stride in enumerate((1, 2, 2)):
            blocks = [OfficialBlock(widths[i], widths[i + 1], stride)]
            blocks += [OfficialBlock(widths[i + 1], widths[i + 1], 1) for _ in range(n - 1)]
            self.groups.append(nn.Sequential(*blocks))
        self._init_trunk()
        self._build_head()

    def _init_trunk(self) -> None:
        if self.stem.weight.is_meta:
            return  # structure only (the config check): see WideResNet._init_trunk
        for m in self.modules():
            if isinstance(m, nn.Conv2d):  # N(0, 2 / (k·k·out)); the bias keeps its default
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def pool(self, h: torch.Tensor) -> torch.Tensor:
        return h.mean(dim=(2, 3))  # no BN-ReLU: features keep their sign


@CLS_ARCHS.register("wrn-official")
def build_wrn_official(
    num_classes: int,
    in_channels: int = 3,
    depth: int = 28,
    widen: int = 10,
    head: str = "orthogonal",
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
) -> OfficialWideResNet:
    """The official WRN-``depth``-``widen``; ``mean``/``std`` default to 0/1."""
    mean = [0.0] * in_channels if mean is None else mean
    std = [1.0] * in_channels if std is None else std
    return OfficialWideResNet(num_classes, in_channels, depth, widen, head, mean, std)
