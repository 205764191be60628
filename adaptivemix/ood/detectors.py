"""OOD detectors: a registry of scoring rules applied to a trained classifier.

A detector may first ``fit`` on the in-distribution training split (Mahalanobis needs
class means and a covariance, the subspace detector one direction per class), then
``score`` images: higher means more in-distribution. Metrics take OOD as the positive
class and so rank by ``-score`` (see :mod:`adaptivemix.ood.metrics`). Inputs are pixels in
[0, 1]; options come from ``ood.detector_options.<name>``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from adaptivemix.options import Configurable
from adaptivemix.registry import Registry

#: name -> Detector subclass
DETECTORS: Registry = Registry("OOD detector")
OPTIONS_SECTION = "ood.detector_options"


class Detector(Configurable):
    def fit(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> None:
        """Learn what the score needs from the ID training split (default: nothing)."""

    def score(self, model: nn.Module, x: torch.Tensor, batch_size: int) -> np.ndarray:
        """(N,) float64 scores, higher = more in-distribution."""
        raise NotImplementedError


def build_detector(name: str, options: dict | None = None) -> Detector:
    return DETECTORS.get(name, "ood.detectors").from_config(name, options, OPTIONS_SECTION)


# ---------------------------------------------------------------------------------------------
# helpers


def _check_batch_size(batch_size: int) -> None:
    if (
        isinstance(batch_size, bool)
        or not isinstance(batch_size, int | np.integer)
        or batch_size < 1
    ):
        raise ValueError(f"batch_size: expected an int >= 1, got {batch_size!r}")


def _chunks(x: torch.Tensor, batch_size: int):
    _check_batch_size(batch_size)
    for start in range(0, len(x), batch_size):
        yield x[start : start + batch_size]


def _per_batch(model: nn.Module, x: torch.Tensor, batch_size: int, score_batch) -> np.ndarray:
    """Put ``model`` in eval mode and concatenate ``score_batch(batch)`` -> (N,) float64."""
    model.eval()
    parts = [score_batch(batch).detach().double().cpu() for batch in _chunks(x, batch_size)]
    if not parts:
        return np.zeros(0, dtype=np.float64)
    return torch.cat(parts).numpy().astype(np.float64, copy=False)


def _features(model: nn.Module, x: torch.Tensor, batch_size: int) -> torch.Tensor:
    """(N, D) float64 ``model.pooled_features`` of ``x`` on the CPU, without gradients.

    The feature detectors read the pooled trunk output before the orthogonal head's L2
    normalisation (``out_feat`` of Zaeemzadeh et al.'s ``extract_features.py``); with a
    linear head it is the head's input.
    """
    model.eval()
    with torch.no_grad():
        parts = [model.pooled_features(b).double().cpu() for b in _chunks(x, batch_size)]
    if not parts:
        raise ValueError("fit: the training split is empty")
    return torch.cat(parts)


def _perturb(x: torch.Tensor, gradient: torch.Tensor, step: float) -> torch.Tensor:
    """``clamp(x + step * sign(gradient), 0, 1)``: one signed step, kept in pixel range."""
    return (x + step * torch.sign(gradient)).clamp(0.0, 1.0).detach()


def _input_gradient(x: torch.Tensor, objective) -> torch.Tensor:
    """d sum(objective(x)) / dx, for the input only (parameters accumulate no ``.grad``)."""
    with torch.enable_grad():
        x = x.detach().requires_grad_(True)
        (gradient,) = torch.autograd.grad(objective(x).sum(), x)
    return gradient


def _finite_positive(value: float) -> bool:
    return math.isfinite(value) and value > 0


def _finite_nonnegative(value: float) -> bool:
    return math.isfinite(value) and value >= 0


def _require_fit(detector: Detector, attribute: str) -> None:
    if getattr(detector, attribute, None) is None:
        name = type(detector).__name__
        raise RuntimeError(f"{name}: call fit(model, x_train, y_train, batch_size) first")


# ---------------------------------------------------------------------------------------------
# scores from the logits


@DETECTORS.register("msp")
class MaxSoftmax(Detector):
    """Maximum softmax probability, ``score = max_k softmax(f(x))_k``.

    Hendrycks & Gimpel, "A Baseline for Detecting Misclassified and Out-of-Distribution
    Examples in Neural Networks", ICLR 2017, arXiv 1610.02136. Confirmed from the paper: the
    score is the largest softmax probability of the classifier. Our choice: the softmax is
    taken in float64 from the model's logits. No options.
    """

    def score(self, model: nn.Module, x: torch.Tensor, batch_size: int) -> np.ndarray:
        def batch_score(b: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return torch.softmax(model(b).double(), dim=1).amax(dim=1)

        return _per_batch(model, x, batch_size, batch_score)


@dataclass(frozen=True)
class OdinOptions:
    temperature: float = 1000.0
    epsilon: float = 0.0014

    def __post_init__(self):
        if not _finite_positive(self.temperature):
            raise ValueError("temperature: a finite number > 0")
        if not _finite_nonnegative(self.epsilon):
            raise ValueError("epsilon: a finite number >= 0")


@DETECTORS.register("odin")
class Odin(Detector):
    """ODIN: temperature scaling plus a small input perturbation, then the maximum softmax.

    Liang, Li & Srikant, "Enhancing The Reliability of Out-of-distribution Image Detection in
    Neural Networks", ICLR 2018, arXiv 1706.02690. With ``T`` = ``temperature``,
    ``ε`` = ``epsilon`` and ``ŷ = argmax f(x)``::

        x̃ = clamp(x - ε · sign(-∇ₓ log softmax(f(x) / T)_ŷ), 0, 1)
        score = max_k softmax(f(x̃) / T)_k

    Confirmed from the paper: the score is the temperature-scaled maximum softmax of the
    perturbed input, and the perturbation is a signed gradient step that raises the
    temperature-scaled log-probability of the predicted class; T = 1000 is the paper's choice.
    ε = 0.0014 is, as we read it, the default magnitude of the authors' released code (the
    paper tunes ε per setting on held-out data; we do not tune).

    Our choices: ε is applied in our [0, 1] pixel space, whereas upstream applies it to the
    normalised input (there a step of ε per channel corresponds to ε·std in pixels); the
    perturbed image is clamped to [0, 1] (upstream does not clamp); ``sign`` is
    ``torch.sign`` (a zero gradient component gives no step; upstream maps it to +1). The
    gradient is taken per sample with the model in eval mode and reaches only the input.
    ``epsilon = 0`` skips the gradient and gives temperature-scaled MSP.
    """

    Options = OdinOptions

    def score(self, model: nn.Module, x: torch.Tensor, batch_size: int) -> np.ndarray:
        t, eps = float(self.options.temperature), float(self.options.epsilon)

        def log_p_predicted(b: torch.Tensor) -> torch.Tensor:
            log_p = torch.log_softmax(model(b).double() / t, dim=1)
            return log_p.gather(1, log_p.argmax(dim=1, keepdim=True)).squeeze(1)

        def batch_score(b: torch.Tensor) -> torch.Tensor:
            if eps > 0:
                # x - ε·sign(-g) == x + ε·sign(g): climb the predicted class's log-probability
                b = _perturb(b, _input_gradient(b, log_p_predicted), eps)
            with torch.no_grad():
                return torch.softmax(model(b).double() / t, dim=1).amax(dim=1)

        return _per_batch(model, x, batch_size, batch_score)


@dataclass(frozen=True)
class EnergyOptions:
    temperature: float = 1.0

    def __post_init__(self):
        if not _finite_positive(self.temperature):
            raise ValueError("temperature: a finite number > 0")


@DETECTORS.register("energy")
class Energy(Detector):
    """Negative free energy of the logits, ``score = T · logsumexp(f(x) / T)``.

    Liu, Wang, Owens & Li, "Energy-based Out-of-distribution Detection", NeurIPS 2020,
    arXiv 2010.03759. Confirmed from the paper: the free energy is
    ``E(x) = -T · log Σ_k exp(f_k(x) / T)``, lower for ID data, and the detector thresholds
    ``-E(x)``; T = 1 is the paper's setting for the score of a pretrained classifier. Our
    choices: computed in float64 from the logits; the energy-bounded fine-tuning of the same
    paper is not part of this detector.
    """

    Options = EnergyOptions

    def score(self, model: nn.Module, x: torch.Tensor, batch_size: int) -> np.ndarray:
        t = float(self.options.temperature)

        def batch_score(b: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                return t * torch.logsumexp(model(b).double() / t, dim=1)

        return _per_batch(model, x, batch_size, batch_score)


# ---------------------------------------------------------------------------------------------
# scores from the penultimate features


@dataclass(frozen=True)
class MahalanobisOptions:
    epsilon: float = 0.0

    def __post_init__(self):
        if not _finite_nonnegative(self.epsilon):
            raise ValueError("epsilon: a finite number >= 0")


@DETECTORS.register("mahalanobis")
class Mahalanobis(Detector):
    """Class-conditional Gaussians with a tied covariance on the penultimate features.

    Lee, Lee, Lee & Shin, "A Simple Unified Framework for Detecting Out-of-Distribution
    Samples and Adversarial Attacks", NeurIPS 2018, arXiv 1807.03888. ``fit`` estimates the
    class means ``μ_c`` of ``f = model.pooled_features(x)`` (the pooled penultimate features,
    before any normalisation of the orthogonal head) on the training split and one shared
    covariance ``Σ = (1/N) Σ_i (f_i - μ_{y_i})(f_i - μ_{y_i})ᵀ`` (maximum likelihood, pooled
    over classes); then::

        d(x) = min_c (f(x) - μ_c)ᵀ Σ⁺ (f(x) - μ_c)
        x̃ = clamp(x - ε · sign(∇ₓ d(x)), 0, 1)         (skipped when ε = 0)
        score = -d(x̃)

    Confirmed from the paper: the empirical class means and tied covariance, the confidence
    score as the (negative) Mahalanobis distance to the closest class, and the input
    pre-processing that steps against the gradient of that distance.

    Interpreted or omitted: only the penultimate features are used; the paper's feature
    ensemble over several layers and the logistic-regression weighting of the layer scores
    (fitted on validation OOD or adversarial data) are omitted. Our choices: Σ⁺ is the
    Moore-Penrose pseudo-inverse (features may span less than their dimension, e.g. with
    fewer training images than feature dimensions); statistics are float64; ε is in [0, 1] pixel
    units (upstream: normalised inputs, without clamping); ``sign`` is ``torch.sign``. Only
    the classes present in the training labels get a mean.
    """

    Options = MahalanobisOptions

    def __init__(self, options=None):
        super().__init__(options)
        self.means: torch.Tensor | None = None  # (C, D) float64
        self.precision: torch.Tensor | None = None  # (D, D) float64, Σ⁺
        self.classes: torch.Tensor | None = None  # (C,) the labels of the rows of ``means``

    def fit(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> None:
        feats = _features(model, x, batch_size)
        labels = torch.as_tensor(y).reshape(-1).cpu().long()
        if len(labels) != len(feats):
            raise ValueError(f"fit: {len(feats)} images but {len(labels)} labels")
        classes, index = torch.unique(labels, return_inverse=True)
        counts = torch.bincount(index, minlength=len(classes)).double()
        sums = torch.zeros(len(classes), feats.shape[1], dtype=torch.float64)
        means = sums.index_add_(0, index, feats) / counts[:, None]
        centred = feats - means[index]
        covariance = centred.T @ centred / len(feats)
        self.classes, self.means = classes, means
        self.precision = torch.linalg.pinv(covariance, hermitian=True)

    def _distance(self, f: torch.Tensor) -> torch.Tensor:
        """(N,) squared Mahalanobis distance of features ``f`` to the closest class mean."""
        means = self.means.to(f.device)
        diff = f.double()[:, None, :] - means[None, :, :]  # (N, C, D)
        d = torch.einsum("ncd,de,nce->nc", diff, self.precision.to(f.device), diff)
        return d.amin(dim=1)

    def score(self, model: nn.Module, x: torch.Tensor, batch_size: int) -> np.ndarray:
        _require_fit(self, "precision")
        eps = float(self.options.epsilon)

        def batch_score(b: torch.Tensor) -> torch.Tensor:
            if eps > 0:
                gradient = _input_gradient(b, lambda v: self._distance(model.pooled_features(v)))
                b = _perturb(b, -gradient, eps)
            with torch.no_grad():
                return -self._distance(model.pooled_features(b))

        return _per_batch(model, x, batch_size, batch_score)


@DETECTORS.register("subspaces")
class Subspaces(Detector):
    """Union of 1-dimensional subspaces: the best |cosine| to one direction per class.

    Zaeemzadeh, Bisagno, Sambugaro, Conci, Rahnavard & Shah, "Out-of-Distribution Detection
    Using Union of 1-Dimensional Subspaces", CVPR 2021; code github.com/zaeemzadeh/OOD.
    With ``f = model.pooled_features(x)`` (before the orthogonal head's normalisation),
    ``fit``: for each class c, ``u_c`` is the first right singular vector of the matrix whose
    rows are that class's training features ``f_i``; then::

        score = max_c |cos(f(x), u_c)| = max_c |f(x) · u_c| / ‖f(x)‖

    Followed from ``evaluate.py`` and ``extract_features.py`` of that code: the pooled,
    un-normalised features (``out_feat``), the first singular vector of each class's raw
    feature matrix, and |cos| to the closest direction (upstream thresholds the arccos of
    it, a decreasing map, so rankings agree). Our choices: float64 statistics; a zero
    feature vector scores 0 (its norm is clamped at 1e-12; upstream adds 1e-4 to it); a
    single deterministic pass per image (upstream keeps the best of 50 Monte-Carlo dropout
    passes, all equal with the dropout 0 of the AdaptiveMix network). The orthogonal
    classifier and training loss of that paper are the classifier's business
    (``head="orthogonal"`` of the WRNs), not the detector's.
    """

    def __init__(self, options=None):
        super().__init__(options)
        self.directions: torch.Tensor | None = None  # (C, D) float64, unit rows u_c
        self.classes: torch.Tensor | None = None  # (C,)

    def fit(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> None:
        feats = _features(model, x, batch_size)
        labels = torch.as_tensor(y).reshape(-1).cpu().long()
        if len(labels) != len(feats):
            raise ValueError(f"fit: {len(feats)} images but {len(labels)} labels")
        classes = torch.unique(labels)
        rows = []
        for c in classes:
            _, _, vh = torch.linalg.svd(feats[labels == c], full_matrices=False)
            rows.append(vh[0])
        self.classes, self.directions = classes, torch.stack(rows)

    def score(self, model: nn.Module, x: torch.Tensor, batch_size: int) -> np.ndarray:
        _require_fit(self, "directions")

        def batch_score(b: torch.Tensor) -> torch.Tensor:
            with torch.no_grad():
                f = _unit(model.pooled_features(b).double())
                return (f @ self.directions.to(f.device).T).abs().amax(dim=1)

        return _per_batch(model, x, batch_size, batch_score)


def _unit(f: torch.Tensor) -> torch.Tensor:
    return f / f.norm(dim=1, keepdim=True).clamp_min(1e-12)
