"""Building blocks of StyleGAN2 in plain PyTorch (no compiled ops, no custom autograd).

Followed: Karras et al., "Analyzing and Improving the Image Quality of StyleGAN", CVPR 2020
(arXiv 1912.04958), as implemented in NVlabs/stylegan2-ada-pytorch ``training/networks.py``
and ``torch_utils/ops`` (commit d72cc7d): equalized learning rate (weights drawn from N(0, 1)
and scaled by ``lr_mult / sqrt(fan_in)`` at run time), bias + leaky ReLU(0.2)·sqrt(2), the
[1, 3, 3, 1] low-pass filter around every 2× resampling (the same padding arithmetic as
upstream's ``conv2d_resample``, so shapes and values match), modulated / demodulated
convolutions executed as "scale the input, convolve, scale the output" (upstream's
non-fused path), per-layer noise with a learned strength, the minibatch-std layer.

Our interpretations:
- D's convolutions hold a plain ``nn.Conv2d`` (``EqualizedConv2d.conv``) that receives the
  input already multiplied by the equalized-lr gain: conv(g·x, w) + b = conv(x, g·w) + b, so
  the layer is exactly upstream's, and methods that act on D's ``nn.Conv2d`` inputs (PConv)
  find ordinary convolutions. For down-sampling layers that input is the blurred map.
- Minibatch std with a batch not divisible by the group size (upstream: an error) uses the
  largest divisor of the batch not above the group size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

LRELU_GAIN = math.sqrt(2.0)
BLUR = (1.0, 3.0, 3.0, 1.0)


def make_filter(taps=BLUR) -> torch.Tensor:
    """The separable 2-D low-pass filter, normalised to sum 1 (upstream ``setup_filter``)."""
    f = torch.as_tensor(taps, dtype=torch.float32)
    f = torch.outer(f, f)
    return f / f.sum()


def upfirdn2d(x: torch.Tensor, f: torch.Tensor, up=1, down=1, pad=(0, 0), gain=1.0):
    """Zero-insert upsample by ``up``, pad (left/top, right/bottom), filter, keep every
    ``down``-th sample; the filter is scaled by ``gain`` (4 for 2× upsampling)."""
    n, c, h, w = x.shape
    if up > 1:
        x = x.reshape(n, c, h, 1, w, 1)
        x = F.pad(x, (0, up - 1, 0, 0, 0, up - 1))
        x = x.reshape(n, c, h * up, w * up)
    x = F.pad(x, (pad[0], pad[1], pad[0], pad[1]))
    weight = (f * gain).flip([0, 1]).to(x.dtype)[None, None].repeat(c, 1, 1, 1)
    x = F.conv2d(x, weight, groups=c)  # true convolution: the filter is flipped first
    return x[:, :, ::down, ::down] if down > 1 else x


def upsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """2× upsampling with the low-pass filter (upstream ``upfirdn2d.upsample2d``)."""
    k = f.shape[-1]
    return upfirdn2d(x, f, up=2, pad=((k + 1) // 2, (k - 2) // 2), gain=4.0)


def downsample2d(x: torch.Tensor, f: torch.Tensor) -> torch.Tensor:
    """2× downsampling with the low-pass filter (upstream ``upfirdn2d.downsample2d``)."""
    k = f.shape[-1]
    return upfirdn2d(x, f, down=2, pad=((k - 1) // 2, (k - 2) // 2))


def bias_act(x, bias=None, act="linear", gain=1.0, clamp=None):
    """Upstream ``bias_act``: add bias, activate, times ``gain`` (×sqrt 2 for lrelu), clamp."""
    if bias is not None:
        x = x + bias.reshape(1, -1, *([1] * (x.ndim - 2)))
    if act == "lrelu":
        x, gain = F.leaky_relu(x, 0.2), gain * LRELU_GAIN
    if gain != 1:
        x = x * gain
    return x.clamp(-clamp, clamp) if clamp else x


class FullyConnected(nn.Module):
    """Equalized-lr linear layer: weight N(0, 1)/lr_mult, used as weight·lr_mult/sqrt(fan_in)."""

    def __init__(self, in_f, out_f, act="linear", lr_mult=1.0, bias_init=0.0):
        super().__init__()
        self.act = act
        self.weight = nn.Parameter(torch.randn(out_f, in_f) / lr_mult)
        self.bias = nn.Parameter(torch.full((out_f,), float(bias_init)))
        self.weight_gain = lr_mult / math.sqrt(in_f)
        self.bias_gain = lr_mult

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.matmul((self.weight * self.weight_gain).t())
        return bias_act(x, self.bias * self.bias_gain, self.act)


class EqualizedConv2d(nn.Module):
    """Upstream ``Conv2dLayer`` (up=1 or down=2) around a plain ``nn.Conv2d`` (see module doc)."""

    def __init__(self, in_c, out_c, k, act="linear", down=1, bias=True, clamp=None):
        super().__init__()
        self.act, self.down, self.clamp = act, down, clamp
        self.weight_gain = 1.0 / math.sqrt(in_c * k * k)
        pad = 0 if down > 1 else k // 2
        stride = down if k > 1 else 1  # a 1×1 conv runs after the decimation
        self.conv = nn.Conv2d(in_c, out_c, k, stride=stride, padding=pad, bias=bias)
        nn.init.normal_(self.conv.weight)
        if bias:
            nn.init.zeros_(self.conv.bias)
        self.register_buffer("filter", make_filter(), persistent=False)

    def forward(self, x: torch.Tensor, gain: float = 1.0) -> torch.Tensor:
        if self.down > 1:
            k, fk = self.conv.kernel_size[0], self.filter.shape[-1]
            if k == 1:  # upstream: filter and decimate first, then the 1×1 convolution
                x = upfirdn2d(x, self.filter, down=2, pad=((fk - 1) // 2, (fk - 2) // 2))
            else:  # upstream: filter with the conv's padding folded in, then strided conv
                pad = (k // 2 + (fk - 1) // 2, k // 2 + (fk - 2) // 2)
                x = upfirdn2d(x, self.filter, pad=pad)
        x = self.conv(x * self.weight_gain)
        clamp = self.clamp * gain if self.clamp else None
        return bias_act(x, None, self.act, gain, clamp)


def modulated_conv2d(x, weight, styles, demodulate=True, up=1, f=None):
    """Per-sample modulated (and demodulated) convolution, 'same' padding, optional 2× up.

    Executed as x·s, one shared convolution, then ·d (upstream's non-fused path). For
    ``up=2``: a stride-2 transposed convolution, then the low-pass filter (gain 4), as
    upstream's ``conv2d_resample`` fast path.
    """
    n = x.shape[0]
    x = x * styles.reshape(n, -1, 1, 1)
    k = weight.shape[-1]
    if up == 1:
        x = F.conv2d(x, weight, padding=k // 2)
    else:
        x = F.conv_transpose2d(x, weight.transpose(0, 1), stride=2)
        fk = f.shape[-1]
        # upstream: padding p=k//2 on the upsampled grid -> filter pads (p0, p1)
        p0 = k // 2 + (fk + 1) // 2 - (k - 1)
        p1 = k // 2 + (fk - 2) // 2 - (k - 2)
        x = upfirdn2d(x, f, pad=(p0, p1), gain=4.0)
    if demodulate:
        w = weight[None] * styles.reshape(n, 1, -1, 1, 1)
        d = (w.square().sum(dim=[2, 3, 4]) + 1e-8).rsqrt()
        x = x * d.reshape(n, -1, 1, 1)
    return x


class SynthesisLayer(nn.Module):
    """Modulated 3×3 conv (+2× up), noise with learned strength, bias, lrelu, clamp."""

    def __init__(self, in_c, out_c, w_dim, resolution, up=1, clamp=None):
        super().__init__()
        self.up, self.clamp, self.resolution = up, clamp, resolution
        self.affine = FullyConnected(w_dim, in_c, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_c, in_c, 3, 3))
        self.bias = nn.Parameter(torch.zeros(out_c))
        self.noise_strength = nn.Parameter(torch.zeros(()))
        self.register_buffer("noise_const", torch.randn(resolution, resolution))
        self.register_buffer("filter", make_filter(), persistent=False)

    def forward(self, x, w, generator=None, gain=1.0):
        x = modulated_conv2d(x, self.weight, self.affine(w), up=self.up, f=self.filter)
        if generator is None:
            noise = self.noise_const
        else:
            shape = (x.shape[0], 1, self.resolution, self.resolution)
            noise = torch.randn(shape, generator=generator, device=generator.device).to(x)
        x = x + noise * self.noise_strength
        clamp = self.clamp * gain if self.clamp else None
        return bias_act(x, self.bias, "lrelu", gain, clamp)


class ToRGB(nn.Module):
    """Modulated 1×1 conv without demodulation, bias, clamp (upstream ``ToRGBLayer``)."""

    def __init__(self, in_c, out_c, w_dim, clamp=None):
        super().__init__()
        self.clamp = clamp
        self.affine = FullyConnected(w_dim, in_c, bias_init=1.0)
        self.weight = nn.Parameter(torch.randn(out_c, in_c, 1, 1))
        self.bias = nn.Parameter(torch.zeros(out_c))
        self.weight_gain = 1.0 / math.sqrt(in_c)

    def forward(self, x, w):
        styles = self.affine(w) * self.weight_gain
        x = modulated_conv2d(x, self.weight, styles, demodulate=False)
        return bias_act(x, self.bias, clamp=self.clamp)


class SynthesisBlock(nn.Module):
    """One resolution of the 'skip' generator: (const | up-conv), conv, toRGB added to the
    upsampled running image. Consumes ``num_conv + 1`` styles (toRGB shares the next's)."""

    def __init__(self, in_c, out_c, w_dim, resolution, img_channels, clamp=None):
        super().__init__()
        self.first = in_c == 0
        if self.first:
            self.const = nn.Parameter(torch.randn(out_c, resolution, resolution))
        else:
            self.conv0 = SynthesisLayer(in_c, out_c, w_dim, resolution, up=2, clamp=clamp)
        self.conv1 = SynthesisLayer(out_c, out_c, w_dim, resolution, clamp=clamp)
        self.torgb = ToRGB(out_c, img_channels, w_dim, clamp=clamp)
        self.num_conv = 1 if self.first else 2
        self.register_buffer("filter", make_filter(), persistent=False)

    def forward(self, x, img, ws, generator=None):
        w = ws.unbind(dim=1)
        if self.first:
            x = self.const.unsqueeze(0).repeat(ws.shape[0], 1, 1, 1)
            x = self.conv1(x, w[0], generator)
        else:
            x = self.conv0(x, w[0], generator)
            x = self.conv1(x, w[1], generator)
        y = self.torgb(x, w[self.num_conv])
        img = y if img is None else upsample2d(img, self.filter) + y
        return x, img


class DiscriminatorBlock(nn.Module):
    """One resolution of the 'resnet' discriminator: conv, down-conv, 1×1 down skip; the two
    paths are summed with gains sqrt(0.5) (upstream ``DiscriminatorBlock``, no fromRGB)."""

    def __init__(self, tmp_c, out_c, clamp=None):
        super().__init__()
        self.conv0 = EqualizedConv2d(tmp_c, tmp_c, 3, "lrelu", clamp=clamp)
        self.conv1 = EqualizedConv2d(tmp_c, out_c, 3, "lrelu", down=2, clamp=clamp)
        self.skip = EqualizedConv2d(tmp_c, out_c, 1, down=2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.skip(x, gain=math.sqrt(0.5))
        return y + self.conv1(self.conv0(x), gain=math.sqrt(0.5))


def minibatch_std(x: torch.Tensor, group_size: int, num_channels: int = 1) -> torch.Tensor:
    """Append the std over groups of samples (n, n+M, n+2M, ... as upstream's reshape),
    averaged over channel chunks and pixels, as ``num_channels`` constant feature maps."""
    n, c, h, w = x.shape
    g = max(d for d in range(1, min(group_size, n) + 1) if n % d == 0)
    y = x.reshape(g, -1, num_channels, c // num_channels, h, w)
    y = (y - y.mean(dim=0)).square().mean(dim=0)
    y = (y + 1e-8).sqrt().mean(dim=[2, 3, 4])
    y = y.reshape(-1, num_channels, 1, 1).repeat(g, 1, h, w)
    return torch.cat([x, y], dim=1)


class Epilogue(nn.Module):
    """D's 4×4 head: minibatch std, 3×3 conv, fc, output (upstream ``DiscriminatorEpilogue``)."""

    def __init__(self, c, mbstd_group, mbstd_channels, clamp=None):
        super().__init__()
        self.mbstd_group, self.mbstd_channels = mbstd_group, mbstd_channels
        self.conv = EqualizedConv2d(c + mbstd_channels, c, 3, "lrelu", clamp=clamp)
        self.fc = FullyConnected(c * 16, c, act="lrelu")
        self.out = FullyConnected(c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.mbstd_channels > 0:
            x = minibatch_std(x, self.mbstd_group, self.mbstd_channels)
        return self.out(self.fc(self.conv(x).flatten(1))).squeeze(1)
