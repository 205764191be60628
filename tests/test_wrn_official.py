"""The official WRN of the AdaptiveMix classification code (``wrn-official``) against its
definition in ``classification/models.py``, written out here independently: the parameter
list and count, the convolutions' shapes, strides and biases, and a functional forward; and
the OOD detectors reading its pooled (pre-normalisation) features."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from adaptivemix.classify.wrn import CLS_ARCHS
from adaptivemix.classify.wrn_official import OfficialWideResNet, build_wrn_official
from adaptivemix.ood.detectors import build_detector

STRIDES = (1, 2, 2)  # of the three groups, on the first block's second conv and shortcut


def official_blocks(depth: int, widen: int):
    """(in, out, stride, has_shortcut) per block, as ``Wide_ResNet_orthognal._wide_layer``."""
    n = (depth - 4) // 6
    widths = [16, 16 * widen, 32 * widen, 64 * widen]
    c_in, blocks = widths[0], []
    for g, stride in enumerate(STRIDES):
        for b in range(n):
            s = stride if b == 0 else 1
            blocks.append((c_in, widths[g + 1], s, s != 1 or c_in != widths[g + 1]))
            c_in = widths[g + 1]
    return blocks


def official_parameter_shapes(depth, widen, num_classes, in_channels=3, with_bn1=False):
    """Parameter shapes in the module order of ``Wide_ResNet_orthognal`` (conv biases!)."""
    shapes = [(16, in_channels, 3, 3), (16,)]  # conv1 = conv3x3(3, 16), bias=True
    for c_in, c_out, _, shortcut in official_blocks(depth, widen):
        shapes += [(c_in,), (c_in,)]  # bn1
        shapes += [(c_out, c_in, 3, 3), (c_out,)]  # conv1 (bias=True)
        shapes += [(c_out,), (c_out,)]  # bn2
        shapes += [(c_out, c_out, 3, 3), (c_out,)]  # conv2 (bias=True, stride)
        if shortcut:
            shapes += [(c_out, c_in, 1, 1), (c_out,)]  # shortcut conv 1×1 (bias=True)
    if with_bn1:
        shapes += [(64 * widen,), (64 * widen,)]  # bn1: defined, never called by forward
    return [*shapes, (num_classes, 64 * widen)]  # linear, bias=False


def test_registered_with_the_orthogonal_head_by_default():
    assert CLS_ARCHS.get("wrn-official") is build_wrn_official
    model = build_wrn_official(10, 3, 10, 1)
    assert model.head_kind == "orthogonal" and isinstance(model, OfficialWideResNet)


def test_wrn_28_10_parameters_follow_the_official_definition():
    with torch.device("meta"):
        model = build_wrn_official(10, 3, 28, 10, "orthogonal", [0.5] * 3, [0.25] * 3)
    got = [tuple(p.shape) for p in model.parameters()]
    assert got == official_parameter_shapes(28, 10, 10)

    # by hand: stem 3·16·9 + 16; a block (i -> o) 2i + 9io + o + 2o + 9o² + o (+ io + o);
    # group 1: 16 -> 160 then 3 × 160 -> 160; group 2: 160 -> 320, 3 × 320; group 3 likewise
    def block(i, o, shortcut):
        return 2 * i + 9 * i * o + o + 2 * o + 9 * o * o + o + (i * o + o if shortcut else 0)

    hand = 3 * 16 * 9 + 16
    for i, o in ((16, 160), (160, 320), (320, 640)):
        hand += block(i, o, True) + 3 * block(o, o, False)
    hand += 640 * 10  # frozen head
    count = sum(p.numel() for p in model.parameters())
    assert count == hand == 36_488_000
    # upstream's module also counts its unused bn1 (2 × 640): 36,489,280
    assert sum(map(np.prod, official_parameter_shapes(28, 10, 10, with_bn1=True))) == (count + 1280)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert trainable == count - 6400


@pytest.mark.parametrize(("depth", "widen", "classes"), [(28, 10, 100), (10, 2, 7), (16, 1, 10)])
def test_convolutions_biases_and_strides(depth, widen, classes):
    with torch.device("meta"):
        model = build_wrn_official(classes, 3, depth, widen)
    assert [tuple(p.shape) for p in model.parameters()] == official_parameter_shapes(
        depth, widen, classes
    )
    blocks = [b for group in model.groups for b in group]
    assert len(blocks) == len(official_blocks(depth, widen))
    for blk, (_, _, stride, shortcut) in zip(blocks, official_blocks(depth, widen), strict=True):
        assert blk.conv1.stride == (1, 1) and blk.conv2.stride == (stride, stride)
        assert blk.conv1.bias is not None and blk.conv2.bias is not None
        assert (blk.shortcut is not None) == shortcut
        if shortcut:
            assert blk.shortcut.stride == (stride, stride) and blk.shortcut.bias is not None
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(bns) == 2 * len(blocks)  # none after the last group
    assert all(m.momentum == 0.1 for m in bns)


def bn(h, m, training):
    return F.batch_norm(h, m.running_mean, m.running_var, m.weight, m.bias, training, 0.1, 1e-5)


def reference_pooled(model, x, training):
    """``models.py`` forward of 32×32 pixels in [0, 1], from the model's tensors only."""
    h = (x - model.mean) / model.std  # OverfittingNet
    h = F.conv2d(h, model.stem.weight, model.stem.bias, padding=1)
    blocks = [b for group in model.groups for b in group]
    for blk, (_, _, stride, shortcut) in zip(blocks, official_blocks(10, 2), strict=True):
        out = F.conv2d(F.relu(bn(h, blk.bn1, training)), blk.conv1.weight, blk.conv1.bias, 1, 1)
        out = F.relu(bn(out, blk.bn2, training))
        out = F.conv2d(out, blk.conv2.weight, blk.conv2.bias, stride, 1)
        if shortcut:
            h = F.conv2d(h, blk.shortcut.weight, blk.shortcut.bias, stride)
        h = out + h  # the shortcut of the block's raw input
    return F.avg_pool2d(h, 8).flatten(1)  # no BN-ReLU before pooling


def tiny(head="orthogonal", seed=0):
    torch.manual_seed(seed)
    return build_wrn_official(6, 3, 10, 2, head, [0.49, 0.48, 0.45], [0.2, 0.2, 0.2])


@pytest.mark.parametrize("training", [True, False])
def test_forward_matches_the_official_definition(training):
    model = tiny().train(training)
    if not training:  # non-trivial running statistics
        with torch.no_grad():
            model.train()(torch.rand(8, 3, 32, 32, generator=torch.Generator().manual_seed(1)))
        model.eval()
    x = torch.rand(5, 3, 32, 32, generator=torch.Generator().manual_seed(2))
    pooled = reference_pooled(model, x, False) if not training else None
    with torch.no_grad():
        if training:
            pooled = reference_pooled(model, x, True)
        torch.testing.assert_close(model.pooled_features(x), pooled, rtol=1e-5, atol=1e-6)
        f = F.normalize(pooled, dim=1, p=2)
        torch.testing.assert_close(model.features(x), f, rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(model(x), (f @ model.head.weight.T).abs(), rtol=1e-5, atol=1e-6)
    assert (pooled < 0).any() and (model.features(x) < 0).any()  # features keep their sign


def test_orthogonal_head_is_frozen_and_orthonormal():
    model = tiny()
    w = model.head.weight
    assert not w.requires_grad and [n for n, _ in model.head.named_parameters()] == ["weight"]
    torch.testing.assert_close(w @ w.T, torch.eye(6), atol=1e-5, rtol=0)  # gain 1
    x = torch.rand(4, 3, 32, 32)
    torch.testing.assert_close(model.features(x).norm(dim=1), torch.ones(4))
    logits = model(x)
    assert (logits >= 0).all() and (logits <= 1 + 1e-6).all()  # |W·f|, f unit: no scaling


@pytest.mark.parametrize("head", ["linear", "orthogonal"])
def test_mixing_points_split_the_trunk(head):
    model = tiny(head).eval()
    x = torch.rand(3, 3, 16, 16)  # any resolution: global pooling
    f = model.features(x)
    for k in range(model.n_mix_points):
        torch.testing.assert_close(model.from_point(model.to_point(x, k), k), f)
    if head == "linear":
        torch.testing.assert_close(f, model.pooled_features(x))


# ---------------------------------------------------------------- the OOD detectors


def test_feature_detectors_read_the_pooled_features():
    model = tiny().eval()
    gen = torch.Generator().manual_seed(3)
    x, y = torch.rand(18, 3, 32, 32, generator=gen), torch.arange(18) % 3
    x_test = torch.rand(4, 3, 32, 32, generator=gen)
    with torch.no_grad():
        raw = model.pooled_features(x).double().numpy()
        raw_test = model.pooled_features(x_test).double().numpy()
    assert not np.allclose(np.linalg.norm(raw, axis=1), 1.0)  # not the normalised embedding
    maha = build_detector("mahalanobis")
    maha.fit(model, x, y, batch_size=7)
    means = np.stack([raw[y.numpy() == c].mean(0) for c in range(3)])
    np.testing.assert_allclose(maha.means.numpy(), means, rtol=1e-5, atol=1e-6)
    sub = build_detector("subspaces")
    sub.fit(model, x, y, batch_size=7)
    u = np.stack([np.linalg.svd(raw[y.numpy() == c].T)[0][:, 0] for c in range(3)])
    cos = np.abs((raw_test / np.linalg.norm(raw_test, axis=1, keepdims=True)) @ u.T).max(1)
    np.testing.assert_allclose(sub.score(model, x_test, 2), cos, rtol=1e-5)
    with torch.no_grad():
        logits = model(x_test).double()
    energy = build_detector("energy").score(model, x_test, 3)
    np.testing.assert_allclose(energy, torch.logsumexp(logits, 1).numpy(), rtol=1e-6)
