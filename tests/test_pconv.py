"""PConv: the perturbation's statistics, the layer against a second implementation, eval
mode, prepare's effect on D, options, compatibility and a few real training steps."""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from adaptivemix.errors import ConfigError
from adaptivemix.gan.losses import build_adv_loss
from adaptivemix.gan.methods import METHODS, IncompatibleError, RunEnv, build_method
from adaptivemix.gan.trainer import TrainState, build_state, train_gan, train_step
from adaptivemix.io import load_torch
from adaptivemix.models import build_models, build_models_on_meta
from baselines.pconv import PConvOptions, PerturbedConv2d, bind_generator, perturb
from tests.helpers import tiny_run_config

Z = 5.0  # tolerances are Z standard deviations of the statistic under the stated law


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def dcgan_D(seed: int = 0) -> nn.Module:
    return build_models("dcgan", 16, 1, 16, 8, 8, seed)[1]


def perturbed_conv(seed: int = 0, **options) -> tuple[nn.Conv2d, PerturbedConv2d]:
    """A plain conv and an independent perturbed copy with the same weights."""
    with torch.random.fork_rng(devices=[]):  # tests leave the global RNG as they found it
        torch.manual_seed(seed)
        plain = nn.Conv2d(3, 5, 4, stride=2, padding=1)
    return plain, PerturbedConv2d.convert(copy.deepcopy(plain), PConvOptions(**options))


# --- the perturbation itself -------------------------------------------------------------


def test_dropout_zeroes_a_fraction_rate_of_the_elements():
    rate, x = 0.3, torch.ones(64, 32, 16, 16)
    n = x.numel()
    zeroed = float((perturb(x, PConvOptions(rate=rate), gen()) == 0).double().mean())
    assert abs(zeroed - rate) < Z * math.sqrt(rate * (1 - rate) / n)  # binomial std


def test_rescaled_dropout_preserves_the_mean():
    rate = 0.25
    x = 1.0 + torch.rand(64, 16, 16, 16, generator=gen(1))
    y = perturb(x, PConvOptions(rate=rate), gen(2)).double()
    # y_i = x_i * B_i / (1 - rate), B_i ~ Bernoulli(1 - rate): E = x_i, Var = x_i² r / (1 - r)
    std_of_mean = math.sqrt(float(x.double().square().sum()) * rate / (1 - rate)) / x.numel()
    assert abs(float(y.mean()) - float(x.double().mean())) < Z * std_of_mean
    assert abs(float(y.mean()) - float(x.double().mean())) > 0  # it did perturb


@pytest.mark.parametrize("rescale", [True, False])
def test_kept_elements_are_scaled_by_exactly_one_over_one_minus_rate(rescale):
    rate = 0.4
    x = torch.randn(8, 4, 8, 8, generator=gen(3))
    y = perturb(x, PConvOptions(rate=rate, rescale=rescale), gen(4))
    kept = torch.rand(x.shape, generator=gen(4)) >= rate  # the documented draw
    scale = 1.0 / (1.0 - rate) if rescale else 1.0
    assert torch.equal(y[kept], x[kept] * scale)
    assert torch.equal(y[~kept], torch.zeros_like(y[~kept]))
    ones = perturb(torch.ones(4096), PConvOptions(rate=rate, rescale=rescale), gen(5))
    assert set(ones.unique().tolist()) == {0.0, torch.tensor(scale).item()}


def test_gaussian_adds_zero_mean_noise_of_std_rate():
    rate, x = 0.2, torch.randn(32, 16, 16, 16, generator=gen(6))
    noise = (perturb(x, PConvOptions(rate=rate, distribution="gaussian"), gen(7)) - x).double()
    n = noise.numel()
    assert abs(float(noise.mean())) < Z * rate / math.sqrt(n)
    assert abs(float(noise.std()) - rate) < Z * rate / math.sqrt(2 * n)  # std of sample std
    # additive, not multiplicative: the noise does not scale with x
    big = perturb(100 * x, PConvOptions(rate=rate, distribution="gaussian"), gen(7))
    assert torch.allclose(big - 100 * x, noise.float(), atol=1e-4)


def test_rate_zero_draws_nothing_and_changes_nothing():
    g = gen(8)
    state = g.get_state()
    x = torch.randn(2, 3, 4, 4)
    assert perturb(x, PConvOptions(rate=0.0), g) is x
    assert torch.equal(g.get_state(), state)


# --- the layer -----------------------------------------------------------------------------


def test_layer_output_matches_a_second_implementation():
    rate = 0.3
    plain, conv = perturbed_conv(rate=rate)
    x = torch.randn(6, 3, 16, 16, generator=gen(9))
    bind_generator(conv, gen(10))
    y = conv.train()(x)
    mask = (torch.rand(x.shape, generator=gen(10)) >= rate).float()
    expected = F.conv2d(mask * x / (1 - rate), plain.weight, plain.bias, stride=2, padding=1)
    assert torch.allclose(y, expected, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(y, plain(x), atol=1e-3)


def test_gaussian_layer_matches_a_second_implementation():
    plain, conv = perturbed_conv(rate=0.1, distribution="gaussian")
    x = torch.randn(4, 3, 8, 8, generator=gen(11))
    bind_generator(conv, gen(12))
    noise = torch.randn(x.shape, generator=gen(12))
    expected = F.conv2d(x + 0.1 * noise, plain.weight, plain.bias, stride=2, padding=1)
    assert torch.allclose(conv.train()(x), expected, rtol=1e-5, atol=1e-6)


def test_eval_mode_is_the_plain_convolution_bit_for_bit():
    plain, conv = perturbed_conv(rate=0.5)
    x = torch.randn(4, 3, 16, 16, generator=gen(13))
    conv.eval()  # no generator bound: eval mode must not need one
    assert torch.equal(conv(x), plain(x))


def test_same_seed_same_output_other_seed_other_output_global_rng_untouched():
    _, conv = perturbed_conv(rate=0.3)
    x = torch.randn(4, 3, 16, 16, generator=gen(14))
    global_state = torch.get_rng_state()
    outputs = []
    for seed in (1, 1, 2):
        bind_generator(conv, gen(seed))
        outputs.append(conv.train()(x))
    assert torch.equal(outputs[0], outputs[1])
    assert not torch.equal(outputs[0], outputs[2])
    assert torch.equal(torch.get_rng_state(), global_state)


def test_gradients_flow_to_kept_inputs_and_to_weights():
    rate = 0.5
    _, conv = perturbed_conv(rate=rate)
    x = torch.randn(2, 3, 8, 8, generator=gen(15), requires_grad=True)
    bind_generator(conv, gen(16))
    conv.train()(x).square().sum().backward()
    kept = torch.rand(x.shape, generator=gen(16)) >= rate
    assert torch.all(x.grad[~kept] == 0)  # a dropped input does not influence the output
    assert (x.grad[kept] != 0).float().mean() > 0.9
    assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0
    assert conv.bias.grad is not None and torch.isfinite(conv.weight.grad).all()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cpu_generator_drives_a_layer_on_another_device():
    _, conv = perturbed_conv(rate=0.3)
    x = torch.randn(4, 3, 16, 16, generator=gen(19))
    bind_generator(conv, gen(20))
    on_cpu = conv.train()(x)
    bind_generator(conv, gen(20))
    on_gpu = conv.cuda()(x.cuda())
    assert torch.allclose(on_gpu.cpu(), on_cpu, atol=1e-4)  # same mask, drawn on the CPU


def test_training_mode_without_a_generator_raises():
    _, conv = perturbed_conv(rate=0.1)
    with pytest.raises(RuntimeError, match="no generator bound"):
        conv.train()(torch.randn(1, 3, 8, 8))


# --- prepare and compatibility ---------------------------------------------------------------


def prepared(**options) -> nn.Module:
    return build_method("pconv", options).prepare(nn.Identity(), dcgan_D(), RunEnv())[1]


def test_prepare_keeps_parameters_and_state_dict():
    D = dcgan_D()
    before = {k: v.clone() for k, v in D.state_dict().items()}
    params = list(D.parameters())
    build_method("pconv").prepare(nn.Identity(), D, RunEnv())
    after = D.state_dict()
    assert list(after) == list(before)
    assert all(torch.equal(after[k], before[k]) for k in before)
    assert all(a is b for a, b in zip(D.parameters(), params, strict=True))
    assert D.per_sample_features is True


@pytest.mark.parametrize(("layers", "first_perturbed"), [("all_but_first", False), ("all", True)])
def test_layers_option_selects_the_convolutions(layers, first_perturbed):
    D = prepared(layers=layers)
    convs = [m for m in D.body if isinstance(m, nn.Conv2d)]
    assert len(convs) == 3
    assert isinstance(convs[0], PerturbedConv2d) is first_perturbed
    assert type(convs[0]) is (PerturbedConv2d if first_perturbed else nn.Conv2d)
    assert all(type(c) is PerturbedConv2d for c in convs[1:])


def test_prepared_D_is_plain_in_eval_mode_and_perturbed_in_training_mode():
    D, reference = prepared(rate=0.2), dcgan_D()
    x = torch.randn(4, 1, 16, 16, generator=gen(17))
    assert torch.equal(D.eval()(x), reference.eval()(x))
    assert bind_generator(D, gen(18)) == 2
    assert not torch.allclose(D.train()(x), reference.train()(x), atol=1e-4)


class LinearD(nn.Module):
    def __init__(self, n_convs: int = 0):
        super().__init__()
        self.body = nn.Sequential(*[nn.Conv2d(1, 1, 3, padding=1) for _ in range(n_convs)])
        self.fc = nn.Linear(16, 1)

    def features(self, x):
        return self.body(x).flatten(1)

    def head(self, f):
        return self.fc(f).squeeze(1)


@pytest.mark.parametrize(
    ("n_convs", "layers"), [(0, "all"), (0, "all_but_first"), (1, "all_but_first")]
)
def test_check_compatible_refuses_a_D_without_convolutions_to_perturb(n_convs, layers):
    method = build_method("pconv", {"layers": layers})
    with pytest.raises(IncompatibleError, match=r"LinearD has none to perturb"):
        method.check_compatible(nn.Identity(), LinearD(n_convs))
    with pytest.raises(IncompatibleError):
        method.prepare(nn.Identity(), LinearD(n_convs), RunEnv())


def test_check_compatible_accepts_dcgan_on_meta_and_a_single_conv_with_all():
    G, D = build_models_on_meta("dcgan", 16, {"z_dim": 16, "g_width": 8, "d_width": 8}, 1)
    build_method("pconv").check_compatible(G, D)
    build_method("pconv", {"layers": "all"}).check_compatible(nn.Identity(), LinearD(1))


def test_check_compatible_still_runs_the_base_check():
    with pytest.raises(IncompatibleError, match=r"no features\(\)"):
        build_method("pconv").check_compatible(nn.Identity(), nn.Conv2d(1, 1, 3))


# --- options -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "key"),
    [
        ({"rate": 1.0}, "rate"),
        ({"rate": -0.1}, "rate"),
        ({"rate": float("nan")}, "rate"),
        ({"rate": -1.0, "distribution": "gaussian"}, "rate"),
        ({"rate": "0.1"}, "rate"),
        ({"distribution": "uniform"}, "distribution"),
        ({"layers": "first"}, "layers"),
        ({"rescale": 1}, "rescale"),
        ({"p": 0.1}, "p"),
    ],
)
def test_bad_options_name_their_key(options, key):
    with pytest.raises(ConfigError) as err:
        build_method("pconv", options)
    assert err.value.key == f"gan.method_options.pconv.{key}"


def test_defaults_and_valid_options():
    assert "pconv" in METHODS.names()
    method = build_method("pconv")
    assert method.describe() == {
        "rate": 0.1, "distribution": "dropout", "rescale": True, "layers": "all_but_first"
    }  # fmt: skip
    assert build_method("pconv", {"rate": 2.0, "distribution": "gaussian"}).options.rate == 2.0
    assert build_method("pconv", {"rate": 0}).options.rate == 0


# --- training ------------------------------------------------------------------------------


def run_steps(digits, n: int, seed: int = 0, **options) -> tuple[list[dict | None], TrainState]:
    cfg = tiny_run_config("pconv", seed=seed, method_options=options)
    method = build_method("pconv", options)
    state = build_state(cfg, method, digits.channels)
    adv, reals = build_adv_loss("nonsaturating"), digits.images["train"]
    return [train_step(state, method, adv, reals, cfg) for _ in range(n)], state


@pytest.mark.parametrize("options", [{}, {"distribution": "gaussian", "layers": "all"}])
def test_training_steps_run_deterministically_from_the_run_generator(digits16, options):
    global_state = torch.get_rng_state()
    logs_a, state = run_steps(digits16, 3, **options)
    logs_b, _ = run_steps(digits16, 3, **options)
    assert torch.equal(torch.get_rng_state(), global_state)  # the global RNG is never used
    assert all(row is not None and math.isfinite(row["d_loss"]) for row in logs_a)
    assert logs_a == logs_b
    assert sum(isinstance(m, PerturbedConv2d) for m in state.D.modules()) >= 2
    assert all(
        m.generator is state.generator for m in state.D.modules() if isinstance(m, PerturbedConv2d)
    )
    logs_c, _ = run_steps(digits16, 3, seed=1, **options)
    assert logs_c != logs_a


def vanilla_steps(digits, n: int) -> list[dict | None]:
    cfg, method = tiny_run_config("vanilla"), build_method("vanilla")
    state = build_state(cfg, method, digits.channels)
    adv, reals = build_adv_loss("nonsaturating"), digits.images["train"]
    return [train_step(state, method, adv, reals, cfg) for _ in range(n)]


def test_training_differs_from_vanilla_and_equals_it_at_rate_zero(digits16):
    vanilla = vanilla_steps(digits16, 2)
    assert run_steps(digits16, 2, rate=0.0)[0] == vanilla
    assert run_steps(digits16, 2)[0][1]["d_loss"] != vanilla[1]["d_loss"]


class KilledError(Exception):
    pass


def test_an_interrupted_run_resumes_to_the_uninterrupted_result(tmp_path, digits16):
    cfg = tiny_run_config("pconv", steps=8, checkpoint_every=4)

    def train(name, callbacks=()):
        return train_gan(
            cfg, digits16, tmp_path / name, tmp_path / f"{name}-state", None, callbacks
        )

    def die_at_6(step):
        if step == 6:
            raise KilledError

    train("straight")
    with pytest.raises(KilledError):
        train("resumed", [die_at_6])
    assert train("resumed")["resumed_from_step"] == 4
    straight = load_torch(tmp_path / "straight-state/checkpoint.pt")
    resumed = load_torch(tmp_path / "resumed-state/checkpoint.pt")
    for part in ("G", "D"):
        assert all(torch.equal(v, resumed[part][k]) for k, v in straight[part].items())
