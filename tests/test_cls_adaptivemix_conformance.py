"""AdaptiveMix's classification step against the official code's semantics, in train mode.

The reference replays ``classification/models.py`` (``adaptive_mix``, ``_embedding``) and
``train.py`` (``train_clean``) with plain functional ops on a copy of the model: three
forward passes in upstream's order (x_mix, x, x[perm]), each with its own BatchNorm batch
statistics and running-statistics update, then upstream's loss arithmetic. Draws: the
permutation, λ and the noise from a generator of the same seed (our documented order).
Then: the consistency term is invariant to rescaled features with the orthogonal head
(paper profile) and is not with a linear head.
"""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from test_cls_methods import reference_beta
from test_wrn_official import bn, official_blocks

from adaptivemix.classify.methods import ClsBatch, build_cls_method
from adaptivemix.classify.wrn import build_wrn
from adaptivemix.classify.wrn_official import build_wrn_official

CLASSES = 5


def official_embedding(net, x):
    """``OverfittingNet.embedding`` in train mode: the pooled trunk, L2-normalised."""
    h = F.conv2d((x - net.mean) / net.std, net.stem.weight, net.stem.bias, padding=1)
    blocks = [b for group in net.groups for b in group]
    for blk, (_, _, stride, shortcut) in zip(blocks, official_blocks(10, 2), strict=True):
        out = F.conv2d(F.relu(bn(h, blk.bn1, True)), blk.conv1.weight, blk.conv1.bias, 1, 1)
        out = F.relu(bn(out, blk.bn2, True))
        out = F.conv2d(out, blk.conv2.weight, blk.conv2.bias, stride, 1)
        h = out + (F.conv2d(h, blk.shortcut.weight, blk.shortcut.bias, stride) if shortcut else h)
    return F.normalize(F.avg_pool2d(h, 8).flatten(1), dim=1, p=2)


def official_step(net, x, y, seed, alpha, noise_std):
    """``adaptive_mix`` + ``train_clean``'s loss; returns (total, ce, consistency)."""
    gen = torch.Generator().manual_seed(seed)
    index = torch.randperm(len(x), generator=gen)
    lam = reference_beta(gen, alpha)
    x_a, x_b, y_a, y_b = x, x[index], y, y[index]
    x_mixed = x_a * lam + x_b * (1 - lam)
    out_mixed = official_embedding(net, x_mixed)  # upstream's order of passes
    out_a = official_embedding(net, x_a)
    out_b = official_embedding(net, x_b)
    mix_z = out_a * lam + out_b * (1 - lam)
    mix_z_ = mix_z + torch.randn(mix_z.shape, generator=gen) * noise_std
    loss_mix = F.mse_loss(out_mixed, mix_z_.detach())
    w = net.head.weight
    mix_result = (mix_z @ w.T).abs() + (out_mixed @ w.T).abs()
    ce = lam * F.cross_entropy(mix_result, y_a) + (1 - lam) * F.cross_entropy(mix_result, y_b)
    return ce + loss_mix, ce, loss_mix


def data(seed=0, n=8):
    gen = torch.Generator().manual_seed(100 + seed)
    return torch.rand(n, 3, 32, 32, generator=gen), torch.randint(CLASSES, (n,), generator=gen)


def model(arch="wrn-official", head="orthogonal"):
    torch.manual_seed(0)
    build = build_wrn_official if arch == "wrn-official" else build_wrn
    return build(CLASSES, 3, 10, 2, head, [0.49, 0.48, 0.45], [0.25, 0.24, 0.26]).train()


@pytest.mark.parametrize(("seed", "alpha"), [(0, 1.0), (1, 0.3)])
def test_step_matches_the_official_code(seed, alpha):
    ours, x, y = model(), *data(seed)
    ref = copy.deepcopy(ours)
    method = build_cls_method("adaptivemix", {"alpha": alpha})
    loss, logs = method.loss(ours, ClsBatch(x, y, CLASSES, torch.Generator().manual_seed(seed)))
    loss.backward()
    total, ce, consistency = official_step(ref, x, y, seed, alpha, 0.05)
    total.backward()
    torch.testing.assert_close(loss, total, rtol=1e-5, atol=1e-6)
    assert logs["loss_ce"] == pytest.approx(ce.item(), rel=1e-5)
    assert logs["loss_consistency"] == pytest.approx(consistency.item(), rel=1e-5, abs=1e-8)
    for (name, p), q in zip(ours.named_parameters(), ref.parameters(), strict=True):
        if p.requires_grad:
            torch.testing.assert_close(p.grad, q.grad, rtol=1e-5, atol=1e-6, msg=name)
        else:
            assert p.grad is None and q.grad is None, name
    for (name, b), c in zip(ours.named_buffers(), ref.buffers(), strict=True):
        if "running" in name:  # three momentum-0.1 updates each (mix, a, b)
            torch.testing.assert_close(b, c, rtol=1e-5, atol=1e-6, msg=name)
    assert ours.groups[0][0].bn1.num_batches_tracked.item() == 3


def test_batched_pass_is_a_different_labelled_option():
    ours, x, y = model(), *data(2)
    ref = copy.deepcopy(ours)
    method = build_cls_method("adaptivemix", {"batched_pass": True})
    assert method.describe()["batched_pass"] is True
    loss, _ = method.loss(ours, ClsBatch(x, y, CLASSES, torch.Generator().manual_seed(2)))
    total, _, _ = official_step(ref, x, y, 2, 1.0, 0.05)
    assert ours.groups[0][0].bn1.num_batches_tracked.item() == 1  # one update per step
    running = ours.groups[0][0].bn1.running_mean
    assert not torch.allclose(running, ref.groups[0][0].bn1.running_mean, rtol=1e-4)
    assert abs(loss.item() - total.item()) > 1e-6  # batch statistics span [x, x_mix]


# ---------------------------------------------------------------- invariance to feature scale


def step_with_scaled_features(net, scale, layer, seed=4):
    """Train-mode logits and AdaptiveMix's consistency term when the output of ``net``'s
    module ``layer`` is multiplied by ``scale`` (on a copy: the running statistics stay)."""
    net = copy.deepcopy(net).train()
    net.get_submodule(layer).register_forward_hook(lambda _m, _i, out: out * scale)
    x, y = data(seed)
    batch = ClsBatch(x, y, CLASSES, torch.Generator().manual_seed(seed))
    _, logs = build_cls_method("adaptivemix").loss(net, batch)
    with torch.no_grad():
        logits = net(x)
    return logits, logs["loss_consistency"]


def test_paper_profile_consistency_is_invariant_to_the_feature_scale():
    net = model("wrn-official", "orthogonal")  # the paper profile's classifier
    logits, term = step_with_scaled_features(net, 1.0, "groups.2")
    logits_s, term_s = step_with_scaled_features(net, 0.1, "groups.2")
    torch.testing.assert_close(logits_s, logits, rtol=1e-5, atol=1e-6)
    assert term_s == pytest.approx(term, rel=1e-5)


def test_linear_head_consistency_shrinks_with_the_features():
    net = model("wrn-official", "linear")
    logits, term = step_with_scaled_features(net, 1.0, "groups.2")
    logits_s, term_s = step_with_scaled_features(net, 0.1, "groups.2")
    assert not torch.allclose(logits_s, logits, rtol=1e-2)
    # the feature part of the MSE falls ~100×; what stays is the noise's σ² = 0.0025
    assert term_s < 0.2 * term and term_s == pytest.approx(0.0025, rel=0.5)


@pytest.mark.parametrize("head", ["orthogonal", "linear"])
def test_scaling_the_final_batchnorm_of_our_wrn(head):
    net = model("wrn", head)
    before = step_with_scaled_features(net, 1.0, "groups.2")
    with torch.no_grad():  # relu(0.1·BN(h)) = 0.1·relu(BN(h)): pooled features × 0.1
        net.bn.weight.mul_(0.1)
        net.bn.bias.mul_(0.1)
    after = step_with_scaled_features(net, 1.0, "groups.2")
    same = torch.allclose(after[0], before[0], rtol=1e-5, atol=1e-6)
    assert same == (head == "orthogonal")
    assert (after[1] == pytest.approx(before[1], rel=1e-5)) == (head == "orthogonal")
