"""PConv (baselines/pconv.py) on StyleGAN2, against a reference written from its definition.

No official code was found (Park, Yeo, Shin, Neural Computing and Applications 2022,
arXiv 2101.10841; abstracts only), so the reference follows the definition stated in
METHODS.md and the module's docstring: in training mode, the input of each of D's
convolutions except the one that reads the image (StyleGAN2: fromRGB), or of all of them,
is disturbed before convolving — inverted dropout (an element is kept where U ≥ rate,
U ~ U[0, 1) drawn per element of the batched input, kept elements ÷ (1 − rate)) or
additive N(0, rate²) noise — with the plain adversarial loss and R1 on top.

The reference runs an untouched copy of D whose ``nn.Conv2d`` layers get a forward
pre-hook applying that perturbation, drawing from a twin generator in forward order (the
order StyleGAN2's layers run: fromRGB, then per block skip, conv0, conv1, then the
epilogue's conv); gradients are compared parameter by parameter, matched by name.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

from adaptivemix.gan.methods import RunEnv, build_method
from tests.conformance_refs import (
    adv_branches,
    assert_conforms,
    make_ctx,
    r1_term,
    step_batch,
    tiny_stylegan2,
    twin,
)


def hook_perturbation(D: nn.Module, gen: torch.Generator, rate, distribution, rescale, layers):
    """Perturb the inputs of D's convolutions (all, or all but fromRGB's) from ``gen``."""
    skip = {id(D.fromrgb.conv)} if layers == "all_but_first" else set()

    def perturb(_module, inputs):
        (x,) = inputs
        if distribution == "gaussian":
            return x + rate * torch.randn(x.shape, generator=gen)
        keep = torch.rand(x.shape, generator=gen) >= rate
        return torch.where(keep, x / (1 - rate) if rescale else x, torch.zeros_like(x))

    convs = [m for m in D.modules() if isinstance(m, nn.Conv2d) and id(m) not in skip]
    for conv in convs:
        conv.register_forward_pre_hook(perturb)
    return len(convs)


@pytest.mark.parametrize(
    "options",
    [
        {},  # dropout 0.1, rescaled, all convolutions but fromRGB's
        {"rate": 0.3, "rescale": False, "layers": "all"},
        {"rate": 0.05, "distribution": "gaussian"},
    ],
)
def test_d_and_g_losses_and_gradients_match_the_definition(options):
    G, D = tiny_stylegan2()
    real, _, fake = step_batch(G)
    D_ref = copy.deepcopy(D)
    method = build_method("pconv", options)
    opt = method.options
    G, D = method.prepare(G, D, RunEnv())
    gen = torch.Generator().manual_seed(4)
    ref_gen = twin(gen)
    n = hook_perturbation(D_ref, ref_gen, opt.rate, opt.distribution, opt.rescale, opt.layers)
    assert n == 8 - (opt.layers == "all_but_first")  # fromRGB, 2 × 3 per block, epilogue

    ctx = make_ctx(G, D, real, fake, gen, r1_gamma=2.0)
    d_loss, _ = method.d_loss(ctx)
    g_loss, _ = method.g_loss(ctx)

    on_real, on_fake, g_fake = adv_branches("nonsaturating")
    x = real.clone().requires_grad_(True)
    real_logits = D_ref(x)
    ref_d = on_real(real_logits).mean() + on_fake(D_ref(fake.detach())).mean()
    ref_d = ref_d + r1_term(real_logits, x, 2.0)
    ref_g = g_fake(D_ref(fake)).mean()

    assert_conforms(d_loss, ref_d, D, ref_modules=(D_ref,))
    assert_conforms(g_loss, ref_g, G, D, ref_modules=(G, D_ref))
    assert torch.equal(gen.get_state(), ref_gen.get_state())


def test_eval_mode_is_the_plain_discriminator():
    G, D = tiny_stylegan2()
    real, _, _ = step_batch(G)
    plain = copy.deepcopy(D).eval()
    method = build_method("pconv", {"layers": "all"})
    _, D = method.prepare(G, D, RunEnv())
    D.eval()
    torch.testing.assert_close(D(real), plain(real), rtol=0, atol=0)
