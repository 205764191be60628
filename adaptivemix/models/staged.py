"""The staged-generator pattern shared by the non-style families (dcgan, dcgan-cifar,
resnet-wgangp): a stem to the 4×4 map, one block per resolution in ``self.blocks``
(keyed by the resolution as a string), then an image head, ``image_from(h)``."""

from __future__ import annotations

import torch
from torch import nn


class StagedGenerator(nn.Module):
    stage_resolutions: list[int]  # ascending, from the stem's resolution
    blocks: nn.ModuleDict  # str(resolution) -> the block producing that resolution's map
    stage_image_channels = 0  # no skip image in the stage maps (StyleGAN2 has one)

    def stem(self, z: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def image_from(self, h: torch.Tensor) -> torch.Tensor:
        """The last stage's map -> the image in [-1, 1]."""
        raise NotImplementedError

    def synthesize_from(
        self, h: torch.Tensor, res: int, z: torch.Tensor | None = None
    ) -> torch.Tensor:
        """The stages above ``res`` from ``h``, then the image; ``z`` is unused (no styles)."""
        for r in self.stage_resolutions:
            if r > res:
                h = self.blocks[str(r)](h)
        return self.image_from(h)

    def feature_maps(self, z: torch.Tensor) -> dict[int, torch.Tensor]:
        h = self.stem(z)
        maps = {self.stage_resolutions[0]: h}
        for r in self.stage_resolutions[1:]:
            h = maps[r] = self.blocks[str(r)](h)
        return maps

    def forward(
        self, z: torch.Tensor, generator: torch.Generator | None = None, maps=None
    ) -> torch.Tensor:
        """``generator``: the run's randomness source (unused: these Gs are deterministic);
        ``maps``: a dict to record this forward's stage maps in (as ``feature_maps``)."""
        stages = self.feature_maps(z)
        if maps is not None:
            maps.update(stages)
        return self.image_from(stages[self.stage_resolutions[-1]])
