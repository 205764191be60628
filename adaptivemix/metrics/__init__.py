"""Metrics: feature backbones (a registry of loaders), FID/KID through clean-fid, and the
mode-coverage metrics of stacked digits.

Importing this package registers the embedded backbones ("digits-cnn").
"""

from adaptivemix.metrics import digits_cnn  # noqa: F401  (registers "digits-cnn")
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
    protocol,
    protocol_fingerprint,
)
from adaptivemix.metrics.modes import mode_count, mode_labels, mode_metrics

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
    "mode_count",
    "mode_labels",
    "mode_metrics",
    "protocol",
    "protocol_fingerprint",
]
