"""StyleGAN2, the ``paper256`` configuration of NVlabs/stylegan2-ada-pytorch, in plain PyTorch.

Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020; Karras et
al., "Training Generative Adversarial Networks with Limited Data", NeurIPS 2020. Followed:
``training/networks.py``, ``training/loss.py`` (style mixing) and ``train.py`` (the
``paper256`` spec: fmaps 0.5 -> channel_base 16384, channel_max 512, 8 mapping layers,
minibatch-std group 8, conv_clamp 256) at commit d72cc7d. G is the 'skip' architecture,
D the 'resnet' one; building blocks in :mod:`adaptivemix.models.stylegan2_layers`.

Our interpretations and differences:
- fp32 throughout. ``conv_clamp`` is applied where upstream applies it with mixed precision
  on (``train.py`` sets it for G and D as a whole): every synthesis layer and toRGB, D's
  fromRGB, block and epilogue convolutions (not D's skips); 0 turns it off.
- ``g_width`` / ``d_width`` of the run config are ignored: widths come from
  ``channel_base`` / ``channel_max`` (channels at resolution r: min(base // r, max)).
- ``G(z, generator=gen)`` in training mode draws the per-layer noise and style mixing
  (upstream ``StyleGAN2Loss.run_G``: with probability ``mixing_prob`` one cutoff in
  [1, num_ws) for the whole batch; the styles from the cutoff on come from a second latent)
  from ``gen``; in eval mode a generator gives the per-layer noise only, no mixing (what
  stylegan2-ada-pytorch's metrics sample with: its default ``noise_mode='random'``, see
  :func:`adaptivemix.metrics.fid.generate_images`); without a generator G uses the constant
  noise buffers (upstream ``noise_mode='const'``, its image grids) and no mixing. The
  global RNG is never used. ``noise_inputs = True`` tells the metrics G has noise inputs.
- Staged synthesis (GLeaD): the map at resolution r is the block's features concatenated
  with the running skip image (``stage_channels[r]`` = features + image channels, the last
  ``stage_image_channels`` of them the image). ``synthesize_from(h, r, z, ws=, generator=)``
  runs the later blocks (upstream GLeaD's ``SynthesisNetwork.forward(feat2img=True)``),
  styled by ``ws`` when given, else by ``mapping(z)``, else (``z=None``) by the tracked
  average ``w_avg``; noise as ``synthesis`` (from ``generator`` when given).
  ``G(z, generator, maps=d)`` also records the stage maps of that very forward into ``d``
  (style mixing and noise included). ``mapping`` updates ``w_avg`` in training mode; the
  staged helpers and the mixing latent do not (as upstream's ``skip_w_avg_update``).
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import torch
from torch import nn

from adaptivemix.errors import ConfigError
from adaptivemix.models.base import register_arch
from adaptivemix.models.stylegan2_layers import (
    DiscriminatorBlock,
    Epilogue,
    EqualizedConv2d,
    FullyConnected,
    SynthesisBlock,
)

KEY = "gan.arch_options"


@dataclass(frozen=True)
class StyleGAN2Options:
    """Defaults: stylegan2-ada-pytorch ``--cfg=paper256``."""

    w_dim: int = 512  # intermediate latent (W) size
    mapping_layers: int = 8  # fully connected layers of the mapping network
    mapping_lr_mult: float = 0.01  # learning-rate multiplier of the mapping network
    channel_base: int = 16384  # channels at resolution r: min(channel_base // r, channel_max)
    channel_max: int = 512
    mbstd_group: int = 8  # minibatch-std group size (min with the batch)
    mbstd_channels: int = 1  # minibatch-std feature maps; 0 disables the layer
    mixing_prob: float = 0.9  # style-mixing probability in training
    conv_clamp: float = 256.0  # clamp of conv outputs, ±conv_clamp; 0 disables
    w_avg_beta: float = 0.995  # decay of the tracked average W

    def __post_init__(self):
        positive = ("w_dim", "mapping_layers", "channel_base", "channel_max", "mbstd_group")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name}: an integer ≥ 1")
        if not self.mapping_lr_mult > 0:
            raise ValueError("mapping_lr_mult: a number > 0")
        if self.mbstd_channels < 0:
            raise ValueError("mbstd_channels: an integer ≥ 0")
        for name in ("mixing_prob", "w_avg_beta"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name}: a number in [0, 1]")
        if not self.conv_clamp >= 0:
            raise ValueError("conv_clamp: a number ≥ 0 (0 disables clamping)")


def _resolutions(resolution: int) -> list[int]:
    n = math.log2(resolution / 4) if resolution >= 4 else 0.0
    if n < 1 or n != int(n):
        raise ValueError(f"resolution must be 4·2^k with k ≥ 1, got {resolution}")
    return [4 * 2**i for i in range(int(n) + 1)]


def _channels(resolutions: list[int], options: StyleGAN2Options) -> dict[int, int]:
    channels = {r: min(options.channel_base // r, options.channel_max) for r in resolutions}
    if min(channels.values()) < 1:
        expected = f"≥ {max(resolutions)} so that every resolution has a channel"
        raise ConfigError(f"{KEY}.channel_base", options.channel_base, expected)
    if options.mbstd_channels and channels[4] % options.mbstd_channels:
        expected = f"a divisor of D's 4×4 channel count {channels[4]}"
        raise ConfigError(f"{KEY}.mbstd_channels", options.mbstd_channels, expected)
    return channels


class MappingNetwork(nn.Module):
    """z -> w: normalise z's second moment, ``mapping_layers`` lrelu fc layers (lr ×0.01)."""

    def __init__(self, z_dim: int, options: StyleGAN2Options):
        super().__init__()
        sizes = [z_dim] + [options.w_dim] * options.mapping_layers
        self.layers = nn.Sequential(*(
            FullyConnected(a, b, act="lrelu", lr_mult=options.mapping_lr_mult)
            for a, b in itertools.pairwise(sizes)
        ))  # fmt: skip

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        z = z * (z.square().mean(dim=1, keepdim=True) + 1e-8).rsqrt()
        return self.layers(z)


class Generator(nn.Module):
    noise_inputs = True  # per-layer noise besides z: metric samples draw it at random

    def __init__(self, resolution: int, channels: int, z_dim: int, options: StyleGAN2Options):
        super().__init__()
        self.options, self.z_dim, self.img_channels = options, z_dim, channels
        self.w_dim = options.w_dim
        self.stage_image_channels = channels  # the skip image ends every stage map
        self.stage_resolutions = _resolutions(resolution)
        width = _channels(self.stage_resolutions, options)
        clamp = options.conv_clamp or None
        self.blocks = nn.ModuleDict()
        self.w_index: dict[int, int] = {}  # first style of each block
        self.num_ws = 0
        for r in self.stage_resolutions:
            in_c = width[r // 2] if r > 4 else 0
            block = SynthesisBlock(in_c, width[r], options.w_dim, r, channels, clamp)
            self.blocks[str(r)] = block
            self.w_index[r] = self.num_ws
            self.num_ws += block.num_conv
        self.num_ws += 1  # the last toRGB
        self.stage_channels = {r: width[r] + channels for r in self.stage_resolutions}
        self.mapping_network = MappingNetwork(z_dim, options)
        self.register_buffer("w_avg", torch.zeros(options.w_dim))

    def mapping(self, z: torch.Tensor, update_w_avg: bool = True) -> torch.Tensor:
        """(N, num_ws, w_dim) styles; tracks the average w in training mode."""
        w = self.mapping_network(z)
        if update_w_avg and self.training:
            with torch.no_grad():
                self.w_avg.copy_(w.detach().mean(dim=0).lerp(self.w_avg, self.options.w_avg_beta))
        return w.unsqueeze(1).repeat(1, self.num_ws, 1)

    def _styles(self, z: torch.Tensor | None, n: int) -> torch.Tensor:
        if z is None:
            return self.w_avg.reshape(1, 1, -1).repeat(n, self.num_ws, 1)
        return self.mapping(z, update_w_avg=False)

    def _run(self, x, img, ws, after: int, generator=None, maps=None):
        """The blocks above resolution ``after`` (0: all); records maps if asked."""
        for r in self.stage_resolutions:
            if r <= after:
                continue
            block = self.blocks[str(r)]
            cur = ws.narrow(1, self.w_index[r], block.num_conv + 1)
            x, img = block(x, img, cur, generator)
            if maps is not None:
                maps[r] = torch.cat([x, img], dim=1)
        return x, img

    def synthesis(self, ws: torch.Tensor, generator: torch.Generator | None = None, maps=None):
        """Image from styles; noise drawn from ``generator`` when given (in eval mode too:
        metrics' random noise), else constant. ``maps``: a dict to record every stage map in
        (as ``feature_maps``)."""
        return self._run(None, None, ws, 0, generator, maps)[1]

    def mix_styles(self, ws: torch.Tensor, z: torch.Tensor, generator: torch.Generator):
        """Upstream style mixing: with prob. ``mixing_prob`` the styles from one cutoff on
        (the same for the whole batch) come from a second latent drawn from ``generator``."""
        if self.options.mixing_prob <= 0:
            return ws
        dev = generator.device
        cutoff = int(torch.randint(1, self.num_ws, (), generator=generator, device=dev))
        if float(torch.rand((), generator=generator, device=dev)) >= self.options.mixing_prob:
            return ws
        z2 = torch.randn(z.shape, generator=generator, device=dev).to(z)
        other = self.mapping(z2, update_w_avg=False)
        return torch.cat([ws[:, :cutoff], other[:, cutoff:]], dim=1)

    def forward(self, z: torch.Tensor, generator: torch.Generator | None = None, maps=None):
        ws = self.mapping(z)
        if generator is not None and self.training:
            ws = self.mix_styles(ws, z, generator)
        return self.synthesis(ws, generator, maps)

    def feature_maps(self, z: torch.Tensor) -> dict[int, torch.Tensor]:
        """Every block's features ⊕ skip image, by resolution (constant noise, no mixing)."""
        maps: dict[int, torch.Tensor] = {}
        self._run(None, None, self._styles(z, z.shape[0]), 0, maps=maps)
        return maps

    def stem(self, z: torch.Tensor) -> torch.Tensor:
        """The 4×4 map: features of the first block ⊕ its image."""
        ws, first = self._styles(z, z.shape[0]), self.stage_resolutions[0]
        x, img = self.blocks[str(first)](None, None, ws.narrow(1, 0, 2))
        return torch.cat([x, img], dim=1)

    def synthesize_from(
        self,
        h: torch.Tensor,
        res: int,
        z: torch.Tensor | None = None,
        *,
        ws: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """The blocks above ``res`` from the map ``h``, styled by ``ws`` (N, num_ws, w_dim)
        if given, else by ``z`` (None: by ``w_avg``); noise as :meth:`synthesis`."""
        x, img = h[:, : -self.img_channels], h[:, -self.img_channels :]
        ws = self._styles(z, h.shape[0]) if ws is None else ws
        return self._run(x, img, ws, res, generator)[1]


class Discriminator(nn.Module):
    per_sample_features = True  # every block is per-sample; only the head mixes the batch

    def __init__(self, resolution: int, channels: int, options: StyleGAN2Options):
        super().__init__()
        resolutions = _resolutions(resolution)
        width = _channels(resolutions, options)
        clamp = options.conv_clamp or None
        self.fromrgb = EqualizedConv2d(channels, width[resolution], 1, "lrelu", clamp=clamp)
        self.blocks = nn.ModuleDict({
            str(r): DiscriminatorBlock(width[r], width[r // 2], clamp)
            for r in reversed(resolutions[1:])
        })  # fmt: skip
        self.epilogue = Epilogue(width[4], options.mbstd_group, options.mbstd_channels, clamp)
        self.stage_channels = {r: width[r] for r in resolutions}  # channels of feature_maps
        self.feature_shape = (width[4], 4, 4)

    def feature_maps(self, x: torch.Tensor) -> dict[int, torch.Tensor]:
        """fromRGB's map at full resolution, then each block's output (the last: 4×4)."""
        x = self.fromrgb(x)
        maps = {x.shape[-1]: x}
        for block in self.blocks.values():
            x = block(x)
            maps[x.shape[-1]] = x
        return maps

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.fromrgb(x)
        for block in self.blocks.values():
            x = block(x)
        return x

    def head(self, f: torch.Tensor) -> torch.Tensor:
        return self.epilogue(f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


@register_arch("stylegan2", options=StyleGAN2Options)
def build_stylegan2(
    resolution: int, channels: int, z_dim: int, g_width: int, d_width: int, options=None
) -> tuple[Generator, Discriminator]:
    """(G, D); ``g_width`` / ``d_width`` are ignored (widths: channel_base, channel_max)."""
    options = options or StyleGAN2Options()
    return Generator(resolution, channels, z_dim, options), Discriminator(
        resolution, channels, options
    )
