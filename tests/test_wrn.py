"""The Wide-ResNet classifier: size, shapes, the mixing-point split, heads, normalisation."""

from __future__ import annotations

import pytest
import torch

from adaptivemix.classify.wrn import CLS_ARCHS, WideResNet, build_wrn


def wrn_parameter_count(depth: int, widen: int, num_classes: int, in_channels: int, head: str):
    """Parameters of WRN-depth-widen counted from the architecture's definition."""
    n = (depth - 4) // 6
    widths = [16, 16 * widen, 32 * widen, 64 * widen]
    total = in_channels * widths[0] * 9  # 3×3 stem, no bias
    for group, stride in enumerate((1, 2, 2)):
        c_in, c_out = widths[group], widths[group + 1]
        for block in range(n):
            i = c_in if block == 0 else c_out
            total += 2 * i + 9 * i * c_out + 2 * c_out + 9 * c_out * c_out  # BN, conv, BN, conv
            if block == 0 and (i != c_out or stride != 1):
                total += i * c_out  # 1×1 projection
    total += 2 * widths[3]  # final BN
    total += widths[3] * num_classes + (num_classes if head == "linear" else 0)
    return total


def n_params(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def tiny(num_classes=5, in_channels=3, head="linear", mean=None, std=None, seed=0, widen=1):
    torch.manual_seed(seed)
    return build_wrn(num_classes, in_channels, 10, widen, head, mean, std)


def test_registered():
    assert CLS_ARCHS.get("wrn") is build_wrn


def test_wrn_28_10_has_the_standard_size():
    with torch.device("meta"):  # 36M parameters: count them without allocating
        model = build_wrn(10, 3, 28, 10, "linear", [0.5] * 3, [0.25] * 3)
    count = n_params(model)
    assert count == wrn_parameter_count(28, 10, 10, 3, "linear")
    assert abs(count - 36.48e6) < 0.01e6


@pytest.mark.parametrize(
    ("depth", "widen", "num_classes", "in_channels", "head"),
    [(10, 1, 10, 3, "linear"), (16, 2, 7, 1, "orthogonal"), (10, 2, 100, 3, "orthogonal")],
)
def test_parameter_count_formula(depth, widen, num_classes, in_channels, head):
    model = build_wrn(num_classes, in_channels, depth, widen, head)
    assert n_params(model) == wrn_parameter_count(depth, widen, num_classes, in_channels, head)


@pytest.mark.parametrize("in_channels", [1, 3])
@pytest.mark.parametrize("size", [16, 32])
@pytest.mark.parametrize("head", ["linear", "orthogonal"])
def test_output_shapes(in_channels, size, head):
    model = tiny(num_classes=7, in_channels=in_channels, head=head)
    x = torch.rand(3, in_channels, size, size)
    assert model.features(x).shape == (3, model.feature_dim) == (3, 64)
    assert model(x).shape == (3, 7) and model.num_classes == 7
    assert model.to_point(x, 0).shape == x.shape
    assert model.to_point(x, 1).shape == (3, 16, size, size)
    assert model.to_point(x, 2).shape == (3, 32, size // 2, size // 2)


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize("head", ["linear", "orthogonal"])
def test_to_point_from_point_is_the_trunk(training, head):
    model = tiny(head=head).train(training)
    x = torch.rand(4, 3, 16, 16)
    f = model.features(x)
    assert model.n_mix_points == 3
    for k in range(model.n_mix_points):
        torch.testing.assert_close(model.from_point(model.to_point(x, k), k), f)
    torch.testing.assert_close(model(x), model.head(f))
    with pytest.raises(ValueError, match="mixing point"):
        model.to_point(x, 3)


def test_orthogonal_head_is_frozen_orthogonal_and_nonnegative():
    model = tiny(num_classes=10, head="orthogonal")
    weight = model.head.weight
    assert not weight.requires_grad and weight.shape == (10, 64)
    assert [name for name, _ in model.head.named_parameters()] == ["weight"]  # no bias
    torch.testing.assert_close(weight @ weight.T, torch.eye(10), atol=1e-5, rtol=0)
    x = torch.rand(5, 3, 16, 16)
    f = model.features(x)
    torch.testing.assert_close(f.norm(dim=1), torch.ones(5))
    logits = model(x)
    assert (logits >= 0).all()
    torch.testing.assert_close(logits, (f @ weight.T).abs())
    trainable = {id(p) for p in model.parameters() if p.requires_grad}
    assert id(weight) not in trainable
    model(x).sum().backward()
    assert weight.grad is None


def test_linear_head_has_bias_and_unnormalised_features():
    model = tiny(head="linear")
    assert isinstance(model.head, torch.nn.Linear) and model.head.bias is not None
    assert all(p.requires_grad for p in model.parameters())
    f = model.features(torch.rand(5, 3, 16, 16))
    assert not torch.allclose(f.norm(dim=1), torch.ones(5))


@pytest.mark.parametrize("in_channels", [1, 3])
def test_normalisation_is_inside_the_model(in_channels):
    mean = [0.3, 0.5, 0.7][:in_channels]
    std = [0.2, 0.25, 0.4][:in_channels]
    normalising = tiny(in_channels=in_channels, mean=mean, std=std).eval()
    plain = tiny(in_channels=in_channels, mean=[0.0] * in_channels, std=[1.0] * in_channels)
    plain.eval()
    x = torch.rand(4, in_channels, 16, 16)
    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    torch.testing.assert_close(normalising(x), plain((x - m) / s))
    assert {"mean", "std"} <= dict(normalising.named_buffers()).keys()


def test_initialisation_follows_the_global_seed():
    a, b, c = tiny(seed=1), tiny(seed=1), tiny(seed=2)
    for (name, pa), pb in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(pa, pb), name
    assert not torch.equal(a.stem.weight, c.stem.weight)
    for m in a.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            assert torch.equal(m.weight, torch.ones_like(m.weight))
            assert torch.equal(m.bias, torch.zeros_like(m.bias))
    # He-normal (fan-out): variance 2 / (k·k·out_channels)
    conv = a.groups[2][0].conv2.weight
    assert conv.std().item() == pytest.approx((2 / (9 * conv.shape[0])) ** 0.5, rel=0.05)


@pytest.mark.parametrize("depth", [4, 9, 27, 30])
def test_bad_depth_raises(depth):
    with pytest.raises(ValueError, match="6n \\+ 4"):
        build_wrn(10, 3, depth, 1, "linear")


def test_bad_head_and_stats_raise():
    with pytest.raises(ValueError, match="head"):
        build_wrn(10, 3, 10, 1, "cosine")
    with pytest.raises(ValueError, match="one per channel"):
        build_wrn(10, 3, 10, 1, "linear", [0.5], [0.5])
    with pytest.raises(ValueError, match="std"):
        build_wrn(10, 1, 10, 1, "linear", [0.5], [0.0])


def test_builds_on_the_meta_device():
    # the workflow's config check builds the model on "meta" to validate depth and head
    with torch.device("meta"):
        model = build_wrn(10, 3, 16, 4, "orthogonal", [0.0] * 3, [1.0] * 3)
    assert isinstance(model, WideResNet) and model.head.weight.is_meta
