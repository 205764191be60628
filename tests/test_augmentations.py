"""DiffAugment and ADA: invariants of each op, randomness, trainer composition (ADA's ops,
draws and p rule against a reference: tests/test_ada_conformance.py).

Expected values come from slow per-sample references (slicing, ``np.pad``, ``np.rot90``)
or from hand computation, never from the code under test.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from adaptivemix.errors import ConfigError
from adaptivemix.gan.augment import (
    Augmentation,
    AugmentPipeline,
    DStepReport,
    build_augmentation,
)
from adaptivemix.gan.losses import build_adv_loss
from adaptivemix.gan.trainer import build_state, train_gan, train_step
from adaptivemix.gan.variants import build_variant
from adaptivemix.io import load_torch
from baselines import ada, diffaugment
from tests.helpers import tiny_run_config


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def images(n: int = 64, c: int = 1, side: int = 16, seed: int = 1) -> torch.Tensor:
    """Distinct, nonzero values in (-1, 1): a moved pixel can be told apart, a zero is a fill."""
    x = torch.rand(n, c, side, side, generator=gen(seed)) * 0.9 + 0.05
    sign = torch.randint(0, 2, x.shape, generator=gen(seed + 1)) * 2 - 1
    return x * sign


def np_shift(img: np.ndarray, dy: int, dx: int, mode: str) -> np.ndarray:
    """Slow reference: out[i, j] = img[i - dy, j - dx], outside filled by ``np.pad``."""
    _, h, w = img.shape
    s = max(abs(dy), abs(dx), 1)
    padded = np.pad(img, ((0, 0), (s, s), (s, s)), mode=mode)
    return padded[:, s - dy : s - dy + h, s - dx : s - dx + w]


def matching_shifts(out: np.ndarray, img: np.ndarray, bound: int, mode: str) -> list:
    shifts = itertools.product(range(-bound, bound + 1), repeat=2)
    return [(a, b) for a, b in shifts if np.array_equal(out, np_shift(img, a, b, mode))]


def fit_scale(y: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Per-sample least-squares a in y ≈ a·x."""
    return (y.flatten(1) * x.flatten(1)).sum(1) / x.flatten(1).square().sum(1)


# ---------------------------------------------------------------- DiffAugment


def test_empty_policy_is_the_identity():
    x = images()
    aug = build_augmentation("diffaugment", {"policy": []})
    assert torch.equal(aug(x, gen()), x)


def test_brightness_adds_one_value_per_sample_in_range():
    x = images(c=3)
    delta = diffaugment.brightness(x, gen()) - x
    per_sample = delta.flatten(1)
    assert torch.allclose(per_sample, per_sample[:, :1].expand_as(per_sample), atol=1e-6)
    assert per_sample.abs().max() <= 0.5 and per_sample[:, 0].unique().numel() == 64


def test_saturation_keeps_the_channel_mean_and_scales_the_rest():
    x = images(c=3)
    y = diffaugment.saturation(x, gen())
    assert torch.allclose(y.mean(1), x.mean(1), atol=1e-6)
    dev_x, dev_y = x - x.mean(1, keepdim=True), y - y.mean(1, keepdim=True)
    factor = fit_scale(dev_y, dev_x)
    assert torch.allclose(dev_y, dev_x * factor.view(-1, 1, 1, 1), atol=1e-5)
    assert factor.min() >= 0 and factor.max() <= 2
    gray = images(c=1)
    assert torch.allclose(diffaugment.saturation(gray, gen()), gray, atol=1e-6)


def test_contrast_keeps_the_image_mean():
    x = images(c=3)
    y = diffaugment.contrast(x, gen())
    assert torch.allclose(y.mean((1, 2, 3)), x.mean((1, 2, 3)), atol=1e-6)
    dev_x, dev_y = x - x.mean((1, 2, 3), keepdim=True), y - y.mean((1, 2, 3), keepdim=True)
    factor = fit_scale(dev_y, dev_x)
    assert torch.allclose(dev_y, dev_x * factor.view(-1, 1, 1, 1), atol=1e-5)
    assert factor.min() >= 0.5 - 1e-6 and factor.max() <= 1.5 + 1e-6


@pytest.mark.parametrize("dy,dx", [(0, 0), (2, -1), (-2, 2), (1, 0), (0, -2)])
@pytest.mark.parametrize("mode", ["constant", "reflect"])
def test_translate_matches_slicing(dy, dx, mode):
    x = images(n=3, c=2)
    shifts = torch.tensor([dy, 0, -dy]), torch.tensor([dx, dx, 0])
    out = diffaugment.translate(x, *shifts, 2, mode)
    for b in range(3):
        want = np_shift(x[b].numpy(), int(shifts[0][b]), int(shifts[1][b]), mode)
        np.testing.assert_array_equal(out[b].numpy(), want)


def test_random_translation_is_an_integer_shift_with_zero_fill():
    x = images()
    out = diffaugment.random_translation(x, gen(), 0.125)  # 16 px: shifts in [-2, 2]
    seen = set()
    for b in range(64):
        found = matching_shifts(out[b].numpy(), x[b].numpy(), 2, "constant")
        assert len(found) == 1, b
        seen.add(found[0])
    assert len(seen) > 10  # many of the 25 shifts occur in 64 draws


def test_cutout_zeroes_one_square_clipped_at_the_border():
    x = images()
    out = diffaugment.random_cutout(x, gen(), 0.5)  # side 8 on 16 px
    zero = out[:, 0] == 0
    assert torch.equal(out[~zero.unsqueeze(1)], x[~zero.unsqueeze(1)])
    clipped = 0
    for b in range(64):
        rows, cols = zero[b].any(1).nonzero().flatten(), zero[b].any(0).nonzero().flatten()
        # a rectangle: the zeros are exactly rows x cols, each a contiguous run
        assert zero[b].sum() == len(rows) * len(cols)
        for line in (rows, cols):
            first, last, run = int(line.min()), int(line.max()), len(line)
            assert last - first + 1 == run  # contiguous
            # centre in 0..16, so at least half the side shows; short only at a border
            assert 4 <= run <= 8 and (run == 8 or first == 0 or last == 15)
        clipped += len(rows) * len(cols) < 64
    assert 0 < clipped < 64


def test_diffaugment_is_differentiable():
    x = images(c=3).requires_grad_()
    out = build_augmentation("diffaugment")(x, gen())
    out.square().sum().backward()
    assert x.grad.abs().sum() > 0 and torch.isfinite(x.grad).all()
    x.grad = None
    kept = diffaugment.random_cutout(x, gen(), 0.5)
    kept.sum().backward()  # d(sum)/dx is the keep-mask: 1 outside the square, 0 inside
    assert torch.equal(x.grad, (kept != 0).float())


@pytest.mark.parametrize("name,options", [("diffaugment", {}), ("ada", {"initial_p": 0.7})])
def test_seeded_generator_is_reproducible_and_seeds_differ(name, options):
    x = images(c=3)
    aug = build_augmentation(name, options)
    assert torch.equal(aug(x, gen(5)), aug(x, gen(5)))
    assert not torch.equal(aug(x, gen(5)), aug(x, gen(6)))


@pytest.mark.parametrize("name", ["diffaugment", "ada"])
def test_global_rng_is_untouched(name):
    torch.manual_seed(0)
    before = torch.get_rng_state()
    build_augmentation(name, {"initial_p": 1.0} if name == "ada" else {})(images(c=3), gen())
    assert torch.equal(torch.get_rng_state(), before)


@pytest.mark.parametrize(
    "options,field",
    [
        ({"policy": ["color", "zoom"]}, "policy"),
        ({"policy": ["cutout", "cutout"]}, "policy"),
        ({"translation_ratio": 1.0}, "translation_ratio"),
        ({"translation_ratio": -0.1}, "translation_ratio"),
        ({"cutout_ratio": 1.5}, "cutout_ratio"),
        ({"cutout_ratio": float("nan")}, "cutout_ratio"),
        ({"policy": "color"}, "policy"),  # a string, not a list
    ],
)
def test_diffaugment_options_errors_name_the_key(options, field):
    with pytest.raises(ConfigError) as err:
        build_augmentation("diffaugment", options)
    assert err.value.key == f"gan.method_options.diffaugment.{field}"


def test_policy_list_from_yaml_becomes_a_tuple():
    aug = build_augmentation("diffaugment", {"policy": ["cutout", "color"]})
    assert aug.describe()["policy"] == ("cutout", "color")


# ---------------------------------------------------------------- ADA
# (each op, the draws and the p rule against a reference: tests/test_ada_conformance.py)


def test_ada_with_p_zero_is_the_identity():
    x = images(c=3)
    assert torch.equal(build_augmentation("ada")(x, gen()), x)


@pytest.mark.parametrize("c", [1, 3])
def test_ada_is_differentiable_and_keeps_shape_and_range_roughly(c):
    x = images(c=c).requires_grad_()
    out = build_augmentation("ada", {"initial_p": 1.0})(x, gen())
    assert out.shape == x.shape and torch.isfinite(out).all()
    out.square().sum().backward()
    assert x.grad.abs().sum() > 0 and torch.isfinite(x.grad).all()


def test_ada_refuses_images_that_are_neither_grey_nor_rgb():
    with pytest.raises(ValueError, match="1- or 3-channel"):
        build_augmentation("ada", {"initial_p": 0.5})(images(c=2), gen())


def test_ada_state_round_trip_resumes_exactly(tmp_path):
    aug = ada.Ada(ada.AdaOptions(ada_kimg=1.0, interval=1, initial_p=0.2))
    aug.update(DStepReport([torch.ones(16)], 16))  # r_t = 1 > 0.6: p + 16/1000
    path = tmp_path / "ada.pt"
    torch.save(aug.state_dict(), path)
    fresh = ada.Ada(ada.AdaOptions(ada_kimg=1.0, interval=1, initial_p=0.2))
    fresh.load_state_dict(torch.load(path, weights_only=True))
    assert fresh.p == aug.p == pytest.approx(0.216)
    x = images(c=3)
    assert torch.equal(fresh(x, gen(3)), aug(x, gen(3)))


@pytest.mark.parametrize(
    "options,field",
    [
        ({"target": 1.5}, "target"),
        ({"interval": 0}, "interval"),
        ({"interval": 2.5}, "interval"),
        ({"ada_kimg": 0.0}, "ada_kimg"),
        ({"initial_p": -0.1}, "initial_p"),
        ({"initial_p": 2}, "initial_p"),
        ({"xflip": -1.0}, "xflip"),
        ({"scale_std": float("nan")}, "scale_std"),
        ({"speed": 1}, "speed"),
    ],
)
def test_ada_options_errors_name_the_key(options, field):
    with pytest.raises(ConfigError) as err:
        build_augmentation("ada", options)
    assert err.value.key == f"gan.method_options.ada.{field}"


# ---------------------------------------------------------------- with the trainer

ADA_FAST = {"initial_p": 0.5, "interval": 2, "ada_kimg": 1.0}


@pytest.mark.parametrize("variant", ["vanilla+diffaugment", "vanilla+ada"])
def test_variants_train_with_the_trainer(digits16, variant):
    cfg = tiny_run_config(variant, method_options={"ada": ADA_FAST})
    method, augment = build_variant(cfg.method, cfg.method_options)
    state = build_state(cfg, method, digits16.channels, augment)
    plain_method, no_augment = build_variant("vanilla")
    plain = build_state(cfg, plain_method, digits16.channels, no_augment)  # same seed
    reals, adv = digits16.images["train"], build_adv_loss(cfg.adv_loss)
    for _ in range(4):
        logs = train_step(state, method, adv, reals, cfg)
        plain_logs = train_step(plain, plain_method, adv, reals, cfg)
        assert logs is not None and math.isfinite(logs["d_loss"]) and math.isfinite(logs["g_loss"])
        assert logs["d_loss"] != plain_logs["d_loss"]  # D saw augmented images
        if variant.endswith("ada"):
            assert {"ada_p", "ada_rt"} <= set(logs) and logs["ada_p"] >= 0
    if variant.endswith("ada"):
        assert state.augment.state_dict()["ada"]["p"] != 0.5  # adjusted after steps 2 and 4


class Spy(Augmentation):
    """The identity; records what the trainer reports after each D step."""

    def __init__(self):
        super().__init__()
        self.reports: list[DStepReport] = []

    def update(self, report: DStepReport) -> dict[str, float]:
        self.reports.append(report)
        return {}


def spy_run(digits16, variant: str, steps: int = 2, **overrides):
    """(spy, logits of each real pass the loss made, D forward passes per step)."""
    cfg = tiny_run_config(variant, method_options={"ada": ADA_FAST}, **overrides)
    method, pipeline = build_variant(cfg.method, cfg.method_options)
    spy = Spy()
    pipeline = AugmentPipeline([*pipeline.named, ("spy", spy)])
    state = build_state(cfg, method, digits16.channels, pipeline)
    seen, passes = [], []
    discriminate, features = method.discriminate, state.D.features

    def spy_discriminate(D, x, phase, ctx):
        out = discriminate(D, x, phase, ctx)
        seen.append(out.logits.detach()) if phase == "d_real" else None
        return out

    def counting_features(x):
        passes[-1] += 1
        return features(x)

    method.discriminate, state.D.features = spy_discriminate, counting_features
    reals, adv = digits16.images["train"], build_adv_loss(cfg.adv_loss)
    for _ in range(steps):
        passes.append(0)
        assert train_step(state, method, adv, reals, cfg) is not None
    return spy, seen, passes


@pytest.mark.parametrize("variant", ["vanilla", "adaptivemix", "vanilla+ada", "adaptivemix+ada"])
def test_the_trainer_hands_the_losss_own_real_logits_over(digits16, variant):
    spy, seen, passes = spy_run(digits16, variant)
    assert len(spy.reports) == 2 and all(r.batch_size == 16 for r in spy.reports)
    reported = [t for r in spy.reports for t in r.real_logits]
    assert len(reported) == len(seen) == 2  # one real pass per D step
    assert all(torch.equal(a, b) for a, b in zip(reported, seen, strict=True))
    if variant.endswith("+ada"):  # ADA measures on those logits: no D pass of its own
        assert passes == spy_run(digits16, variant.removesuffix("+ada"))[2]


@pytest.mark.parametrize("r1_gamma,reported", [(0.0, 0), (1.0, 1)])
def test_mixing_reports_only_its_plain_real_pass(digits16, r1_gamma, reported):
    spy, seen, _ = spy_run(digits16, "mixup", steps=1, r1_gamma=r1_gamma)
    assert len(spy.reports[0].real_logits) == reported == len(seen)


class KilledError(Exception):
    pass


def test_interrupted_ada_run_resumes_bit_exactly(tmp_path, digits16):
    # interval 3, checkpoints every 4 steps: the resume lands mid-interval (accumulators)
    cfg = tiny_run_config("vanilla+ada", method_options={"ada": {**ADA_FAST, "interval": 3}})

    def run(name: str, callbacks=()):
        folder = tmp_path / name
        return train_gan(cfg, digits16, folder / "run", folder / "state", callbacks=callbacks)

    def die_at_7(step: int) -> None:
        if step == 7:
            raise KilledError

    run("straight")
    with pytest.raises(KilledError):
        run("resumed", [die_at_7])
    assert run("resumed")["resumed_from_step"] == 4
    straight = load_torch(tmp_path / "straight/state/checkpoint.pt")
    resumed = load_torch(tmp_path / "resumed/state/checkpoint.pt")
    assert straight["augment"] == resumed["augment"] and straight["augment"]["ada"]["p"] != 0.5
    for part in ("G", "D"):
        assert all(torch.equal(v, resumed[part][k]) for k, v in straight[part].items())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("generator_device", ["cuda", "cpu"])
def test_images_on_cuda_with_a_generator_anywhere(generator_device):
    x = images(c=3).cuda()
    for aug in (build_augmentation("diffaugment"), build_augmentation("ada", {"initial_p": 1.0})):
        out = aug(x, torch.Generator(generator_device).manual_seed(0))
        assert out.device == x.device and out.shape == x.shape
