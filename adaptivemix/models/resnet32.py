"""The CIFAR-10 ResNet of Gulrajani et al., "Improved Training of Wasserstein GANs" (NeurIPS
2017, arXiv 1704.00028, appendix; official code igul222/improved_wgan_training,
``gan_cifar_resnet.py``), the WGAN-GP architecture AdaptiveMix trains on CIFAR-10.

Followed from the paper and its official code (32×32, z of 128, 128 channels throughout):

- G: dense z -> 4·4·128 (no normalisation after it); 3 "up" residual blocks; BN, ReLU,
  conv 3×3 to the image channels, tanh. An up block: BN, ReLU, nearest 2× upsampling, conv
  3×3, BN, ReLU, conv 3×3; shortcut = 2× upsampling then a 1×1 conv (with bias).
- D (no normalisation): an "optimized" first block (conv 3×3, ReLU, conv 3×3, 2×2 mean pool;
  shortcut = mean pool then 1×1 conv), a "down" block (ReLU, conv 3×3, ReLU, conv 3×3, mean
  pool; shortcut = 1×1 conv then mean pool), two plain blocks (identity shortcut); then ReLU,
  global mean pooling and a dense layer to 1. Every conv and dense layer has a bias.

Our interpretation and differences:

- Generic over the resolution 4·2^k (k ≥ 1): G has k up blocks; D keeps its four blocks, the
  first two halving the side, so its last map is at a quarter of the image side (8×8 at 32).
- Width mapping: ``g_width`` / ``d_width`` are the channels of every G / D block; 128 is the
  published net. The option ``pool`` picks D's global pooling: ``mean`` (Gulrajani et al.,
  default) or ``sum`` (the SNGAN ResNets of Miyato et al. 2018).
- Weights use PyTorch's default initialisation, not the official code's He/Glorot uniform.
- D's ``features`` are the last block's output; ``head`` = ReLU, global pooling, dense (so the
  head is non-linear, as the StyleGAN2 epilogue that AdaptiveMix treats as the head).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from adaptivemix.models.base import register_arch
from adaptivemix.models.cnn32 import num_stages
from adaptivemix.models.staged import StagedGenerator

BASE_RESOLUTION = 4
POOLS = ("mean", "sum")


@dataclass(frozen=True)
class ResNetOptions:
    pool: str = "mean"  # D's global pooling before the dense layer: mean | sum

    def __post_init__(self):
        if self.pool not in POOLS:
            raise ValueError(f"pool: one of {list(POOLS)}")


def upsample(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


def mean_pool(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, 2)


def conv3(c_in: int, c_out: int) -> nn.Conv2d:
    return nn.Conv2d(c_in, c_out, 3, padding=1)


class UpBlock(nn.Module):
    """G's residual block with 2× nearest upsampling and batch norm."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.norm1 = nn.BatchNorm2d(c_in)
        self.conv1 = conv3(c_in, c_out)
        self.norm2 = nn.BatchNorm2d(c_out)
        self.conv2 = conv3(c_out, c_out)
        self.shortcut = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv1(upsample(torch.relu(self.norm1(x))))
        h = self.conv2(torch.relu(self.norm2(h)))
        return self.shortcut(upsample(x)) + h


class OptimizedBlock(nn.Module):
    """D's first block: no activation before its first conv, pooling before the shortcut."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv1 = conv3(c_in, c_out)
        self.conv2 = conv3(c_out, c_out)
        self.shortcut = nn.Conv2d(c_in, c_out, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = mean_pool(self.conv2(torch.relu(self.conv1(x))))
        return self.shortcut(mean_pool(x)) + h


class DownBlock(nn.Module):
    """D's residual block, optionally halving the side (mean pool after the convs)."""

    def __init__(self, c_in: int, c_out: int, down: bool):
        super().__init__()
        self.down = down
        self.conv1 = conv3(c_in, c_in)
        self.conv2 = conv3(c_in, c_out)
        learned = down or c_in != c_out
        self.shortcut = nn.Conv2d(c_in, c_out, 1) if learned else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv2(torch.relu(self.conv1(torch.relu(x))))
        s = self.shortcut(x)
        return (mean_pool(h) + mean_pool(s)) if self.down else h + s


class Generator(StagedGenerator):
    def __init__(self, resolution: int, channels: int, z_dim: int, width: int):
        super().__init__()
        n_up = num_stages(resolution)
        self.z_dim = z_dim
        self.stage_resolutions = [BASE_RESOLUTION * 2**i for i in range(n_up + 1)]
        self.stage_channels = {r: width for r in self.stage_resolutions}
        self.stem_fc = nn.Linear(z_dim, width * BASE_RESOLUTION**2)
        self.blocks = nn.ModuleDict(
            {str(r): UpBlock(width, width) for r in self.stage_resolutions[1:]}
        )
        self.out_norm = nn.BatchNorm2d(width)
        self.to_image = conv3(width, channels)

    def stem(self, z: torch.Tensor) -> torch.Tensor:
        return self.stem_fc(z).view(z.shape[0], -1, BASE_RESOLUTION, BASE_RESOLUTION)

    def image_from(self, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.to_image(torch.relu(self.out_norm(h))))


class Discriminator(nn.Module):
    per_sample_features = True

    def __init__(self, resolution: int, channels: int, width: int, pool: str = "mean"):
        super().__init__()
        num_stages(resolution)
        self.pool = pool
        self.blocks = nn.ModuleList(
            [
                OptimizedBlock(channels, width),
                DownBlock(width, width, down=True),
                DownBlock(width, width, down=False),
                DownBlock(width, width, down=False),
            ]
        )
        last = resolution // 4
        self.stage_channels = {resolution // 2: width, last: width}
        self.feature_shape = (width, last, last)
        self.head_out = nn.Linear(width, 1)

    def feature_maps(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """The last block's output at each resolution; the smallest equals ``features(x)``."""
        maps = {}
        for block in self.blocks:
            x = block(x)
            maps[x.shape[-1]] = x
        return maps

    def features(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)
        return x

    def head(self, f: torch.Tensor) -> torch.Tensor:
        h = torch.relu(f)
        h = h.sum((2, 3)) if self.pool == "sum" else h.mean((2, 3))
        return self.head_out(h).squeeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register_arch("resnet-wgangp", options=ResNetOptions)
def build_resnet_wgangp(
    resolution: int, channels: int, z_dim: int, g_width: int, d_width: int, options=None
) -> tuple[Generator, Discriminator]:
    pool = (options or ResNetOptions()).pool
    return Generator(resolution, channels, z_dim, g_width), Discriminator(
        resolution, channels, d_width, pool
    )
