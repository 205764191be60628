"""Feature backbones: the networks whose activations FID and KID compare.

A backbone is identified by its name, the resize protocol it applies before the network,
and the sha256 of its weights file; all three go into every metric's protocol record, so
two FID numbers are only ever compared when they were measured by the same network.

Each entry of :data:`BACKBONES` is a loader ``load(weights_path, device, sha256=None) ->
FeatureBackbone``. ``sha256`` is the expected hash of the weights file (config key
``backbone.sha256``): a loader refuses a file whose hash differs. Loaders of pretrained
backbones with a published hash use it when ``sha256`` is None; the others then only record it.

Images reach a backbone as float in [-1, 1] or as uint8 (real datasets at scale); uint8 batches
are converted by :func:`adaptivemix.data.base.as_float_images` one batch at a time, so a large
uint8 split is never held as float in memory.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from adaptivemix.data.base import as_float_images
from adaptivemix.errors import ConfigError
from adaptivemix.provenance import sha256_file
from adaptivemix.registry import Registry

BackboneLoader = Callable[..., "FeatureBackbone"]

#: name -> loader(weights_path, device, sha256=None) -> FeatureBackbone
BACKBONES: Registry[BackboneLoader] = Registry("feature backbone")

#: name -> trainer(dataset, seed, *, steps, batch_size, lr, out_path) -> summary dict, for the
#: backbones the workflow trains itself (the embedded profile's); pretrained ones have none.
BACKBONE_TRAINERS: Registry[Callable[..., dict]] = Registry("backbone trainer")


def checked_sha256(
    path: str | Path, expected: str | None, key: str = "backbone.sha256", note: str = ""
) -> str:
    """sha256 of the file at ``path``; raises :class:`ConfigError` when ``expected`` is given
    and differs. The message names the file, both hashes and the config key ``key``."""
    found = sha256_file(path)
    if expected is not None and found != expected.strip().lower():
        raise ConfigError(
            key,
            expected,
            f"the sha256 of weights file '{path}', which is {found}{note}; use the expected "
            f"file, or set {key} to {found} if this file is the one you mean to use",
        )
    return found


class FeatureBackbone(ABC):
    """A frozen feature extractor fed images in [-1, 1], shape (N, C, H, W).

    Batches may also be uint8 (0..255); they are converted to [-1, 1] batch by batch.

    The network takes ``in_channels`` channels. An input with ``k·in_channels`` channels is
    cut into ``k`` consecutive channel groups that are measured separately: features are the
    ``k`` groups' features concatenated (``k·feature_dim`` wide) and predictions are one class
    per group. This is how the stacked-MNIST literature measures its RGB images with a
    single-channel digit classifier, one channel at a time.

    ``embed`` is differentiable (for perceptual losses); ``features`` and ``predict`` batch
    the input, run without autograd and return NumPy arrays on the CPU, so metric code never
    depends on the device the backbone lives on. ``num_classes`` is None for backbones
    without a classifier head.
    """

    def __init__(
        self,
        name: str,
        protocol: str,
        weights_sha256: str,
        feature_dim: int,
        device: str,
        in_channels: int = 1,
        num_classes: int | None = None,
    ):
        if in_channels < 1:
            raise ValueError(f"in_channels must be positive, got {in_channels}")
        self.name = name
        self.protocol = protocol  # resize protocol; "native" = fed at the images' own size
        self.weights_sha256 = weights_sha256
        self.feature_dim = feature_dim  # per channel group
        self.device = device
        self.in_channels = in_channels
        self.num_classes = num_classes

    @abstractmethod
    def embed_batch(self, images: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) on ``self.device`` -> (B, feature_dim) features."""

    def logits_batch(self, images: torch.Tensor) -> torch.Tensor:
        """(B, in_channels, H, W) -> (B, num_classes) logits; only classifiers have them."""
        raise NotImplementedError(f"backbone '{self.name}' has no classifier head")

    def embed_and_logits_batch(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Features and logits of one batch; a backbone whose logits are a head on its
        features overrides this to run the trunk once."""
        return self.embed_batch(images), self.logits_batch(images)

    def group_count(self, channels: int) -> int:
        """How many channel groups an input with ``channels`` channels is measured as."""
        if channels < 1 or channels % self.in_channels:
            raise ValueError(
                f"backbone '{self.name}' measures images with a multiple of {self.in_channels} "
                f"channel(s) (one group of {self.in_channels} at a time); got {channels} channels"
            )
        return channels // self.in_channels

    def _as_groups(self, images: torch.Tensor) -> tuple[torch.Tensor, int]:
        """(B, k·in_channels, H, W) -> (B·k, in_channels, H, W), sample-major, and k.

        One batched pass over every group instead of k passes: group g of sample b is row
        b·k + g, so reshaping the output back to (B, k, ...) restores the channel order.
        """
        if images.ndim != 4:
            raise ValueError(f"expected images of shape (N, C, H, W), got {tuple(images.shape)}")
        b, channels, h, w = images.shape
        k = self.group_count(channels)
        return images.reshape(b * k, self.in_channels, h, w), k

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        """Differentiable features (B, k·feature_dim) of images in [-1, 1], on ``self.device``.

        Gradients flow to ``images`` only: the weights are frozen and the network is in eval
        mode, so the same image always gets the same features (no batch statistics).
        """
        groups, _ = self._as_groups(self._prepared(images))
        return self.embed_batch(groups).reshape(images.shape[0], -1)

    def group_logits(self, images: torch.Tensor) -> torch.Tensor:
        """(B, k, num_classes) logits, one classification per channel group."""
        groups, k = self._as_groups(self._prepared(images))
        return self.logits_batch(groups).reshape(images.shape[0], k, -1)

    def _prepared(self, images: torch.Tensor) -> torch.Tensor:
        """A batch as float32 in [-1, 1] on ``self.device`` (uint8 pixels converted)."""
        return as_float_images(images).to(self.device, torch.float32)

    def features(self, images: torch.Tensor, batch_size: int = 500) -> np.ndarray:
        """Features of every image as float64 (N, k·feature_dim): statistics need precision."""
        return self._run(self.embed, images, batch_size).astype(np.float64)

    def features_and_groups(
        self, images: torch.Tensor, batch_size: int = 500
    ) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`features` and :meth:`predict_groups` of the same images, from one pass."""

        def both(batch: torch.Tensor) -> torch.Tensor:
            groups, k = self._as_groups(self._prepared(batch))
            feats, logits = self.embed_and_logits_batch(groups)
            n = batch.shape[0]
            return torch.cat([feats.reshape(n, -1), logits.reshape(n, k, -1).argmax(2)], 1)

        out = self._run(both, images, batch_size)
        width = self.group_count(images.shape[1]) * self.feature_dim
        return out[:, :width].astype(np.float64), out[:, width:].astype(np.int64)

    def predict_groups(self, images: torch.Tensor, batch_size: int = 500) -> np.ndarray:
        """Predicted class of every channel group (int64, shape (N, k)), e.g. to count modes."""
        logits = self._run(self.group_logits, images, batch_size)
        return logits.argmax(axis=2).astype(np.int64)

    def predict(self, images: torch.Tensor, batch_size: int = 500) -> np.ndarray:
        """Predicted class of every image (int64, shape (N,)); images must be one group."""
        if images.ndim == 4 and self.group_count(images.shape[1]) != 1:
            raise ValueError(
                f"predict takes {self.in_channels}-channel images, got {images.shape[1]} "
                "channels; use predict_groups for one class per channel group"
            )
        return self.predict_groups(images, batch_size)[:, 0]

    def _run(
        self,
        fn: Callable[[torch.Tensor], torch.Tensor],
        images: torch.Tensor,
        batch_size: int,
    ) -> np.ndarray:
        if images.ndim != 4:
            raise ValueError(f"expected images of shape (N, C, H, W), got {tuple(images.shape)}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.group_count(images.shape[1])  # a bad channel count fails before any work
        chunks = []
        with torch.no_grad():
            for start in range(0, images.shape[0], batch_size):
                chunks.append(fn(images[start : start + batch_size]).detach().cpu().numpy())
        if not chunks:
            raise ValueError("no images given")
        return np.concatenate(chunks, axis=0)


class ModuleBackbone(FeatureBackbone):
    """A backbone around an ``nn.Module`` with ``embed(x)`` (features) and ``forward(x)``.

    ``forward`` gives logits when ``num_classes`` is set; the module is frozen on construction.
    """

    def __init__(
        self,
        module: nn.Module,
        name: str,
        protocol: str,
        weights_sha256: str,
        feature_dim: int,
        device: str,
        in_channels: int = 1,
        num_classes: int | None = None,
    ):
        super().__init__(
            name, protocol, weights_sha256, feature_dim, device, in_channels, num_classes
        )
        self.module = module.to(device).eval().requires_grad_(False)

    def embed_batch(self, images: torch.Tensor) -> torch.Tensor:
        self.module.eval()  # guard against a caller having switched it to training mode
        return self.module.embed(images)

    def logits_batch(self, images: torch.Tensor) -> torch.Tensor:
        self.module.eval()
        return self.module(images)

    def embed_and_logits_batch(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One trunk pass when the module says how its logits follow from its features
        (``logits_from_features``, with ``forward(x) == logits_from_features(embed(x))``)."""
        head = getattr(self.module, "logits_from_features", None)
        if head is None:
            return super().embed_and_logits_batch(images)
        self.module.eval()
        feats = self.module.embed(images)
        return feats, head(feats)
