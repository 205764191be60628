"""OOD detectors on a tiny hand-set linear classifier, against numpy formulas written here.

The model maps 2×2 one-channel images to 3 features (``A·x + a``) and 3 logits
(``H·f + h``), in float64 so the comparisons can be tight. Its feature map has a dropout
layer: scores only match the formulas when the detector puts the model in eval mode.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from adaptivemix.errors import ConfigError
from adaptivemix.ood.detectors import DETECTORS, OPTIONS_SECTION, Detector, build_detector

A = np.array([[1.0, -2.0, 0.5, 1.5], [-1.0, 0.5, 2.0, -0.5], [0.3, 1.0, -1.5, 2.0]])
a = np.array([0.1, -0.2, 0.3])
H = np.array([[2.0, -1.0, 0.5], [-0.5, 1.5, 1.0], [1.0, 0.5, -2.0]])
h = np.array([0.2, 0.0, -0.1])


class TinyLinear(nn.Module):
    def __init__(self, A: np.ndarray, a: np.ndarray, H: np.ndarray, h: np.ndarray):
        super().__init__()
        self.drop = nn.Dropout(0.5)  # identity in eval mode only
        self.feat = nn.Linear(A.shape[1], A.shape[0]).double()
        self.cls = nn.Linear(H.shape[1], H.shape[0]).double()
        with torch.no_grad():
            self.feat.weight.copy_(torch.from_numpy(A))
            self.feat.bias.copy_(torch.from_numpy(a))
            self.cls.weight.copy_(torch.from_numpy(H))
            self.cls.bias.copy_(torch.from_numpy(h))

    def pooled_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.feat(self.drop(x.flatten(1)))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pooled_features(x)  # a linear head reads the features as they are

    def head(self, f: torch.Tensor) -> torch.Tensor:
        return self.cls(f)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def tiny_model(A_=A, a_=a, H_=H, h_=h) -> TinyLinear:
    model = TinyLinear(A_, a_, H_, h_)
    model.train()  # the detector must switch to eval itself
    return model


def images(n: int, seed: int) -> np.ndarray:
    """(n, 4) pixels in [0, 1], a few on or near the border so that clamping matters."""
    x = np.random.default_rng(seed).uniform(0.0, 1.0, size=(n, 4))
    x[0] = [0.0, 1.0, 0.02, 0.99]
    x[1] = [1.0, 0.0, 0.97, 0.01]
    return x


def as_tensor(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(x.copy()).reshape(-1, 1, 2, 2)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def logits_np(x: np.ndarray) -> np.ndarray:
    W, b = H @ A, H @ a + h  # the composite linear map pixels -> logits
    return x @ W.T + b


def pooled_precision(F: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Class means and pinv of the ML tied covariance: Σ_c n_c · cov_c(bias) / N."""
    classes = np.unique(y)
    means = np.stack([F[y == c].mean(axis=0) for c in classes])
    cov = sum((y == c).sum() * np.cov(F[y == c].T, bias=True) for c in classes) / len(F)
    return means, np.linalg.pinv(cov)


def maha_min(F: np.ndarray, means: np.ndarray, P: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    d = np.array([[(f - m) @ P @ (f - m) for m in means] for f in F])
    return d.min(axis=1), d.argmin(axis=1)


X_TEST = images(9, seed=1)
X_TRAIN = np.random.default_rng(2).uniform(0.0, 1.0, size=(30, 4))
Y_TRAIN = np.repeat([0, 1, 2], 10)


# ---------------------------------------------------------------------------------------------
# logit-based detectors


def test_msp_matches_numpy():
    expected = softmax(logits_np(X_TEST)).max(axis=1)
    got = build_detector("msp").score(tiny_model(), as_tensor(X_TEST), batch_size=4)
    assert got.dtype == np.float64 and got.shape == (len(X_TEST),)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("temperature", [1.0, 2.0])
def test_energy_matches_numpy(temperature):
    z = logits_np(X_TEST) / temperature
    expected = temperature * np.log(np.exp(z).sum(axis=1))
    detector = build_detector("energy", {"temperature": temperature})
    got = detector.score(tiny_model(), as_tensor(X_TEST), batch_size=4)
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def odin_numpy(x: np.ndarray, temperature: float, epsilon: float) -> tuple[np.ndarray, bool]:
    """ODIN by the closed form of a linear model; also whether the clamp changed anything."""
    W, b = H @ A, H @ a + h
    z = x @ W.T + b
    p = softmax(z / temperature)
    pred = z.argmax(axis=1)
    # ∇ₓ log softmax(z / T)_ŷ = (W_ŷ − Σ_k p_k W_k) / T
    grad = (W[pred] - p @ W) / temperature
    assert np.abs(grad).min() > 1e-9  # every sign is well defined
    stepped = x - epsilon * np.sign(-grad)
    x_tilde = np.clip(stepped, 0.0, 1.0)
    clamped = bool(np.any(stepped != x_tilde))
    return softmax((x_tilde @ W.T + b) / temperature).max(axis=1), clamped


@pytest.mark.parametrize(("temperature", "epsilon"), [(1000.0, 0.0014), (2.0, 0.05)])
def test_odin_matches_closed_form(temperature, epsilon):
    expected, clamped = odin_numpy(X_TEST, temperature, epsilon)
    assert clamped  # the border pixels of images() are pushed outside [0, 1]
    model = tiny_model()
    detector = build_detector("odin", {"temperature": temperature, "epsilon": epsilon})
    got = detector.score(model, as_tensor(X_TEST), batch_size=4)
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    unperturbed = softmax(logits_np(X_TEST) / temperature).max(axis=1)
    assert np.all(got > unperturbed)  # the step raises the predicted class's probability
    assert not model.training
    assert all(p.grad is None for p in model.parameters())


def test_odin_defaults_and_zero_epsilon():
    assert build_detector("odin").describe() == {"temperature": 1000.0, "epsilon": 0.0014}
    got = build_detector("odin", {"temperature": 3, "epsilon": 0}).score(
        tiny_model(), as_tensor(X_TEST), batch_size=5
    )
    np.testing.assert_allclose(got, softmax(logits_np(X_TEST) / 3.0).max(axis=1), rtol=1e-12)


# ---------------------------------------------------------------------------------------------
# feature-based detectors


def fitted(name: str, model: nn.Module, options: dict | None = None, x=X_TRAIN, y=Y_TRAIN):
    detector = build_detector(name, options)
    detector.fit(model, as_tensor(x), torch.from_numpy(y), batch_size=7)
    return detector


def test_mahalanobis_matches_numpy():
    F_train = X_TRAIN @ A.T + a
    means, P = pooled_precision(F_train, Y_TRAIN)
    expected, _ = maha_min(X_TEST @ A.T + a, means, P)
    got = fitted("mahalanobis", tiny_model()).score(tiny_model(), as_tensor(X_TEST), 4)
    np.testing.assert_allclose(got, -expected, rtol=1e-10)


def test_mahalanobis_labels_need_not_be_contiguous():
    y = np.repeat([3, 7, 9], 10)
    F_train = X_TRAIN @ A.T + a
    means, P = pooled_precision(F_train, y)
    expected, _ = maha_min(X_TEST @ A.T + a, means, P)
    got = fitted("mahalanobis", tiny_model(), y=y).score(tiny_model(), as_tensor(X_TEST), 4)
    np.testing.assert_allclose(got, -expected, rtol=1e-10)


def test_mahalanobis_singular_covariance_uses_pseudo_inverse():
    A_flat = A.copy()
    A_flat[2] = 0.0  # the third feature is the constant a[2]: Σ has a zero row and column
    model = tiny_model(A_=A_flat)
    F_train = X_TRAIN @ A_flat.T + a
    means, P = pooled_precision(F_train, Y_TRAIN)
    assert np.linalg.matrix_rank(np.linalg.pinv(P)) == 2
    expected, _ = maha_min(X_TEST @ A_flat.T + a, means, P)
    got = fitted("mahalanobis", model).score(model, as_tensor(X_TEST), 4)
    assert np.all(np.isfinite(got))
    np.testing.assert_allclose(got, -expected, rtol=1e-8)


def test_mahalanobis_input_preprocessing():
    epsilon = 0.05
    F_train = X_TRAIN @ A.T + a
    means, P = pooled_precision(F_train, Y_TRAIN)
    F = X_TEST @ A.T + a
    _, closest = maha_min(F, means, P)
    # ∇ₓ (f − μ)ᵀ P (f − μ) with f = A x + a is 2 Aᵀ P (f − μ)
    grad = 2.0 * (F - means[closest]) @ P @ A  # P symmetric
    assert np.abs(grad).min() > 1e-9
    stepped = X_TEST - epsilon * np.sign(grad)
    x_tilde = np.clip(stepped, 0.0, 1.0)
    assert np.any(stepped != x_tilde)
    expected, _ = maha_min(x_tilde @ A.T + a, means, P)
    model = tiny_model()
    detector = fitted("mahalanobis", model, {"epsilon": epsilon})
    got = detector.score(model, as_tensor(X_TEST), batch_size=4)
    np.testing.assert_allclose(got, -expected, rtol=1e-10)
    plain = fitted("mahalanobis", model).score(model, as_tensor(X_TEST), 4)
    assert np.all(got > plain)  # the step moves every image towards its closest class
    assert all(p.grad is None for p in model.parameters())


def test_subspaces_on_class_axes():
    # features = the first three pixels; class c's training images lie on ±e_c
    A_axes = np.eye(3, 4)
    model = tiny_model(A_=A_axes, a_=np.zeros(3))
    x = np.zeros((9, 4))
    y = np.repeat([0, 1, 2], 3)
    for i, c in enumerate(y):
        x[i, c] = [0.2, -0.7, 0.9][i % 3]  # mixed signs: u_c is ±e_c all the same
    x[:, 3] = 0.5  # ignored by the features
    detector = fitted("subspaces", model, x=x, y=y)
    np.testing.assert_allclose(np.abs(detector.directions.numpy()), np.eye(3), atol=1e-12)
    test = np.array([[0.3, -0.4, 0.0, 0.1], [0.1, 0.1, 0.1, 0.9], [0.0, 0.0, 0.2, 0.0]])
    # max_c |f_c| / ‖f‖: (0.3, −0.4, 0) -> 0.4/0.5; (0.1, 0.1, 0.1) -> 1/√3; (0, 0, 0.2) -> 1
    got = detector.score(model, as_tensor(test), batch_size=2)
    np.testing.assert_allclose(got, [0.8, 1.0 / np.sqrt(3.0), 1.0], rtol=1e-12)


def test_subspaces_matches_svd():
    # zaeemzadeh/OOD evaluate.py: the first left singular vector of each class's raw
    # (D, n_c) feature matrix, i.e. the first right singular vector of its (n_c, D) rows
    F_train = X_TRAIN @ A.T + a
    y = Y_TRAIN
    U = np.stack([np.linalg.svd(F_train[y == c].T)[0][:, 0] for c in range(3)])
    F = X_TEST @ A.T + a
    expected = np.abs((F / np.linalg.norm(F, axis=1, keepdims=True)) @ U.T).max(axis=1)
    got = fitted("subspaces", tiny_model()).score(tiny_model(), as_tensor(X_TEST), 4)
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    assert np.all(got <= 1.0 + 1e-12) and np.all(got > 0.0)


@pytest.mark.parametrize("name", ["mahalanobis", "subspaces"])
def test_score_before_fit_raises(name):
    with pytest.raises(RuntimeError, match="fit"):
        build_detector(name).score(tiny_model(), as_tensor(X_TEST), 4)


# ---------------------------------------------------------------------------------------------
# every detector


DETECTOR_CASES = [
    ("msp", {}),
    ("odin", {"temperature": 10.0, "epsilon": 0.05}),
    ("energy", {"temperature": 2.0}),
    ("mahalanobis", {"epsilon": 0.01}),
    ("subspaces", {}),
]


def test_the_five_detectors_are_registered():
    assert {name for name, _ in DETECTOR_CASES} <= set(DETECTORS.names())


@pytest.mark.parametrize(("name", "options"), DETECTOR_CASES)
def test_batch_size_invariance(name, options):
    model = tiny_model()
    detector = fitted(name, model, options)
    assert isinstance(detector, Detector)
    small = detector.score(model, as_tensor(X_TEST), batch_size=2)
    large = detector.score(model, as_tensor(X_TEST), batch_size=100)
    assert small.dtype == np.float64 and small.shape == (len(X_TEST),)
    np.testing.assert_allclose(small, large, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(
    ("name", "options", "key"),
    [
        ("odin", {"temperature": 0}, "odin.temperature"),
        ("odin", {"temperature": -2.0}, "odin.temperature"),
        ("odin", {"epsilon": -1}, "odin.epsilon"),
        ("energy", {"temperature": 0.0}, "energy.temperature"),
        ("mahalanobis", {"epsilon": -1}, "mahalanobis.epsilon"),
        ("odin", {"temperature": "hot"}, "odin.temperature"),
        ("odin", {"temp": 5.0}, "odin.temp"),
    ],
)
def test_bad_options_raise_config_error(name, options, key):
    with pytest.raises(ConfigError) as err:
        build_detector(name, options)
    assert err.value.key == f"{OPTIONS_SECTION}.{key}"
    assert err.value.key.startswith("ood.detector_options.")


def test_unknown_detector_lists_choices():
    with pytest.raises(ConfigError) as err:
        build_detector("nope")
    assert err.value.key == "ood.detectors"
    for name in ("msp", "odin", "energy", "mahalanobis", "subspaces"):
        assert name in str(err.value)
