"""A small DCGAN-style generator and discriminator (Radford et al., ICLR 2016, arXiv 1511.06434).

Sized for the embedded digits profile (16×16 or 32×32 on a CPU). The discriminator has no
normalisation layer, so its features are per-sample (AdaptiveMix can permute features
instead of running a third pass). Its head mirrors the StyleGAN2 epilogue that the official
AdaptiveMix code treats as the head: a non-linear fc layer then the output layer, so that
``head(mix of features)`` differs from the mix of heads.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from adaptivemix.models.base import register_arch
from adaptivemix.models.staged import StagedGenerator

BASE_RESOLUTION = 4


def _num_up_blocks(resolution: int) -> int:
    n = math.log2(resolution / BASE_RESOLUTION)
    if n < 1 or n != int(n):
        raise ValueError(f"resolution must be 4·2^k with k ≥ 1, got {resolution}")
    return int(n)


class Generator(StagedGenerator):
    def __init__(self, resolution: int, channels: int, z_dim: int, width: int):
        super().__init__()
        n_up = _num_up_blocks(resolution)
        self.z_dim = z_dim
        self.stage_resolutions = [BASE_RESOLUTION * 2**i for i in range(n_up + 1)]
        top = width * 2**n_up
        self.stem_fc = nn.Linear(z_dim, top * BASE_RESOLUTION**2)
        self.stem_norm = nn.BatchNorm2d(top)
        self.blocks = nn.ModuleDict()
        self.stage_channels = {BASE_RESOLUTION: top}
        c = top
        for res in self.stage_resolutions[1:]:
            self.blocks[str(res)] = nn.Sequential(
                nn.ConvTranspose2d(c, c // 2, 4, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c // 2),
                nn.ReLU(inplace=True),
            )
            c //= 2
            self.stage_channels[res] = c
        self.to_image = nn.Conv2d(c, channels, 3, padding=1)

    def stem(self, z: torch.Tensor) -> torch.Tensor:
        h = self.stem_fc(z).view(z.shape[0], -1, BASE_RESOLUTION, BASE_RESOLUTION)
        return torch.relu(self.stem_norm(h))

    def image_from(self, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.to_image(h))


class Discriminator(nn.Module):
    per_sample_features = True

    def __init__(self, resolution: int, channels: int, width: int):
        super().__init__()
        n_down = _num_up_blocks(resolution)
        layers: list[nn.Module] = [nn.Conv2d(channels, width, 3, padding=1), nn.LeakyReLU(0.2)]
        c = width
        self.stage_channels = {resolution: width}  # channels of feature_maps(x)[res]
        for i in range(n_down):
            layers += [nn.Conv2d(c, c * 2, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
            c *= 2
            self.stage_channels[resolution // 2 ** (i + 1)] = c
        self.body = nn.Sequential(*layers)
        self.feature_shape = (c, BASE_RESOLUTION, BASE_RESOLUTION)
        self.head_fc = nn.Linear(c * BASE_RESOLUTION**2, c)
        self.head_out = nn.Linear(c, 1)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)

    def feature_maps(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """Activations after each stage, by resolution; the 4×4 one equals ``features(x)``."""
        maps = {}
        for layer in self.body:
            x = layer(x)
            if isinstance(layer, nn.LeakyReLU):
                maps[x.shape[-1]] = x
        return maps

    def head(self, f: torch.Tensor) -> torch.Tensor:
        h = nn.functional.leaky_relu(self.head_fc(f.flatten(1)), 0.2)
        return self.head_out(h).squeeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register_arch("dcgan")
def build_dcgan(
    resolution: int, channels: int, z_dim: int, g_width: int, d_width: int, options=None
) -> tuple[Generator, Discriminator]:
    G = Generator(resolution, channels, z_dim, g_width)
    return G, Discriminator(resolution, channels, d_width)
