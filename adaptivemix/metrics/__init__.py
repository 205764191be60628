"""Metrics: feature backbones (a registry of loaders), FID/KID through clean-fid, improved
precision/recall, and the mode-coverage metrics of stacked digits.

Importing this package registers the backbones: "digits-cnn" (embedded) and clean-fid's
Inception network in its two modes, "inception-clean" and "inception-legacy-tensorflow".
"""

from adaptivemix.metrics import (
    digits_cnn,  # noqa: F401  (registers "digits-cnn")
    inception,  # noqa: F401  (registers "inception-*")
)
from adaptivemix.metrics.backbones import BACKBONES, FeatureBackbone, ModuleBackbone
from adaptivemix.metrics.fid import (
    ReferenceStats,
    compute_reference_stats,
    evaluate_generator,
    evaluate_images,
    feature_statistics,
    fid_from_features,
    generate_images,
    kid_from_features,
    metric_label,
    protocol,
    protocol_fingerprint,
)
from adaptivemix.metrics.inception import missing_backbone_files, verify_weights
from adaptivemix.metrics.modes import mode_count, mode_labels, mode_metrics
from adaptivemix.metrics.precision_recall import precision_recall

__all__ = [
    "BACKBONES",
    "FeatureBackbone",
    "ModuleBackbone",
    "ReferenceStats",
    "compute_reference_stats",
    "evaluate_generator",
    "evaluate_images",
    "feature_statistics",
    "fid_from_features",
    "generate_images",
    "kid_from_features",
    "metric_label",
    "missing_backbone_files",
    "mode_count",
    "mode_labels",
    "mode_metrics",
    "precision_recall",
    "protocol",
    "protocol_fingerprint",
    "verify_weights",
]
