"""Metrics: feature backbones (a registry of loaders) and FID/KID through clean-fid.

Importing this package registers the embedded backbones ("digits-cnn").
"""

from adaptivemix.metrics import digits_cnn  # noqa: F401  (registers "digits-cnn")
from adaptivemix.metrics.backbones import BACKBONES, FeatureBackbone, ModuleBackbone
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

__all__ = [
    "BACKBONES",
    "FeatureBackbone",
    "ModuleBackbone",
    "ReferenceStats",
    "compute_reference_stats",
    "evaluate_generator",
    "feature_statistics",
    "fid_from_features",
    "generate_images",
    "kid_from_features",
    "protocol",
    "protocol_fingerprint",
]
