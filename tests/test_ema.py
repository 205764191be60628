"""Our EMA against timm's ModelEmaV3 (the implementation it replaces) and against the formula."""

from __future__ import annotations

import torch
from timm.utils import ModelEmaV3
from torch import nn

from adaptivemix.gan.ema import ModelEma


def _model(seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.LazyLinear(2))


def _perturb(model: nn.Module, gen: torch.Generator) -> None:
    """A fake optimiser step: new weights, and BatchNorm statistics moved by a forward pass."""
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn(p.shape, generator=gen) * 0.1)
    model.train()(torch.randn(5, 3, 6, 6, generator=gen))


def test_bit_identical_to_timm_model_ema_v3():
    model = _model(0)
    model(torch.zeros(1, 3, 6, 6))  # materialise the lazy layer
    ours, timm_ema = ModelEma(model, decay=0.9), ModelEmaV3(model, decay=0.9)
    gen = torch.Generator().manual_seed(1)
    for step in range(1, 8):
        _perturb(model, gen)
        ours.update(model, step=step)
        timm_ema.update(model, step=step)
    theirs = timm_ema.module.state_dict()
    for name, value in ours.module.state_dict().items():
        assert torch.equal(value, theirs[name]), name
    assert not ours.module.training


def test_formula_copy_then_average():
    """Step 1 copies the model; later steps move by (1 - decay) toward it; counters copy."""
    model = _model(0)
    model(torch.zeros(1, 3, 6, 6))
    ema = ModelEma(model, decay=0.75)
    gen = torch.Generator().manual_seed(2)
    _perturb(model, gen)
    ema.update(model, step=1)
    first = {k: v.clone() for k, v in model.state_dict().items()}
    assert all(torch.equal(ema.module.state_dict()[k], v) for k, v in first.items())
    _perturb(model, gen)
    ema.update(model, step=2)
    for name, value in model.state_dict().items():
        got = ema.module.state_dict()[name]
        if value.is_floating_point():
            expected = 0.75 * first[name] + 0.25 * value
            torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-7)
        else:
            assert torch.equal(got, value), name  # num_batches_tracked is copied
