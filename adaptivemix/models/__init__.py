"""Architectures: one family per file, each registered in :data:`ARCHS`.

Contract every family meets (DESIGN.md §4):

- ``D.features(x)`` -> per-sample features (everything before the final head) and
  ``D.head(f)`` -> logits of shape (N,); ``D(x) == D.head(D.features(x))``.
  ``D.per_sample_features`` says whether ``features`` treats samples independently;
  ``D.feature_maps(x)`` returns every stage's map by resolution, the last one being
  ``features(x)``, and ``D.stage_channels[res]`` their channel counts (decoders such as
  GLeaD's take skips from them).
- ``G.stem(z)`` -> the first feature map; ``G.synthesize_from(h, res, z=None)`` runs the
  stages from resolution ``res`` upward to an image in about [-1, 1] (StyleGAN2 has no
  final tanh, as upstream; metrics clamp samples to [-1, 1]) (a style-based G styles them
  from ``z``, or from its average style when ``z`` is None);
  ``G(z) == G.synthesize_from(G.stem(z), G.stage_resolutions[0], z=z)``;
  ``G.feature_maps(z)`` returns every stage's map by resolution and ``G.stage_channels[res]``
  its channel count. ``G(z, generator=gen)`` draws any training-time randomness (noise
  inputs, style mixing) from ``gen``, and none without it; ``G(z, generator=gen, maps=d)``
  also records that very forward's stage maps into the dict ``d``. The last
  ``G.stage_image_channels`` channels of a stage map are a running skip image (StyleGAN2;
  0 for the staged families). A style-based G also takes ``synthesize_from(h, res, ws=ws,
  generator=gen)`` (explicit styles, noise from ``gen``) and exposes ``w_dim``, ``num_ws``.
"""

from adaptivemix.models import (  # noqa: F401  (each registers its families)
    cnn32,  # "dcgan-cifar"
    dcgan,  # "dcgan"
    resnet32,  # "resnet-wgangp"
    stylegan2,  # "stylegan2"
)
from adaptivemix.models.base import ARCHS, build_models, build_models_on_meta, register_arch

__all__ = ["ARCHS", "build_models", "build_models_on_meta", "register_arch"]
