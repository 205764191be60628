"""The "standard CNN" GAN of Miyato et al. (SNGAN, ICLR 2018, arXiv 1802.05957, Table 3),
without spectral normalisation: the DCGAN that CIFAR-10 papers (AdaptiveMix among them) train.

Followed from the paper's Table 3 (32×32, z of 128):

- G: z -> dense 4·4·512, BN, ReLU -> deconv 4×4 stride 2 to 256, 128, 64 channels, each with
  BN and ReLU -> conv 3×3 to the image channels, tanh.
- D: conv 3×3 64, conv 4×4 s2 64, conv 3×3 128, conv 4×4 s2 128, conv 3×3 256, conv 4×4 s2
  256, conv 3×3 512 (LeakyReLU 0.1 after each) -> dense to 1.

Followed from the official code (pfnet-research/chainer-gan-lib, ``DCGANGenerator``): the BN
after G's dense layer normalises the flat 4·4·512 vector (one scale and shift per element, a
``BatchNorm1d``); every layer has a bias; weights are drawn from N(0, 0.02²), biases zero.
The code's last G layer is a 3×3 stride-1 deconvolution, the same map as our 3×3 conv.

Our interpretation and differences:

- The code's ``DCGANDiscriminator`` doubles the channels at each stride-2 conv (64, 128, 128,
  256, 256, 512, 512); we follow the paper's table (64, 64, 128, 128, 256, 256, 512).
- Generic over the resolution 4·2^k (k ≥ 1): G has k deconv stages, D k stride-2 stages.
  Width mapping: ``g_width`` is G's last stage (its 4×4 map has ``g_width``·2^k channels);
  ``d_width`` is D's first conv; at 32×32, ``g_width = d_width = 64`` is the published net.
- D's ``features`` end with the last stride-2 conv (the 4×4 map); ``head`` is the final
  3×3 conv, LeakyReLU and dense layer. So the head is non-linear, like the StyleGAN2 epilogue
  (conv + fc + out) that the official AdaptiveMix code treats as the head.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from adaptivemix.models.base import register_arch
from adaptivemix.models.staged import StagedGenerator

BASE_RESOLUTION = 4
D_SLOPE = 0.1  # LeakyReLU slope of D (Miyato et al. 2018, Table 3)
INIT_STD = 0.02  # chainer-gan-lib's wscale


def num_stages(resolution: int) -> int:
    """k for a resolution 4·2^k, k ≥ 1."""
    n = math.log2(resolution / BASE_RESOLUTION) if resolution > 0 else 0.0
    if n < 1 or n != int(n):
        raise ValueError(f"resolution must be 4·2^k with k ≥ 1 (8, 16, 32, ...), got {resolution}")
    return int(n)


def init_normal(module: nn.Module) -> None:
    """Conv, deconv and dense weights ~ N(0, 0.02²), their biases 0 (chainer-gan-lib)."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, INIT_STD)
            nn.init.zeros_(m.bias)


class Generator(StagedGenerator):
    def __init__(self, resolution: int, channels: int, z_dim: int, width: int):
        super().__init__()
        n_up = num_stages(resolution)
        self.z_dim = z_dim
        self.stage_resolutions = [BASE_RESOLUTION * 2**i for i in range(n_up + 1)]
        top = width * 2**n_up
        self.stem_fc = nn.Linear(z_dim, top * BASE_RESOLUTION**2)
        self.stem_norm = nn.BatchNorm1d(top * BASE_RESOLUTION**2)
        self.stage_channels = {BASE_RESOLUTION: top}
        self.blocks = nn.ModuleDict()
        c = top
        for res in self.stage_resolutions[1:]:
            self.blocks[str(res)] = nn.Sequential(
                nn.ConvTranspose2d(c, c // 2, 4, stride=2, padding=1),
                nn.BatchNorm2d(c // 2),
                nn.ReLU(),
            )
            c //= 2
            self.stage_channels[res] = c
        self.to_image = nn.Conv2d(c, channels, 3, padding=1)
        init_normal(self)

    def stem(self, z: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.stem_norm(self.stem_fc(z)))
        return h.view(z.shape[0], -1, BASE_RESOLUTION, BASE_RESOLUTION)

    def image_from(self, h: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.to_image(h))


def _conv_act(c_in: int, c_out: int, kernel: int, stride: int) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, stride, padding=1), nn.LeakyReLU(D_SLOPE)]


class Discriminator(nn.Module):
    """Stages by resolution: the first is a 3×3 conv; each later one a 4×4 stride-2 conv,
    then (above 4×4) a 3×3 conv doubling the channels. The 4×4 stage's output is ``features``.
    """

    per_sample_features = True

    def __init__(self, resolution: int, channels: int, width: int):
        super().__init__()
        n_down = num_stages(resolution)
        self.stages = nn.ModuleDict(
            {str(resolution): nn.Sequential(*_conv_act(channels, width, 3, 1))}
        )
        self.stage_channels = {resolution: width}  # channels of feature_maps(x)[res]
        c = width
        for i in range(1, n_down + 1):
            res = resolution // 2**i
            layers = _conv_act(c, c, 4, 2)
            if res > BASE_RESOLUTION:
                layers += _conv_act(c, 2 * c, 3, 1)
                c *= 2
            self.stages[str(res)] = nn.Sequential(*layers)
            self.stage_channels[res] = c
        self.feature_shape = (c, BASE_RESOLUTION, BASE_RESOLUTION)
        self.head_conv = nn.Conv2d(c, 2 * c, 3, padding=1)
        self.head_out = nn.Linear(2 * c * BASE_RESOLUTION**2, 1)
        init_normal(self)

    def feature_maps(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """Each stage's output by resolution; the 4×4 one equals ``features(x)``."""
        maps = {}
        for res, stage in self.stages.items():
            x = maps[int(res)] = stage(x)
        return maps

    def features(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages.values():
            x = stage(x)
        return x

    def head(self, f: torch.Tensor) -> torch.Tensor:
        h = nn.functional.leaky_relu(self.head_conv(f), D_SLOPE)
        return self.head_out(h.flatten(1)).squeeze(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register_arch("dcgan-cifar")
def build_dcgan_cifar(
    resolution: int, channels: int, z_dim: int, g_width: int, d_width: int, options=None
) -> tuple[Generator, Discriminator]:
    return Generator(resolution, channels, z_dim, g_width), Discriminator(
        resolution, channels, d_width
    )
