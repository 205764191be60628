"""Feature-space shrinkage of the discriminator: the paper's central claim, measured.

AdaptiveMix argues that training D on mixed samples shrinks the regions its features of
one class (real training images) occupy. Two scale-free numbers measure it; both divide the
spread of D's features of a fixed set of real training images around their centroid by a
distance in the same feature space:

    spread_vs_noise = mean_i ||f(x_i) - c_real|| / ||c_real - c_noise||
    feature_spread  = mean_i ||f(x_i) - c_real|| / ||c_real - c_fake||

``spread_vs_noise`` (:func:`spread_vs_reference`) is the headline one: ``c_noise`` is the
centroid of D's features of a fixed set of uniform-noise images, the same for every method,
seed and step, so the number does not involve G: how tight D keeps the training data
relative to how far it puts images that are plainly not data. ``feature_spread`` divides by
the distance to G's samples instead; as G improves its samples approach the reals, that
distance shrinks and the ratio grows, so it measures G's quality as much as D's feature
space (kept under its own name, with its caveat below).

Why a ratio: every D has its own feature space, whose overall scale drifts during training
and differs between methods (a mixing loss may simply shrink all activations). Dividing
by a separation in the same space removes any global scale, and centring removes any
offset, so both numbers are invariant to scaling and translating the feature space and can
be compared across methods, seeds and steps. Smaller: reals are tighter relative to how far
D keeps noise (or fakes) from them.

Caveat of ``feature_spread``: when G matches the data the two centroids meet, ``separation``
tends to 0 and the ratio grows without bound (``inf`` at exactly 0). The components
``spread_real``, ``spread_fake`` and ``separation`` are therefore reported too.

:class:`FeatureProbe` fixes the images measured (the same real subset and noise images for
every method and seed, fixed latents for the fakes) so values are comparable across runs and
steps.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from adaptivemix.data.base import as_float_images

__all__ = [
    "DEFAULT_PROBE_SIZE", "PROBE_NOISE_SEED", "PROBE_SUBSET_SEED", "FeatureProbe",
    "feature_spread", "spread_vs_reference",
]  # fmt: skip

#: Seed of the real subset: a constant, so every method and seed measures the same images.
PROBE_SUBSET_SEED = 20_230_618
#: Seed of the noise images ``spread_vs_noise`` is measured against: a constant likewise.
PROBE_NOISE_SEED = 20_230_619
DEFAULT_PROBE_SIZE = 512
DEFAULT_BATCH = 256


def _flat64(x: torch.Tensor | np.ndarray, name: str) -> np.ndarray:
    array = np.asarray(x.detach().cpu() if isinstance(x, torch.Tensor) else x, np.float64)
    if array.ndim < 1 or array.shape[0] < 1:
        raise ValueError(f"{name}: need at least one sample, got shape {array.shape}")
    return array.reshape(array.shape[0], -1)


def spread_vs_reference(
    real: torch.Tensor | np.ndarray, reference: torch.Tensor | np.ndarray
) -> dict[str, float]:
    """``spread_vs_noise`` and ``noise_separation`` of real features against the features
    of a fixed reference set (:func:`feature_spread`'s ratio with the reference in place of
    the fakes; the same edge cases)."""
    values = feature_spread(real, reference)
    return {"spread_vs_noise": values["feature_spread"], "noise_separation": values["separation"]}


def feature_spread(
    real: torch.Tensor | np.ndarray, fake: torch.Tensor | np.ndarray
) -> dict[str, float]:
    """Spread of real features relative to the real-to-fake centroid distance.

    ``real`` (N, ...) and ``fake`` (M, ...) are per-sample features, flattened per sample
    and computed in float64. Returns ``spread_real`` (mean distance of a real feature to
    the real centroid), ``spread_fake`` (likewise for fakes), ``separation`` (distance
    between the centroids) and ``feature_spread`` = spread_real / separation: ``inf``
    when the centroids coincide (G matches the data, see the module caveat), NaN when the
    features are not finite or both numbers are 0.
    """
    r, f = _flat64(real, "real"), _flat64(fake, "fake")
    if r.shape[1] != f.shape[1]:
        raise ValueError(f"real and fake features differ in size: {r.shape[1]} vs {f.shape[1]}")
    c_r, c_f = r.mean(axis=0), f.mean(axis=0)
    spread_real = float(np.linalg.norm(r - c_r, axis=1).mean())
    spread_fake = float(np.linalg.norm(f - c_f, axis=1).mean())
    separation = float(np.linalg.norm(c_r - c_f))
    if separation > 0 or not math.isfinite(separation):
        ratio = spread_real / separation
    else:
        ratio = math.inf if spread_real > 0 else math.nan
    return {
        "feature_spread": ratio,
        "spread_real": spread_real,
        "spread_fake": spread_fake,
        "separation": separation,
    }


class FeatureProbe:
    """A fixed set of reals and fake noise on which D's features are measured.

    ``images`` is the train split as stored (uint8 or float; converted per chunk by
    :func:`as_float_images`, so the subset stays as small as stored). ``n_real`` images
    (all if fewer) are picked by a generator seeded with :data:`PROBE_SUBSET_SEED`, and
    ``n_fake`` noise vectors are drawn from ``seed`` (the run's evaluation seed), and
    ``n_real`` uniform-noise images in [-1, 1] of the reals' shape from
    :data:`PROBE_NOISE_SEED` (the same for every run): the probe never touches the global
    RNG and gives the same inputs every time.
    """

    def __init__(
        self,
        images: torch.Tensor,
        z_dim: int,
        seed: int,
        n_real: int = DEFAULT_PROBE_SIZE,
        n_fake: int = DEFAULT_PROBE_SIZE,
        batch_size: int = DEFAULT_BATCH,
        device: str = "cpu",
    ) -> None:
        for key, value in (("n_real", n_real), ("n_fake", n_fake), ("batch_size", batch_size)):
            if value < 1:
                raise ValueError(f"FeatureProbe {key}: {value}; must be a positive integer")
        if images.shape[0] < 1:
            raise ValueError("FeatureProbe images: the train split is empty")
        subset = torch.Generator().manual_seed(PROBE_SUBSET_SEED)
        order = torch.randperm(images.shape[0], generator=subset)[:n_real]
        self.indices = order.sort().values
        self.reals = images[self.indices.to(images.device)].cpu()
        self.z = torch.randn(n_fake, z_dim, generator=torch.Generator().manual_seed(seed))
        noise = torch.Generator().manual_seed(PROBE_NOISE_SEED)
        shape = (self.reals.shape[0], *self.reals.shape[1:])
        self.noise = torch.rand(shape, generator=noise) * 2 - 1
        self.batch_size, self.device = batch_size, device

    def describe(self) -> dict[str, int]:
        """What was measured (saved beside the features)."""
        return {
            "n_real": int(self.reals.shape[0]),
            "n_fake": int(self.z.shape[0]),
            "subset_seed": PROBE_SUBSET_SEED,
            "noise_seed": PROBE_NOISE_SEED,
        }

    def _chunks(self, x: torch.Tensor):
        for i in range(0, x.shape[0], self.batch_size):
            yield x[i : i + self.batch_size].to(self.device)

    def _features(self, D: nn.Module, G: nn.Module) -> tuple[torch.Tensor, ...]:
        """D's features of the reals, of G's samples (G's raw output, as D sees it) and of
        the noise images."""

        def flat(f: torch.Tensor) -> torch.Tensor:
            return f.flatten(1).to("cpu", torch.float32)

        real = [flat(D.features(as_float_images(x))) for x in self._chunks(self.reals)]
        fake = [flat(D.features(G(z))) for z in self._chunks(self.z)]
        noise = [flat(D.features(x)) for x in self._chunks(self.noise)]
        return torch.cat(real), torch.cat(fake), torch.cat(noise)

    def measure(self, D: nn.Module, G: nn.Module) -> tuple[dict[str, float], dict[str, np.ndarray]]:
        """(scalars, features) of D on the probe; both networks in eval mode, no gradients.

        Scalars: ``spread_vs_noise``, ``noise_separation``, ``feature_spread``,
        ``spread_real``, ``spread_fake``, ``feature_separation``. Features: ``real``
        (n_real, F) and ``fake`` (n_fake, F), float32. D's and G's train/eval modes are
        restored afterwards.
        """
        modes = (D.training, G.training)
        D.eval()
        G.eval()
        try:
            with torch.no_grad():
                real, fake, noise = self._features(D, G)
        finally:
            D.train(modes[0])
            G.train(modes[1])
        values = feature_spread(real, fake)
        scalars = spread_vs_reference(real, noise) | {
            "feature_spread": values["feature_spread"],
            "spread_real": values["spread_real"],
            "spread_fake": values["spread_fake"],
            "feature_separation": values["separation"],
        }
        return scalars, {"real": real.numpy(), "fake": fake.numpy()}
