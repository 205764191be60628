"""Independent references shared by the conformance tests (``tests/test_conformance_*.py``).

Each conformance test feeds the same inputs and the same random draws to one of our GAN
methods and to a small reference written here, or in the test, from the official code's
semantics (or the paper's definitions where no code exists). The references use only the
networks' own forward (``D.features`` / ``D.head``, ``G``) and their own arithmetic: none of
our methods' helpers. Losses and every parameter gradient must agree to ``TOL``.

The networks are a tiny StyleGAN2 (the ``paper256`` architecture at 16 px, 3 channels,
narrow), the architecture the official AdaptiveMix, DiffAugment and APA code is built on.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from adaptivemix.gan.losses import build_adv_loss
from adaptivemix.gan.methods import StepContext
from adaptivemix.models import build_models

TOL = 1e-5  # absolute and relative tolerance on losses and gradients
BATCH = 8  # StyleGAN2's minibatch-std group (8, paper256) spans the whole batch
RES, CHANNELS, Z_DIM = 16, 3, 8
TINY = dict(channel_base=256, channel_max=32, mapping_layers=2, w_dim=32)


def tiny_stylegan2(seed: int = 0) -> tuple[nn.Module, nn.Module]:
    """(G, D): StyleGAN2 as the official code (resnet D, skip G), at toy width."""
    return build_models("stylegan2", RES, CHANNELS, Z_DIM, 0, 0, seed, arch_options=TINY)


def step_batch(G: nn.Module, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(real, z, fake): reals in [-1, 1] and G(z) still attached to G's graph (G's constant
    noise inputs, so that the fake batch itself involves no draw)."""
    g = torch.Generator().manual_seed(1000 + seed)
    real = torch.rand(BATCH, CHANNELS, RES, RES, generator=g) * 2 - 1
    z = torch.randn(BATCH, Z_DIM, generator=g)
    return real, z, G(z)


def make_ctx(G, D, real, fake, gen, adv="nonsaturating", r1_gamma=0.0, augment=None):
    ctx = StepContext(G, D, real, fake, build_adv_loss(adv), gen, r1_gamma, z=None)
    if augment is not None:
        ctx.augment = augment
    return ctx


def twin(gen: torch.Generator) -> torch.Generator:
    """A second generator in the same state: the reference replays the method's draws."""
    return torch.Generator().set_state(gen.get_state())


# ------------------------------------------------------------------ losses, by definition


def softplus(x: torch.Tensor) -> torch.Tensor:
    """log(1 + eˣ), written as logaddexp(x, 0) for stability."""
    return torch.logaddexp(x, torch.zeros_like(x))


def adv_branches(adv: str) -> tuple[Callable, Callable, Callable]:
    """(D on reals, D on fakes, G on fakes) per-sample losses of a logit ``y``.

    Non-saturating (Goodfellow et al. 2014, the softplus form of stylegan2-ada-pytorch
    ``training/loss.py``): softplus(−y), softplus(y), softplus(−y). Hinge (Lim & Ye 2017):
    max(0, 1 − y), max(0, 1 + y), −y.
    """
    if adv == "hinge":
        return (lambda y: (1 - y).clamp_min(0), lambda y: (1 + y).clamp_min(0), lambda y: -y)
    return (lambda y: softplus(-y), softplus, lambda y: softplus(-y))


def r1_term(logits: torch.Tensor, x: torch.Tensor, gamma: float) -> torch.Tensor:
    """γ/2 · mean_i ‖∂ Σ logits / ∂ x_i‖² (stylegan2-ada-pytorch ``loss.py``, Dr1 phase)."""
    (g,) = torch.autograd.grad(logits.sum(), x, create_graph=True)
    return gamma / 2 * (g * g).sum(dim=(1, 2, 3)).mean()


def ref_beta(gen: torch.Generator, alpha: float, n: int | None = None):
    """λ ~ Beta(α, α) as the harness draws it: one int64 from ``gen`` seeds NumPy's Beta."""
    seed = int(torch.randint(0, 2**62, (1,), generator=gen))
    return np.random.default_rng(seed).beta(alpha, alpha, size=n)


# ------------------------------------------------------------------ gradients


def grads_of(loss: torch.Tensor, module: nn.Module) -> dict[str, torch.Tensor]:
    """Gradient of ``loss`` w.r.t. every parameter of ``module`` (zeros where unused)."""
    named = list(module.named_parameters())
    grads = torch.autograd.grad(loss, [p for _, p in named], retain_graph=True, allow_unused=True)
    return {
        name: torch.zeros_like(p) if g is None else g
        for (name, p), g in zip(named, grads, strict=True)
    }


def assert_conforms(ours: torch.Tensor, ref: torch.Tensor, *modules: nn.Module, ref_modules=()):
    """Same loss and the same gradient of every parameter of ``modules`` (matched by name
    against ``ref_modules`` when the reference runs on copies), within ``TOL``."""
    torch.testing.assert_close(ours, ref, rtol=TOL, atol=TOL)
    for i, module in enumerate(modules):
        other = ref_modules[i] if ref_modules else module
        ours_g, ref_g = grads_of(ours, module), grads_of(ref, other)
        assert ours_g.keys() == ref_g.keys()
        assert any(float(g.abs().sum()) > 0 for g in ref_g.values())  # the check has teeth
        for name, g in ours_g.items():
            torch.testing.assert_close(g, ref_g[name], rtol=TOL, atol=TOL, msg=name)


# ------------------------------------------------------------------ DiffAugment, upstream


FULL_POLICY = ("color", "translation", "cutout")


def ref_diffaugment(
    x: torch.Tensor, gen: torch.Generator, policy=FULL_POLICY, translation_ratio=0.125,
    cutout_ratio=0.5,
) -> torch.Tensor:  # fmt: skip
    """DiffAugment as mit-han-lab/data-efficient-gans ``DiffAugment_pytorch.py`` defines it
    (``rand_brightness``, ``rand_saturation``, ``rand_contrast``, ``rand_translation``,
    ``rand_cutout``), with the global RNG replaced by ``gen``, draws in upstream's order."""
    for name in policy:
        x = {"color": _color, "translation": _translation, "cutout": _cutout}[name](
            x, gen, translation_ratio if name == "translation" else cutout_ratio
        )
    return x


def _color(x, gen, _):
    n = x.shape[0]
    x = x + (torch.rand(n, 1, 1, 1, generator=gen) - 0.5)  # brightness
    grey = x.mean(dim=1, keepdim=True)
    x = grey + (x - grey) * (2 * torch.rand(n, 1, 1, 1, generator=gen))  # saturation
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return mean + (x - mean) * (torch.rand(n, 1, 1, 1, generator=gen) + 0.5)  # contrast


def _translation(x, gen, ratio):
    """Upstream: output pixel (i, j) reads input (i + t_h, j + t_w), zero outside, with
    t ~ U{−s, …, s}, s = int(side·ratio + 0.5), drawn for H then W."""
    n, c, h, w = x.shape
    t_h = torch.randint(-int(h * ratio + 0.5), int(h * ratio + 0.5) + 1, (n, 1, 1), generator=gen)
    t_w = torch.randint(-int(w * ratio + 0.5), int(w * ratio + 0.5) + 1, (n, 1, 1), generator=gen)
    source = torch.full((n, h * w), h * w, dtype=torch.long)  # index h·w: the zero pixel
    for b in range(n):
        for i in range(h):
            for j in range(w):
                si, sj = i + int(t_h[b]), j + int(t_w[b])
                if 0 <= si < h and 0 <= sj < w:
                    source[b, i * w + j] = si * w + sj
    flat = torch.cat([x.flatten(2), x.new_zeros(n, c, 1)], dim=2)
    return flat.gather(2, source[:, None].expand(n, c, h * w)).view(n, c, h, w)


def _cutout(x, gen, ratio):
    """Upstream: a k_h × k_w square (k = int(side·ratio + 0.5)) whose centre is uniform in
    0 … side − (k mod 2), rows then columns drawn; covered pixels (clipped to the image)
    are multiplied by 0."""
    n, _, h, w = x.shape
    kh, kw = int(h * ratio + 0.5), int(w * ratio + 0.5)
    cy = torch.randint(0, h + 1 - kh % 2, (n, 1, 1), generator=gen)
    cx = torch.randint(0, w + 1 - kw % 2, (n, 1, 1), generator=gen)
    mask = torch.ones(n, 1, h, w)
    for b in range(n):
        for a in range(kh):
            for e in range(kw):
                i = min(max(int(cy[b]) - kh // 2 + a, 0), h - 1)
                j = min(max(int(cx[b]) - kw // 2 + e, 0), w - 1)
                mask[b, 0, i, j] = 0.0
    return x * mask
