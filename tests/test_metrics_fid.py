"""FID/KID wrappers against closed forms and a hand-written MMD², plus their determinism.

Every expected value here is computed independently of clean-fid and of the code under test.
"""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np
import pytest
import torch
from torch import nn

from adaptivemix.data.base import ImageDataset
from adaptivemix.metrics import fid as fid_module
from adaptivemix.metrics.backbones import ModuleBackbone
from adaptivemix.metrics.fid import (
    ReferenceStats,
    compute_reference_stats,
    evaluate_generator,
    feature_statistics,
    fid_from_features,
    generate_images,
    kid_from_features,
    protocol,
    protocol_fingerprint,
)


def samples_with_moments(mean: np.ndarray, cov: np.ndarray, n: int, seed: int) -> np.ndarray:
    """n samples whose *sample* mean and covariance are exactly ``mean`` and ``cov``."""
    x = np.random.default_rng(seed).normal(size=(n, mean.shape[0]))
    x -= x.mean(axis=0)
    whiten = np.linalg.inv(np.linalg.cholesky(np.cov(x, rowvar=False)))
    return x @ whiten.T @ np.linalg.cholesky(cov).T + mean


def test_fid_matches_closed_form_for_diagonal_gaussians():
    mu1, mu2 = np.array([0.0, 1.0, -2.0]), np.array([1.0, 1.0, 0.5])
    var1, var2 = np.array([1.0, 4.0, 0.25]), np.array([9.0, 1.0, 0.25])
    expected = np.sum((mu1 - mu2) ** 2) + np.sum(var1 + var2 - 2 * np.sqrt(var1 * var2))
    feats = samples_with_moments(mu1, np.diag(var1), n=200, seed=0)
    got = fid_from_features(feats, mu2, np.diag(var2))
    assert got == pytest.approx(expected, rel=1e-6)
    assert expected == pytest.approx((1 + 0 + 6.25) + (4 + 1 + 0))  # by hand: 12.25


def test_fid_matches_eigendecomposition_formula_for_full_covariances():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    s1, s2 = a @ a.T + 0.1 * np.eye(4), b @ b.T + 0.1 * np.eye(4)
    mu1, mu2 = rng.normal(size=4), rng.normal(size=4)
    # Tr sqrt(S1 S2) = Tr sqrt(S1^½ S2 S1^½), a symmetric PSD matrix: use eigh, not sqrtm
    w, v = np.linalg.eigh(s1)
    root1 = v @ np.diag(np.sqrt(w)) @ v.T
    inner = np.linalg.eigvalsh(root1 @ s2 @ root1)
    expected = np.sum((mu1 - mu2) ** 2) + np.trace(s1) + np.trace(s2) - 2 * np.sqrt(inner).sum()
    feats = samples_with_moments(mu1, s1, n=100, seed=2)
    assert fid_from_features(feats, mu2, s2) == pytest.approx(expected, rel=1e-6)


def test_fid_of_identical_features_is_zero():
    feats = np.random.default_rng(3).normal(size=(300, 8))
    mu, sigma = feature_statistics(feats)
    assert abs(fid_from_features(feats, mu, sigma)) < 1e-6


def test_feature_statistics_match_numpy():
    feats = np.random.default_rng(4).normal(size=(50, 6)).astype(np.float32)
    mu, sigma = feature_statistics(feats)
    assert mu.dtype == np.float64 and sigma.dtype == np.float64
    assert sigma.shape == (6, 6)
    np.testing.assert_allclose(mu, feats.astype(np.float64).mean(axis=0))
    np.testing.assert_allclose(sigma, np.cov(feats.astype(np.float64).T))


def reference_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD² with k(a, b) = (a·b/d + 1)³, by explicit loops over all pairs."""
    d = x.shape[1]

    def k(a, b):
        return (float(np.dot(a, b)) / d + 1.0) ** 3

    m, n = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    kxy = sum(k(x[i], y[j]) for i in range(m) for j in range(n)) / (m * n)
    return kxx + kyy - 2.0 * kxy


def test_kid_equals_exact_unbiased_mmd2_over_all_samples():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(30, 5))
    y = rng.normal(loc=0.3, size=(30, 5))
    got = kid_from_features(x, y, seed=0, num_subsets=1, max_subset_size=1000)
    assert got == pytest.approx(reference_mmd2(x, y), rel=1e-9)
    assert kid_from_features(x, x, num_subsets=1) == pytest.approx(reference_mmd2(x, x))


def _same_state(a: tuple, b: tuple) -> bool:
    return a[0] == b[0] and np.array_equal(a[1], b[1]) and tuple(a[2:]) == tuple(b[2:])


def test_kid_is_deterministic_and_leaves_global_numpy_rng_alone():
    rng = np.random.default_rng(6)
    x, y = rng.normal(size=(80, 4)), rng.normal(size=(90, 4))
    np.random.seed(12345)
    before = np.random.get_state()
    first = kid_from_features(x, y, seed=7, num_subsets=5, max_subset_size=20)
    assert _same_state(before, np.random.get_state())
    assert kid_from_features(x, y, seed=7, num_subsets=5, max_subset_size=20) == first
    assert kid_from_features(x, y, seed=8, num_subsets=5, max_subset_size=20) != first


def test_kid_restores_global_numpy_rng_on_error():
    np.random.seed(99)
    before = np.random.get_state()
    with pytest.raises(ValueError):  # mismatched feature dimensions fail inside clean-fid
        kid_from_features(np.ones((10, 3)), np.ones((10, 4)), num_subsets=1)
    assert _same_state(before, np.random.get_state())


def test_reference_stats_round_trip(tmp_path):
    rng = np.random.default_rng(8)
    feats = rng.normal(size=(20, 3))
    meta = {"dataset": "digits", "split": "test", "n_real": 20, "nested": {"a": [1, 2]}}
    ref = ReferenceStats(mu=feats.mean(0), sigma=np.cov(feats.T), features=feats, meta=meta)
    path = ref.save(tmp_path / "ref.npz")
    loaded = ReferenceStats.load(path)
    for name in ("mu", "sigma", "features"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(ref, name))
        assert getattr(loaded, name).dtype == np.float64
    assert loaded.meta == meta
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ref.npz"]  # no temp files left


class TinyGenerator(nn.Module):
    """z -> 1×4×4 image; the dropout makes a forgotten ``eval()`` visible."""

    def __init__(self, z_dim: int = 3):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(z_dim, 16), nn.Dropout(0.5), nn.Tanh())

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z).view(-1, 1, 4, 4)


def make_tiny_generator() -> TinyGenerator:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return TinyGenerator()


@pytest.mark.parametrize("training", [True, False])
def test_generate_images_deterministic_and_global_rng_untouched(training):
    G = make_tiny_generator().train(training)
    torch.manual_seed(2024)
    before = torch.get_rng_state()
    a = generate_images(G, n=7, z_dim=3, seed=11, batch_size=3)
    assert torch.equal(before, torch.get_rng_state())
    assert G.training is training
    b = generate_images(G, n=7, z_dim=3, seed=11, batch_size=500)
    c = generate_images(G, n=7, z_dim=3, seed=12)
    assert a.shape == (7, 1, 4, 4) and a.device.type == "cpu"
    assert a.min() >= -1 and a.max() <= 1
    torch.testing.assert_close(a, b)  # independent of the batch size
    assert not torch.allclose(a, c)


class FlattenEmbed(nn.Module):
    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)


def tiny_backbone(sha: str = "abc") -> ModuleBackbone:
    return ModuleBackbone(FlattenEmbed(), "flat", "native", sha, feature_dim=16, device="cpu")


def tiny_reference(backbone: ModuleBackbone, n: int = 64) -> ReferenceStats:
    feats = np.random.default_rng(9).uniform(-1, 1, size=(n, 16))
    meta = {"split": "test", "n_real": n, "dataset_sha256": "d" * 64}
    meta |= {"backbone_sha256": backbone.weights_sha256}
    return ReferenceStats(feats.mean(0), np.cov(feats.T), feats, meta)


def test_evaluate_generator_returns_finite_floats_and_checks_backbone():
    backbone = tiny_backbone()
    reference = tiny_reference(backbone)
    G = make_tiny_generator()
    result = evaluate_generator(G, 3, backbone, reference, n_gen=50, seed=0)
    assert set(result) == {"fid", "kid"}
    assert all(isinstance(v, float) and np.isfinite(v) for v in result.values())
    assert result == evaluate_generator(G, 3, backbone, reference, n_gen=50, seed=0)
    with pytest.raises(ValueError, match="backbone"):
        evaluate_generator(G, 3, tiny_backbone("other"), reference, n_gen=50, seed=0)


def test_protocol_and_fingerprint():
    backbone = tiny_backbone()
    proto = protocol(backbone, tiny_reference(backbone), n_gen=100)
    assert {k: v for k, v in proto.items() if k != "libraries"} == {
        "backbone": "flat",
        "backbone_sha256": "abc",
        "resize": "native",
        "n_gen": 100,
        "n_real": 64,
        "reference_split": "test",
        "dataset_sha256": "d" * 64,
    }
    fingerprint = protocol_fingerprint(proto)
    expected = hashlib.sha256(json.dumps(proto, sort_keys=True).encode()).hexdigest()[:16]
    assert fingerprint == expected
    assert protocol_fingerprint(dict(reversed(list(proto.items())))) == fingerprint
    assert protocol_fingerprint({**proto, "n_gen": 101}) != fingerprint


# --- mode metrics from the same generated images -----------------------------------------


class BrightnessNet(nn.Module):
    """Features: the flattened pixels; classes: the nearest of 0..9 to 4.5·(mean + 1)."""

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return x.flatten(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        target = 4.5 * (x.mean((1, 2, 3)) + 1.0)
        return -(target[:, None] - torch.arange(10.0)).abs()


class CountingGenerator(nn.Module):
    """Wraps a generator and counts its forward calls."""

    def __init__(self, G: nn.Module):
        super().__init__()
        self.G, self.calls = G, 0

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        return self.G(z)


def classifier_backbone(sha: str = "abc") -> ModuleBackbone:
    return ModuleBackbone(BrightnessNet(), "bright", "native", sha, 16, "cpu", num_classes=10)


def test_evaluate_generator_mode_metrics_from_the_same_images():
    backbone = classifier_backbone()
    reference = tiny_reference(backbone)
    G = CountingGenerator(make_tiny_generator())
    result = evaluate_generator(G, 3, backbone, reference, n_gen=60, seed=4, with_modes=True)
    assert G.calls == 1  # one batch of 60 generated once, for FID, KID and modes alike
    assert set(result) == {"fid", "kid", "modes", "kl_modes"}
    # recount by hand: the same noise, then each image's nearest class of 4.5·(mean + 1)
    z = torch.randn(60, 3, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        means = make_tiny_generator().eval()(z).clamp(-1, 1).mean((1, 2, 3)).double().numpy()
    classes = [int(np.argmin(np.abs(4.5 * (m + 1.0) - np.arange(10)))) for m in means]
    counts = np.bincount(classes, minlength=10)
    hit = counts[counts > 0] / 60.0
    assert result["modes"] == len(hit)
    assert result["kl_modes"] == pytest.approx(float(np.sum(hit * np.log(hit * 10))), rel=1e-9)
    plain = evaluate_generator(G, 3, backbone, reference, n_gen=60, seed=4)
    assert plain == {k: result[k] for k in ("fid", "kid")}  # modes change nothing else


def test_evaluate_generator_flags():
    backbone = tiny_backbone()
    reference = tiny_reference(backbone)
    G = make_tiny_generator()
    assert set(evaluate_generator(G, 3, backbone, reference, 50, 0, with_kid=False)) == {"fid"}
    with pytest.raises(ValueError, match="no classifier"):
        evaluate_generator(G, 3, backbone, reference, 50, 0, with_modes=True)


def test_protocol_of_a_classifier_backbone_names_its_modes():
    backbone = classifier_backbone()
    reference = tiny_reference(backbone)  # 16-d features = one group of the 16-d backbone
    proto = protocol(backbone, reference, n_gen=100)
    assert proto["n_modes"] == 10
    assert {k: v for k, v in proto.items() if k != "libraries"} == {
        "backbone": "bright",
        "backbone_sha256": "abc",
        "resize": "native",
        "n_gen": 100,
        "n_real": 64,
        "reference_split": "test",
        "dataset_sha256": "d" * 64,
        "n_modes": 10,
    }
    assert protocol_fingerprint(protocol(backbone, reference, 100)) == protocol_fingerprint(proto)
    wide = ReferenceStats(reference.mu, reference.sigma, np.zeros((4, 48)), reference.meta)
    assert protocol(backbone, wide, n_gen=100)["n_modes"] == 1000  # three 16-d groups
    odd = ReferenceStats(reference.mu, reference.sigma, np.zeros((4, 20)), reference.meta)
    with pytest.raises(ValueError, match="20-d"):
        protocol(backbone, odd, n_gen=100)


def test_reference_stats_keep_real_mode_metrics_of_the_first_images(monkeypatch):
    # classes by hand: each 1×4×4 image is filled with 2d/9 − 1, classified as digit d
    digits = torch.tensor([3, 3, 3, 7, 1, 1, 9, 9])
    images = (digits.float() * 2 / 9 - 1)[:, None, None, None].expand(-1, 1, 4, 4).contiguous()
    labels = {"train": digits, "val": digits[:2], "test": digits[:2]}
    split_images = {"train": images, "val": images[:2], "test": images[:2]}
    dataset = ImageDataset("toy", split_images, labels, num_classes=10)
    monkeypatch.setattr(fid_module, "REAL_MODE_SAMPLES", 6)  # counts the first 6 only
    meta = compute_reference_stats(dataset, "train", classifier_backbone()).meta
    # first 6: classes 3, 3, 3, 7, 1, 1 -> p = (1/2, 1/6, 1/3) over 10 modes
    kl = 0.5 * math.log(5) + (1 / 6) * math.log(10 / 6) + (1 / 3) * math.log(10 / 3)
    assert (meta["n_modes"], meta["real_mode_samples"], meta["real_modes"]) == (10, 6, 3)
    assert meta["real_kl_modes"] == pytest.approx(kl, rel=1e-12)
    assert meta["n_real"] == 8
    no_classifier = compute_reference_stats(dataset, "train", tiny_backbone()).meta
    assert not {"n_modes", "real_modes", "real_kl_modes"} & set(no_classifier)


# --- precision/recall beside FID/KID, uint8 input, protocol labels -----------------------


def test_precision_recall_flag_adds_only_precision_and_recall():
    backbone = tiny_backbone()
    reference = tiny_reference(backbone)
    # images whose flattened pixels are exactly the reference features: every generated
    # sample sits on a real one (and vice versa), so precision = recall = 1 and FID = 0
    images = torch.from_numpy(reference.features).float().view(-1, 1, 4, 4)
    plain = fid_module.evaluate_images(images, backbone, reference, seed=0)
    with_pr = fid_module.evaluate_images(images, backbone, reference, seed=0, with_pr=True)
    assert set(plain) == {"fid", "kid"}
    assert with_pr == {**plain, "precision": 1.0, "recall": 1.0}
    assert abs(plain["fid"]) < 1e-4  # float32 images of float64 features
    # a generator far outside the reference cube [-1, 1]^16 (pixels shifted by 10)
    far = fid_module.evaluate_images(images + 10, backbone, reference, seed=0, with_pr=True)
    assert (far["precision"], far["recall"]) == (0.0, 0.0)


def test_protocol_records_pr_k_only_when_given_and_labels_fid50k_full():
    backbone = tiny_backbone()
    reference = tiny_reference(backbone)
    base = protocol(backbone, reference, n_gen=100)
    assert "pr_k" not in base
    assert protocol(backbone, reference, n_gen=100, pr_k=3) == {**base, "pr_k": 3}
    full = {"n_gen": 50_000, "n_real": 70_000, "reference_split": "train", "resize": "clean"}
    assert fid_module.metric_label(full) == "fid50k_full[clean]"
    legacy = {**full, "resize": "legacy_tensorflow"}
    assert fid_module.metric_label(legacy) == "fid50k_full[legacy_tensorflow]"
    assert fid_module.metric_label(base) == "fid100_test"
    assert fid_module.metric_label({**base, "n_gen": 5000}, "kid") == "kid5k_test"


def test_uint8_datasets_are_measured_as_their_float_images():
    gen = torch.Generator().manual_seed(0)  # more images than feature dimensions (16)
    pixels = torch.randint(0, 256, (40, 1, 4, 4), generator=gen, dtype=torch.uint8)
    splits = {"train": pixels, "val": pixels[:2], "test": pixels[:2]}
    labels = {s: torch.zeros(len(x), dtype=torch.int64) for s, x in splits.items()}
    ref = compute_reference_stats(ImageDataset("u8", splits, labels, 1), "train", tiny_backbone())
    expected = pixels.double().flatten(1).numpy() / 127.5 - 1.0  # x / 127.5 − 1, by hand
    np.testing.assert_allclose(ref.features, expected, atol=1e-6)
    values = fid_module.evaluate_images(pixels, tiny_backbone(), ref, seed=0, with_kid=False)
    assert abs(values["fid"]) < 1e-6
