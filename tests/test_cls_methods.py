"""Classification methods against second, plain-torch implementations of their definitions.

Each reference draws its random numbers from a generator with the same seed, in the order
the method documents, and writes the loss out with elementary ops. timm's Mixup and CutMix
are checked on their outputs (mixed images and soft targets) by hand.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import adaptivemix.classify.adaptivemix  # noqa: F401  (registers "adaptivemix")
import baselines  # noqa: F401  (registers mixup, cutmix, manifold-mixup)
from adaptivemix.classify.methods import CLS_METHODS, ClsBatch, build_cls_method
from adaptivemix.classify.wrn import CLS_ARCHS, build_wrn
from adaptivemix.errors import ConfigError

NUM_CLASSES = 5


def tiny_wrn(head: str = "orthogonal", in_channels: int = 3, arch: str = "wrn") -> torch.nn.Module:
    torch.manual_seed(0)
    mean, std = [0.4] * in_channels, [0.3] * in_channels
    build = build_wrn if arch == "wrn" else CLS_ARCHS.get(arch)
    return build(NUM_CLASSES, in_channels, 10, 1, head, mean, std)


def make_batch(seed: int = 0, n: int = 6, size: int = 8, in_channels: int = 3) -> ClsBatch:
    data = torch.Generator().manual_seed(1000 + seed)
    x = torch.rand(n, in_channels, size, size, generator=data)
    y = torch.randint(NUM_CLASSES, (n,), generator=data)
    return ClsBatch(x, y, NUM_CLASSES, torch.Generator().manual_seed(seed))


def reference_beta(gen: torch.Generator, alpha: float) -> float:
    """One Beta(α, α) draw: a 62-bit seed from ``gen`` into NumPy's default generator."""
    seed = int(torch.randint(0, 2**62, (1,), generator=gen))
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def cross_entropy(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return -logits.log_softmax(dim=1)[torch.arange(len(y)), y].mean()


def soft_cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return (-target * logits.log_softmax(dim=1)).sum(dim=1).mean()


def one_hot(y: torch.Tensor) -> torch.Tensor:
    return torch.eye(NUM_CLASSES)[y]


# ---------------------------------------------------------------- ERM


def test_erm_is_cross_entropy():
    model, batch = tiny_wrn("linear"), make_batch()
    loss, logs = build_cls_method("erm").loss(model, batch)
    torch.testing.assert_close(loss, F.cross_entropy(model(batch.x), batch.y))
    assert logs["loss_ce"] == pytest.approx(loss.item())


# ---------------------------------------------------------------- AdaptiveMix


def reference_adaptivemix(model, batch, alpha, noise_std, weight, distance, three_passes):
    """The definition of METHODS.md with plain ops; draws: permutation, λ, noise."""
    gen = torch.Generator().manual_seed(batch.generator.initial_seed())
    x, y = batch.x, batch.y
    perm = torch.randperm(len(x), generator=gen)
    lam = reference_beta(gen, alpha)
    x_mix = lam * x + (1 - lam) * x[perm]
    if three_passes:  # the official code: separate passes over x, x[perm], x_mix
        f_a, f_b, f_mix = model.features(x), model.features(x[perm]), model.features(x_mix)
    else:  # one batched pass over x and x_mix (BatchNorm statistics span both)
        both = model.features(torch.cat([x, x_mix]))
        f_a, f_mix = both[: len(x)], both[len(x) :]
        f_b = f_a[perm]
    z = lam * f_a + (1 - lam) * f_b
    noise = torch.randn(z.shape, generator=gen) * noise_std
    target = (z + noise).detach()
    w = model.head.weight
    logits = (z @ w.T).abs() + (f_mix @ w.T).abs()
    ce = lam * cross_entropy(logits, y) + (1 - lam) * cross_entropy(logits, y[perm])
    if distance == "mse":
        consistency = ((f_mix - target) ** 2).mean()
    else:
        cos = (f_mix * target).sum(1) / (f_mix.norm(dim=1) * target.norm(dim=1))
        consistency = 1 - cos.mean()
    return ce + weight * consistency, ce, consistency, lam


@pytest.mark.parametrize(
    ("training", "options"),
    [
        (False, {}),  # eval-mode BatchNorm: per-sample, every pass layout agrees
        (False, {"alpha": 0.4, "noise_std": 0.2, "consistency_weight": 3.0}),
        (False, {"distance": "cosine", "batched_pass": True}),
        (True, {}),  # training mode: upstream's three passes (the default)
        (True, {"distance": "cosine", "alpha": 2.0}),
        (True, {"batched_pass": True}),  # our single batched pass over [x, x_mix]
        (True, {"distance": "cosine", "alpha": 2.0, "batched_pass": True}),
    ],
)
def test_adaptivemix_matches_reference(training, options):
    model, batch = tiny_wrn("orthogonal").train(training), make_batch(seed=3)
    method = build_cls_method("adaptivemix", options)
    opt = method.options
    loss, logs = method.loss(model, batch)
    ref, ce, consistency, lam = reference_adaptivemix(
        model, batch, opt.alpha, opt.noise_std, opt.consistency_weight, opt.distance,
        three_passes=not opt.batched_pass,
    )  # fmt: skip
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-6)
    assert logs["lam"] == lam
    assert logs["loss_ce"] == pytest.approx(ce.item(), rel=1e-5)
    assert logs["loss_consistency"] == pytest.approx(consistency.item(), rel=1e-4, abs=1e-7)
    assert set(logs) == {"loss_ce", "loss_consistency", "lam"}


def test_adaptivemix_works_with_a_linear_head():
    model, batch = tiny_wrn("linear"), make_batch(seed=1)
    loss, _ = build_cls_method("adaptivemix").loss(model, batch)
    assert torch.isfinite(loss)


# ---------------------------------------------------------------- timm Mixup / CutMix


def timm_seed(gen_seed: int) -> int:
    return int(torch.randint(0, 2**32, (1,), generator=torch.Generator().manual_seed(gen_seed)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mixup_mixes_with_the_flipped_batch(seed):
    batch = make_batch(seed=seed)
    x_before = batch.x.clone()
    method = build_cls_method("mixup", {"alpha": 0.7})
    x_mixed, target = method.mix(batch)
    assert torch.equal(batch.x, x_before)  # the batch itself is not mixed in place
    # timm, mode "batch" with prob 1: one uniform draw (the prob test), then λ ~ Beta(α, α),
    # both from NumPy's global generator, which the method seeds from the batch generator
    rs = np.random.RandomState(timm_seed(seed))
    rs.rand()
    lam = float(rs.beta(0.7, 0.7))
    x, y = batch.x, batch.y
    torch.testing.assert_close(x_mixed, lam * x + (1 - lam) * x.flip(0))
    torch.testing.assert_close(target, lam * one_hot(y) + (1 - lam) * one_hot(y.flip(0)))


def test_mixup_label_smoothing():
    batch = make_batch(seed=4)
    _, target = build_cls_method("mixup", {"label_smoothing": 0.1}).mix(batch)
    _, plain = build_cls_method("mixup").mix(make_batch(seed=4))
    torch.testing.assert_close(target, plain * 0.9 + 0.1 / NUM_CLASSES)


@pytest.mark.parametrize("seed", range(6))
def test_cutmix_pastes_a_box_of_the_flipped_batch(seed):
    batch = make_batch(seed=seed, size=16)
    x, y = batch.x, batch.y
    x_mixed, target = build_cls_method("cutmix").mix(batch)
    # the box: pixels taken from x.flip(0) (random floats never agree by chance)
    inside = (x_mixed == x.flip(0)).all(dim=1).all(dim=0)  # (H, W)
    rows, cols = inside.any(dim=1), inside.any(dim=0)
    box = rows[:, None] & cols[None, :]
    assert torch.equal(inside, box) and box.any()  # a rectangle (non-empty for these seeds)
    assert torch.equal(x_mixed[..., box], x.flip(0)[..., box])
    assert torch.equal(x_mixed[..., ~box], x[..., ~box])
    lam = 1 - box.sum().item() / box.numel()  # λ corrected to the pasted area
    torch.testing.assert_close(target, lam * one_hot(y) + (1 - lam) * one_hot(y.flip(0)))


@pytest.mark.parametrize("name", ["mixup", "cutmix"])
def test_timm_loss_is_soft_target_cross_entropy(name):
    model, batch = tiny_wrn("linear"), make_batch(seed=2)
    method = build_cls_method(name)
    loss, logs = method.loss(model, batch)
    x_mixed, target = method.mix(make_batch(seed=2))
    torch.testing.assert_close(loss, soft_cross_entropy(model(x_mixed), target))
    assert logs["loss_ce"] == pytest.approx(loss.item())


@pytest.mark.parametrize("name", ["mixup", "cutmix"])
def test_timm_methods_are_reproducible_and_leave_numpy_alone(name):
    model, method = tiny_wrn("linear").eval(), build_cls_method(name)
    np.random.seed(12345)
    state = np.random.get_state()
    loss_a, _ = method.loss(model, make_batch(seed=7))
    after = np.random.get_state()
    assert after[0] == state[0] and np.array_equal(after[1], state[1])
    assert after[2:] == state[2:]
    loss_b, _ = method.loss(model, make_batch(seed=7))
    loss_c, _ = method.loss(model, make_batch(seed=8))
    assert torch.equal(loss_a, loss_b)
    assert not torch.equal(loss_a, loss_c)


@pytest.mark.parametrize("name", ["mixup", "cutmix"])
def test_timm_methods_refuse_an_odd_batch(name):
    with pytest.raises(ValueError, match="odd"):
        build_cls_method(name).loss(tiny_wrn("linear"), make_batch(n=5))


# ---------------------------------------------------------------- Manifold Mixup


def reference_manifold_logits(model, x, k, lam, perm):
    """The WRN written out stage by stage, with the mix inserted before stage k."""
    stages = [
        lambda h: model.groups[0](model.stem(h)),  # input -> after group 1
        model.groups[1],  # -> after group 2
        model.groups[2],  # -> last group
    ]
    h = (x - model.mean) / model.std
    for j, stage in enumerate(stages):
        if j == k:
            h = lam * h + (1 - lam) * h[perm]
        h = stage(h)
    f = F.relu(model.bn(h)).mean(dim=(2, 3))
    return f @ model.head.weight.T + model.head.bias


@pytest.mark.parametrize("k", [0, 1, 2])
def test_manifold_mixup_at_each_point(k):
    model, batch = tiny_wrn("linear"), make_batch(seed=5)
    loss, logs = build_cls_method("manifold-mixup", {"layers": [k], "alpha": 1.5}).loss(
        model, batch
    )
    gen = torch.Generator().manual_seed(5)
    assert int(torch.randint(1, (1,), generator=gen)) == 0  # the draw of the layer
    lam = reference_beta(gen, 1.5)
    perm = torch.randperm(len(batch.x), generator=gen)
    logits = reference_manifold_logits(model, batch.x, k, lam, perm)
    y = batch.y
    ref = lam * cross_entropy(logits, y) + (1 - lam) * cross_entropy(logits, y[perm])
    torch.testing.assert_close(loss, ref, rtol=1e-5, atol=1e-6)
    assert logs["lam"] == lam and logs["layer"] == k


def test_manifold_mixup_draws_the_layer_uniformly():
    model, method = tiny_wrn("linear").eval(), build_cls_method("manifold-mixup")
    assert method.options.alpha == 2.0 and method.options.layers == (0, 1, 2)
    batch = make_batch(seed=9)
    gen = torch.Generator().manual_seed(9)
    seen = []
    for _ in range(12):
        expected = int(torch.randint(3, (1,), generator=gen))
        reference_beta(gen, 2.0)
        torch.randperm(len(batch.x), generator=gen)
        _, logs = method.loss(model, batch)
        assert logs["layer"] == expected
        seen.append(expected)
    assert set(seen) == {0, 1, 2}


def test_manifold_mixup_refuses_a_point_the_model_lacks():
    method = build_cls_method("manifold-mixup", {"layers": [0, 3]})
    with pytest.raises(ValueError, match="mixing points"):
        method.loss(tiny_wrn("linear"), make_batch())


# ---------------------------------------------------------------- every method


@pytest.mark.parametrize("arch", CLS_ARCHS.names())
@pytest.mark.parametrize("head", ["linear", "orthogonal"])
@pytest.mark.parametrize("name", CLS_METHODS.names())
def test_gradients_reach_every_trainable_parameter(name, head, arch):
    model, batch = tiny_wrn(head, arch=arch).train(), make_batch(seed=11, size=8)
    loss, logs = build_cls_method(name).loss(model, batch)
    assert loss.ndim == 0 and torch.isfinite(loss)
    assert all(isinstance(v, float) for v in logs.values())
    loss.backward()
    for pname, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None and torch.isfinite(p.grad).all(), pname
        else:
            assert p.grad is None, pname
    assert model.stem.weight.grad.abs().sum() > 0


@pytest.mark.parametrize("name", CLS_METHODS.names())
def test_same_seed_same_loss(name):
    model = tiny_wrn("orthogonal").eval()
    method = build_cls_method(name)
    a, _ = method.loss(model, make_batch(seed=21))
    b, _ = method.loss(model, make_batch(seed=21))
    assert torch.equal(a, b)


@pytest.mark.parametrize(
    ("name", "field", "value"),
    [
        ("adaptivemix", "alpha", 0.0),
        ("adaptivemix", "noise_std", -0.1),
        ("adaptivemix", "consistency_weight", -1.0),
        ("adaptivemix", "distance", "l1"),
        ("adaptivemix", "batched_pass", "yes"),
        ("mixup", "alpha", -1.0),
        ("mixup", "label_smoothing", 1.0),
        ("cutmix", "alpha", 0),
        ("manifold-mixup", "alpha", 0.0),
        ("manifold-mixup", "layers", []),
        ("manifold-mixup", "layers", [1, 1]),
        ("manifold-mixup", "layers", [-1]),
        ("manifold-mixup", "layers", "0"),
        ("adaptivemix", "beta", 1.0),  # unknown option
    ],
)
def test_bad_options_name_their_key(name, field, value):
    with pytest.raises(ConfigError) as err:
        build_cls_method(name, {field: value})
    assert err.value.key == f"classify.method_options.{name}.{field}"


def test_layers_from_a_config_list_become_a_tuple():
    method = build_cls_method("manifold-mixup", {"layers": [2, 0]})
    assert method.options.layers == (2, 0)
    assert method.describe()["layers"] == (2, 0)
