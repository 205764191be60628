"""FGSM and PGD against closed forms and each other; robust accuracy; side effects; options."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from adaptivemix.classify.attacks import ATTACKS, build_attack, robust_accuracy
from adaptivemix.classify.wrn import build_wrn
from adaptivemix.errors import ConfigError


def linear_model(seed: int = 0, features: int = 12, classes: int = 4) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Flatten(), nn.Linear(features, classes))


def pixels(n: int = 16, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 2, 2, generator=g), torch.randint(4, (n,), generator=g)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def test_registered():
    assert {"fgsm", "pgd"} <= set(ATTACKS.names())
    pgd = build_attack("pgd").options
    assert (pgd.eps, pgd.steps, pgd.step_size, pgd.random_start) == (8 / 255, 10, 2 / 255, True)
    assert build_attack("fgsm").options.eps == 8 / 255


@pytest.mark.parametrize("eps", [0.01, 0.1, 0.5])
def test_fgsm_on_a_linear_model_matches_the_closed_form(eps):
    model = linear_model()
    x, y = pixels()
    w, b = model[1].weight.detach(), model[1].bias.detach()
    flat = x.flatten(1)
    # CE(Wx + b, y): ∇ₓ = Wᵀ(softmax(Wx + b) − onehot(y)), per sample
    grad = (torch.softmax(flat @ w.T + b, dim=1) - F.one_hot(y, 4).float()) @ w
    expected = (flat + eps * grad.sign()).clamp(0, 1).view_as(x)
    x_adv = build_attack("fgsm", {"eps": eps}).perturb(model, x, y, gen())
    torch.testing.assert_close(x_adv, expected)


def test_pgd_with_one_full_step_and_no_random_start_is_fgsm():
    model = linear_model(1)
    x, y = pixels(seed=1)
    pgd = build_attack("pgd", {"eps": 0.1, "steps": 1, "step_size": 0.1, "random_start": False})
    fgsm = build_attack("fgsm", {"eps": 0.1})
    assert torch.equal(pgd.perturb(model, x, y, gen()), fgsm.perturb(model, x, y, gen()))


@pytest.mark.parametrize("random_start", [True, False])
def test_pgd_stays_in_the_ball_and_the_pixel_range(random_start):
    model = linear_model(2)
    x, y = pixels(32, seed=2)
    x[:4], x[4:8] = 0.0, 1.0  # pixels on both edges of the range
    eps = 0.05
    opts = {"eps": eps, "steps": 7, "step_size": 0.02, "random_start": random_start}
    x_adv = build_attack("pgd", opts).perturb(model, x, y, gen())
    assert (x_adv - x).abs().max() <= eps + 1e-7
    assert x_adv.min() >= 0 and x_adv.max() <= 1
    assert not torch.equal(x_adv, x)


def test_pgd_random_start_comes_from_the_generator():
    model = linear_model(3)
    x, y = pixels(seed=3)
    pgd = build_attack("pgd", {"steps": 2})
    a = pgd.perturb(model, x, y, gen(5))
    assert torch.equal(a, pgd.perturb(model, x, y, gen(5)))
    assert not torch.equal(a, pgd.perturb(model, x, y, gen(6)))


def blobs(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two classes of 3×4×4 images around two grey levels, inside [0, 1]."""
    centres = torch.rand(2, 3, 4, 4, generator=torch.Generator().manual_seed(99)) * 0.4 + 0.3
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(2, (n,), generator=g)
    x = centres[y] + 0.08 * torch.randn(n, 3, 4, 4, generator=g)
    return x.clamp(0, 1), y


@pytest.fixture(scope="module")
def trained_mlp():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(48, 32), nn.ReLU(), nn.Linear(32, 2))
    x, y = blobs(256, seed=0)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(150):
        optimiser.zero_grad()
        F.cross_entropy(model(x), y).backward()
        optimiser.step()
    model.zero_grad(set_to_none=True)
    return model


def test_pgd_is_at_least_as_strong_as_fgsm(trained_mlp):
    x, y = blobs(200, seed=1)
    clean = robust_accuracy(trained_mlp, None, x, y, 64, gen())
    assert clean > 0.95
    for eps in (0.04, 0.08, 0.1):
        fgsm = build_attack("fgsm", {"eps": eps})
        pgd = build_attack("pgd", {"eps": eps, "steps": 20, "step_size": eps / 4})
        acc_fgsm = robust_accuracy(trained_mlp, fgsm, x, y, 64, gen())
        acc_pgd = robust_accuracy(trained_mlp, pgd, x, y, 64, gen())
        assert acc_pgd <= acc_fgsm <= clean
        with torch.no_grad():
            loss_fgsm = F.cross_entropy(trained_mlp(fgsm.perturb(trained_mlp, x, y, gen())), y)
            loss_pgd = F.cross_entropy(trained_mlp(pgd.perturb(trained_mlp, x, y, gen())), y)
        assert loss_pgd >= loss_fgsm
    assert acc_pgd < acc_fgsm < clean  # at the largest budget both do damage, PGD more


def test_robust_accuracy_without_attack_is_clean_accuracy(trained_mlp):
    x, y = blobs(70, seed=2)
    y[:10] = 1 - y[:10]  # some mistakes, so the count matters
    with torch.no_grad():
        expected = (trained_mlp(x).argmax(1) == y).float().mean().item()
    assert robust_accuracy(trained_mlp, None, x, y, 32, gen()) == pytest.approx(expected)


class ModeRecorder(nn.Module):
    """BatchNorm and dropout (mode-dependent) that records its mode at every call."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.bn = nn.BatchNorm1d(12)
        self.drop = nn.Dropout(0.5)
        self.fc = nn.Linear(12, 4)
        self.modes: list[bool] = []

    def forward(self, x):
        self.modes.append(self.training)
        return self.fc(self.drop(self.bn(x.flatten(1))))


@pytest.mark.parametrize("name", ["fgsm", "pgd"])
@pytest.mark.parametrize("training", [True, False])
def test_attacks_leave_modes_and_gradients_alone(name, training):
    model = ModeRecorder().train(training)
    model.drop.eval()  # a mixed state must come back as it was
    model.fc.weight.grad = torch.full_like(model.fc.weight, 0.5)
    stats = model.bn.running_mean.clone()
    x, y = pixels(seed=4)
    build_attack(name).perturb(model, x, y, gen())
    robust_accuracy(model, build_attack(name), x, y, 8, gen())
    assert model.modes and not any(model.modes)  # attacked in eval mode
    assert model.training == training and model.bn.training == training
    assert not model.drop.training
    assert torch.equal(model.fc.weight.grad, torch.full_like(model.fc.weight, 0.5))
    assert model.fc.bias.grad is None and model.bn.weight.grad is None
    assert torch.equal(model.bn.running_mean, stats)


def test_attacks_run_on_a_tiny_wrn():
    torch.manual_seed(0)
    model = build_wrn(3, 1, 10, 1, "orthogonal", [0.5], [0.25])
    x = torch.rand(6, 1, 8, 8)
    y = torch.randint(3, (6,))
    for name in ATTACKS.names():
        x_adv = build_attack(name, {"eps": 0.1}).perturb(model, x, y, gen())
        assert x_adv.shape == x.shape and (x_adv - x).abs().max() <= 0.1 + 1e-7
        assert not x_adv.requires_grad
    assert 0 <= robust_accuracy(model, build_attack("pgd"), x, y, 4, gen()) <= 1
    assert model.training


@pytest.mark.parametrize(
    ("name", "field", "value"),
    [
        ("fgsm", "eps", 0.0),
        ("fgsm", "eps", 1.5),
        ("fgsm", "eps", -0.1),
        ("pgd", "eps", 2),
        ("pgd", "steps", 0),
        ("pgd", "step_size", 0.0),
        ("pgd", "step_size", 0.5),  # larger than eps
        ("pgd", "random_start", 1),  # not a bool
    ],
)
def test_bad_options_name_their_key(name, field, value):
    with pytest.raises(ConfigError) as err:
        build_attack(name, {field: value})
    assert err.value.key == f"classify.attacks.{name}.{field}"
