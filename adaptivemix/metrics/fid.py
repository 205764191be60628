"""FID and KID, computed by clean-fid's own formulas on features from a :class:`FeatureBackbone`.

The distances themselves are clean-fid's (``frechet_distance`` and ``kernel_distance``, in
:mod:`adaptivemix.metrics.distances` with the same operations, checked bit-identical against
clean-fid's functions), so numbers match the reference implementation the paper family
reports; this module only
supplies features, reference statistics with their provenance, deterministic sampling of
the generator, and the protocol record that says which numbers may be compared. With a
classifier backbone the same generated images also give the mode-coverage metrics of
:mod:`adaptivemix.metrics.modes`; on request they also give improved precision and recall
(:mod:`adaptivemix.metrics.precision_recall`) in the same backbone's feature space.

Images may be float in [-1, 1] or uint8: uint8 batches are converted by
``adaptivemix.data.base.as_float_images`` inside the backbone, one batch at a time.

``fid50k_full`` (StyleGAN2-ADA's name) is this computation with ``n_gen`` = 50,000 against the
whole training split; :func:`protocol` records ``n_gen``, ``n_real``, the reference split and
the resize mode, and :func:`metric_label` names a record that way for tables.

Three points follow stylegan2-ada-pytorch's ``metrics/metric_utils.py`` and the ``--mirror``
and ``--metricdata`` options of its ``train.py`` / ``calc_metrics.py`` (``--metricdata``
as added by APA, EndlessSora/DeceiveD):

- Noise inputs: its metrics call G with the default ``noise_mode='random'``, fresh per-layer
  noise for every sample. :func:`generate_images` does the same for a G with noise inputs
  (StyleGAN2), from an explicit seeded generator (``noise_mode="random"``, the default;
  "const" keeps the fixed buffers its image grids use). Truncation is never applied (ψ = 1).
- X-flips: with ``--mirror=1`` its dataset is every image followed by its mirror image (2N
  items) and the real statistics iterate that dataset. ``compute_reference_stats(...,
  xflip=True)`` does the same: features of [reals; mirrored reals], ``n_real`` = 2N, also
  for KID and the precision/recall radii.
- Metric data: ``--metricdata`` measures a run on a limited subset against another (full)
  dataset. The workflow passes that dataset's reference; :func:`protocol` records its name
  as ``metric_data`` when it is not the run's own dataset.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from adaptivemix.data.base import ImageDataset
from adaptivemix.io import atomic_write
from adaptivemix.metrics.backbones import FeatureBackbone
from adaptivemix.metrics.distances import frechet_distance, kernel_distance
from adaptivemix.metrics.modes import labels_from_groups, mode_count, mode_labels, mode_metrics
from adaptivemix.metrics.precision_recall import DEFAULT_K, precision_recall, real_knn_radii
from adaptivemix.provenance import library_versions

#: Real images whose mode metrics are stored with the reference: the first
#: min(n_real, REAL_MODE_SAMPLES) of the split. Mode metrics depend on the sample count, and
#: 5,000 is the embedded profile's n_gen, so the real row matches the generated ones there.
REAL_MODE_SAMPLES = 5_000
#: Mirrored reals are measured this many images at a time (a multiple of the backbones'
#: batch of 500), so a split is never copied whole to mirror it.
MIRROR_CHUNK = 5_000
#: How metric samples get G's noise inputs: "random" (stylegan2-ada's metrics) or "const".
NOISE_MODES = ("random", "const")
#: The noise inputs of metric samples come from their own stream, never the latents' one.
NOISE_SEED_OFFSET = 5_000_011


def feature_statistics(feats: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and sample covariance (rows are samples) in float64, the inputs of FID."""
    feats = np.asarray(feats, dtype=np.float64)
    if feats.ndim != 2 or feats.shape[0] < 2:
        raise ValueError(f"need (N >= 2, D) features, got shape {feats.shape}")
    return feats.mean(axis=0), np.atleast_2d(np.cov(feats, rowvar=False))


def fid_from_features(feats_gen: np.ndarray, mu_ref: np.ndarray, sigma_ref: np.ndarray) -> float:
    """FID between generated features and reference statistics (clean-fid's formula).

    clean-fid 0.1.35 cannot take 1-d features (SciPy's ``sqrtm`` returns no error estimate
    for 1×1 input), so D >= 2 is required.
    """
    mu, sigma = feature_statistics(feats_gen)
    if mu.shape[0] < 2:
        raise ValueError("FID needs features of dimension >= 2")
    value = frechet_distance(mu, sigma, np.asarray(mu_ref), np.asarray(sigma_ref))
    return float(np.real(value))


def kid_from_features(
    feats_gen: np.ndarray,
    feats_ref: np.ndarray,
    seed: int = 0,
    num_subsets: int = 100,
    max_subset_size: int = 1000,
) -> float:
    """KID (unbiased MMD² with a cubic polynomial kernel, averaged over random subsets).

    clean-fid draws its subsets from NumPy's *global* RNG after ``np.random.seed``; here they
    come from ``np.random.RandomState(seed)``, the same stream, so KID is a function of its
    inputs and ``seed`` alone and every other user of the global RNG is left undisturbed.
    """
    feats_gen = np.asarray(feats_gen, dtype=np.float64)
    feats_ref = np.asarray(feats_ref, dtype=np.float64)
    if min(feats_gen.shape[0], feats_ref.shape[0], max_subset_size) < 2:
        raise ValueError("KID needs at least 2 samples per set")
    rng = np.random.RandomState(seed)
    return float(kernel_distance(feats_gen, feats_ref, rng, num_subsets, max_subset_size))


@dataclass(frozen=True, eq=False)  # eq=False: comparing arrays with == has no truth value
class ReferenceStats:
    """Real-data statistics for one (dataset, split, backbone), with the provenance in ``meta``.

    ``features`` are kept because KID needs the samples, not only the moments.
    ``real_radii``: each real sample's distance to its ``meta["pr_k"]``-th nearest real
    neighbour (precision's balls), computed once here instead of in every run's evaluation;
    None when no precision/recall was asked for.
    """

    mu: np.ndarray
    sigma: np.ndarray
    features: np.ndarray
    meta: dict
    real_radii: np.ndarray | None = None

    def save(self, path: str | Path) -> Path:
        """Write an .npz atomically; ``meta`` is stored as a JSON string, never pickled."""
        meta = np.array(json.dumps(self.meta, sort_keys=True))
        radii = {} if self.real_radii is None else {"real_radii": self.real_radii}

        def write(f: io.BufferedIOBase) -> None:
            np.savez(f, mu=self.mu, sigma=self.sigma, features=self.features, meta=meta, **radii)

        return atomic_write(path, write)

    @classmethod
    def load(cls, path: str | Path) -> ReferenceStats:
        with np.load(path, allow_pickle=False) as data:
            return cls(
                mu=data["mu"],
                sigma=data["sigma"],
                features=data["features"],
                meta=json.loads(str(data["meta"])),
                real_radii=data["real_radii"] if "real_radii" in data.files else None,
            )

    def radii_for(self, k: int) -> np.ndarray | None:
        """The stored real radii if they are the k-th neighbour's, else None."""
        return self.real_radii if self.meta.get("pr_k") == k else None


def compute_reference_stats(
    dataset: ImageDataset,
    split: str,
    backbone: FeatureBackbone,
    pr_k: int = 0,
    xflip: bool = False,
) -> ReferenceStats:
    """Features and moments of one real split (float or uint8 images), tagged with the
    dataset and backbone hashes.

    With a classifier backbone ``meta`` also holds the real images' own mode metrics
    (``real_modes``, ``real_kl_modes`` on ``real_mode_samples`` images, see
    :data:`REAL_MODE_SAMPLES`) and ``n_modes``: what a perfect generator would score.
    With ``pr_k`` > 0 it also holds the real k-NN radii of precision/recall (``meta["pr_k"]``).
    ``xflip`` (stylegan2-ada's ``--mirror=1``): the features are those of the N images followed
    by those of the N images flipped left-right, ``n_real`` = 2N and ``meta["xflip"]`` is
    True; moments, KID's samples and the radii use all 2N. The real mode metrics stay those of
    the unflipped images.
    """
    images = dataset.images[split]
    feats = backbone.features(images)
    if xflip:
        feats = np.concatenate([feats, _mirrored_features(backbone, images)])
    mu, sigma = feature_statistics(feats)
    meta = {
        "dataset": dataset.name,
        "split": split,
        "backbone": backbone.name,
        "backbone_sha256": backbone.weights_sha256,
        "protocol": backbone.protocol,
        "n_real": int(feats.shape[0]),
        "dataset_sha256": dataset.content_hash(),
    }
    if xflip:  # absent otherwise: references without x-flips keep their meta
        meta["xflip"] = True
    if backbone.num_classes is not None:
        meta.update(_real_mode_metrics(backbone, images))
    radii = None
    if pr_k > 0:
        meta["pr_k"] = int(pr_k)
        radii = real_knn_radii(feats, pr_k, backbone.device)
    return ReferenceStats(mu=mu, sigma=sigma, features=feats, meta=meta, real_radii=radii)


def _mirrored_features(backbone: FeatureBackbone, images: torch.Tensor) -> np.ndarray:
    """Features of every image flipped left-right, :data:`MIRROR_CHUNK` images at a time."""
    chunks = [
        backbone.features(images[i : i + MIRROR_CHUNK].flip(-1))
        for i in range(0, images.shape[0], MIRROR_CHUNK)
    ]
    return np.concatenate(chunks)


def _real_mode_metrics(backbone: FeatureBackbone, images: torch.Tensor) -> dict:
    """Mode metrics of the first min(N, REAL_MODE_SAMPLES) real images, with their count."""
    subset = images[:REAL_MODE_SAMPLES]
    n_modes = mode_count(backbone, images.shape[1])
    values = mode_metrics(mode_labels(backbone, subset), n_modes)
    return {
        "n_modes": n_modes,
        "real_modes": values["modes"],
        "real_kl_modes": values["kl_modes"],
        "real_mode_samples": int(subset.shape[0]),
    }


def has_noise_inputs(G: nn.Module) -> bool:
    """Whether G's images depend on noise inputs besides z (``G.noise_inputs``: StyleGAN2)."""
    return bool(getattr(G, "noise_inputs", False))


def generate_images(
    G: nn.Module,
    n: int,
    z_dim: int,
    seed: int,
    batch_size: int = 500,
    device: str = "cpu",
    noise_mode: str = "random",
) -> torch.Tensor:
    """``n`` samples of ``G`` in eval mode, as a (n, C, H, W) CPU tensor in [-1, 1].

    The latents are drawn at once on the CPU from a generator seeded with ``seed``, so they
    depend on the seed only (not on batch size or device); the global RNG is never touched.
    A G with noise inputs (:func:`has_noise_inputs`) draws, with ``noise_mode`` "random"
    (stylegan2-ada's metrics), fresh noise for every sample from one generator on ``device``
    seeded with ``seed + NOISE_SEED_OFFSET``, batch after batch: the images are reproducible
    for a seed, batch size and device type. "const" uses G's fixed noise buffers instead.
    G's train/eval mode is restored afterwards.
    """
    if n < 1:
        raise ValueError(f"n must be positive, got {n}")
    if noise_mode not in NOISE_MODES:
        raise ValueError(f"noise_mode must be one of {NOISE_MODES}, got {noise_mode!r}")
    z = torch.randn(n, z_dim, generator=torch.Generator().manual_seed(seed))
    noise = {}
    if noise_mode == "random" and has_noise_inputs(G):
        noise["generator"] = torch.Generator(device).manual_seed(seed + NOISE_SEED_OFFSET)
    was_training = G.training
    G.eval()
    try:
        with torch.no_grad():
            chunks = [
                G(z[i : i + batch_size].to(device), **noise).to("cpu", torch.float32)
                for i in range(0, n, batch_size)
            ]
    finally:
        G.train(was_training)
    return torch.cat(chunks).clamp_(-1.0, 1.0)


def evaluate_generator(
    G: nn.Module,
    z_dim: int,
    backbone: FeatureBackbone,
    reference: ReferenceStats,
    n_gen: int,
    seed: int,
    device: str = "cpu",
    with_kid: bool = True,
    with_modes: bool = False,
    with_pr: bool = False,
    pr_k: int = DEFAULT_K,
    noise_mode: str = "random",
) -> dict:
    """FID, KID, mode metrics (and precision/recall) of ``n_gen`` samples of G, by ``backbone``.

    The samples are generated once (``noise_mode``: see :func:`generate_images`); see
    :func:`evaluate_images` for what is measured. ``with_kid=False`` skips KID, whose subset
    sums dominate frequent in-training checks. Refuses a reference computed by another
    backbone (checked before generating).
    """
    check_reference(backbone, reference)
    images = generate_images(G, n_gen, z_dim, seed, device=device, noise_mode=noise_mode)
    return evaluate_images(images, backbone, reference, seed, with_kid, with_modes, with_pr, pr_k)


def evaluate_images(
    images: torch.Tensor,
    backbone: FeatureBackbone,
    reference: ReferenceStats,
    seed: int,
    with_kid: bool = True,
    with_modes: bool = False,
    with_pr: bool = False,
    pr_k: int = DEFAULT_K,
) -> dict:
    """``fid`` (+ ``kid``) of ``images`` against ``reference``, (+ ``modes``, ``kl_modes``),
    (+ ``precision``, ``recall``).

    ``images`` are float in [-1, 1] or uint8. ``seed`` draws KID's subsets. ``with_modes``
    needs a classifier backbone; the number of modes is ``num_classes`` to the power of the
    images' channel groups. ``with_pr`` adds improved precision/recall with ``pr_k`` nearest
    neighbours against all reference features (record ``pr_k`` via :func:`protocol`).
    """
    check_reference(backbone, reference)
    if with_modes:  # features and class predictions from one pass over the images
        feats, groups = backbone.features_and_groups(images)
    else:
        feats = backbone.features(images)
    values: dict = {"fid": fid_from_features(feats, reference.mu, reference.sigma)}
    if with_kid:
        values["kid"] = kid_from_features(feats, reference.features, seed=seed)
    if with_modes:
        n_modes = mode_count(backbone, images.shape[1])
        labels = labels_from_groups(groups, int(backbone.num_classes))
        values.update(mode_metrics(labels, n_modes))
    if with_pr:
        radii = reference.radii_for(pr_k)
        pr = precision_recall(
            reference.features, feats, k=pr_k, device=backbone.device, real_radii=radii
        )
        values.update(pr)
    return values


def check_reference(backbone: FeatureBackbone, reference: ReferenceStats) -> None:
    """Refuse a reference computed by another backbone: such a FID would be meaningless."""
    ref_sha = reference.meta.get("backbone_sha256")
    if ref_sha != backbone.weights_sha256:
        raise ValueError(
            f"reference stats were computed with backbone weights {ref_sha}, "
            f"not {backbone.weights_sha256}; recompute them"
        )


#: Libraries whose version can change a measured number (features, distances, training, OOD
#: scores): part of every task's protocol, so numbers from other versions are never pooled.
#: pandas and snakemake (also tracked in provenance) only move numbers around, so they are not.
MEASUREMENT_LIBRARIES = (
    "torch", "torchvision", "numpy", "scipy", "clean-fid", "scikit-learn", "timm",
)  # fmt: skip


def measurement_libraries() -> dict[str, str]:
    """Python's version and each of :data:`MEASUREMENT_LIBRARIES`' ("absent" if not installed).

    The ``libraries`` entry of every protocol. The code version is deliberately left out: it
    changes with every commit, and numbers must stay comparable across harmless commits.
    """
    versions = library_versions()
    return {name: versions[name] for name in ("python", *MEASUREMENT_LIBRARIES)}


def protocol(
    backbone: FeatureBackbone,
    reference: ReferenceStats,
    n_gen: int,
    pr_k: int | None = None,
    noise_mode: str | None = None,
    run_dataset: str | None = None,
) -> dict:
    """Everything that must match for two FID/KID (and mode, precision/recall) numbers to be
    comparable: backbone and weights hash, resize mode, ``n_gen``, ``n_real`` (the whole
    reference split), reference split, dataset hash and the versions of the libraries that
    compute them (:func:`measurement_libraries`).

    ``n_modes`` is present only for classifier backbones, ``pr_k`` only when precision/recall
    were measured (absent otherwise, so records and fingerprints of runs without them are what
    they always were). Precision/recall use all ``n_gen`` generated and ``n_real`` real samples.
    Likewise ``noise_mode`` is recorded when given (for a G with noise inputs, see
    :func:`has_noise_inputs`), ``reference_xflip`` (True) when the reference holds mirrored
    reals, and ``metric_data`` (the reference's dataset) when it is not ``run_dataset``.
    """
    record = {
        "backbone": backbone.name,
        "backbone_sha256": backbone.weights_sha256,
        "resize": backbone.protocol,
        "n_gen": int(n_gen),
        "n_real": int(reference.meta["n_real"]),
        "reference_split": reference.meta["split"],
        "dataset_sha256": reference.meta["dataset_sha256"],
        "libraries": measurement_libraries(),
    }
    if backbone.num_classes is not None:
        record["n_modes"] = _reference_mode_count(backbone, reference)
    if pr_k is not None:
        record["pr_k"] = int(pr_k)
    if noise_mode is not None:
        record["noise_mode"] = noise_mode
    if reference.meta.get("xflip"):
        record["reference_xflip"] = True
    ref_dataset = reference.meta.get("dataset")
    if run_dataset is not None and ref_dataset not in (None, run_dataset):
        record["metric_data"] = ref_dataset
    return record


def _count(n: int) -> str:
    return f"{n // 1000}k" if n >= 1000 and n % 1000 == 0 else str(n)


def metric_label(record: dict, metric: str = "fid") -> str:
    """StyleGAN2-ADA-style name of a metric under ``record``: e.g. ``fid50k_full`` (50k
    generated against the whole training split), ``fid10k_test`` otherwise, with the resize
    mode in brackets unless it is "native": ``fid50k_full[clean]``."""
    split = record["reference_split"]
    name = f"{metric}{_count(record['n_gen'])}_{'full' if split == 'train' else split}"
    mode = record.get("resize", "native")
    return name if mode == "native" else f"{name}[{mode}]"


def _reference_mode_count(backbone: FeatureBackbone, reference: ReferenceStats) -> int:
    """Modes of the reference's images, from its feature width (k groups × feature_dim).

    The width rather than ``meta["n_modes"]`` so references written before mode metrics
    existed still give it; it is the channel layout FID compares generated images with.
    """
    width = int(reference.features.shape[1])
    if width % backbone.feature_dim:
        raise ValueError(
            f"reference features are {width}-d, not a multiple of the backbone's "
            f"{backbone.feature_dim}-d features; recompute them"
        )
    groups = width // backbone.feature_dim
    return mode_count(backbone, groups * backbone.in_channels)


def protocol_fingerprint(protocol: dict) -> str:
    """First 16 hex digits of sha256 over the canonical (sorted-key) JSON of ``protocol``."""
    canonical = json.dumps(protocol, sort_keys=True)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]
