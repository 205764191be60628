"""Feature backbones: the networks whose activations FID and KID compare.

A backbone is identified by its name, the resize protocol it applies before the network,
and the sha256 of its weights file; all three go into every metric's protocol record, so
two FID numbers are only ever compared when they were measured by the same network.

Each entry of :data:`BACKBONES` is a loader ``load(weights_path, device) -> FeatureBackbone``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from adaptivemix.registry import Registry

BackboneLoader = Callable[[str | Path, str], "FeatureBackbone"]

#: name -> loader(weights_path, device) -> FeatureBackbone
BACKBONES: Registry[BackboneLoader] = Registry("feature backbone")

#: name -> trainer(dataset, seed, *, steps, batch_size, lr, out_path) -> summary dict, for the
#: backbones the workflow trains itself (the embedded profile's); pretrained ones have none.
BACKBONE_TRAINERS: Registry[Callable[..., dict]] = Registry("backbone trainer")


class FeatureBackbone(ABC):
    """A frozen feature extractor fed images in [-1, 1], shape (N, C, H, W).

    ``features`` and ``predict`` batch the input, run without autograd and return NumPy
    arrays on the CPU, so metric code never depends on the device the backbone lives on.
    """

    def __init__(
        self, name: str, protocol: str, weights_sha256: str, feature_dim: int, device: str
    ):
        self.name = name
        self.protocol = protocol  # resize protocol; "native" = fed at the images' own size
        self.weights_sha256 = weights_sha256
        self.feature_dim = feature_dim
        self.device = device

    @abstractmethod
    def embed_batch(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) on ``self.device`` -> (B, feature_dim) features."""

    def logits_batch(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, num_classes) logits; only classifier backbones have them."""
        raise NotImplementedError(f"backbone '{self.name}' has no classifier head")

    def features(self, images: torch.Tensor, batch_size: int = 500) -> np.ndarray:
        """Features of every image as float64 (N, feature_dim): statistics need the precision."""
        out = self._run(self.embed_batch, images, batch_size)
        return out.astype(np.float64)

    def predict(self, images: torch.Tensor, batch_size: int = 500) -> np.ndarray:
        """Predicted class of every image (int64, shape (N,)), e.g. for counting modes."""
        logits = self._run(self.logits_batch, images, batch_size)
        return logits.argmax(axis=1).astype(np.int64)

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
        chunks = []
        with torch.no_grad():
            for start in range(0, images.shape[0], batch_size):
                batch = images[start : start + batch_size].to(self.device, torch.float32)
                chunks.append(fn(batch).detach().to("cpu", torch.float64).numpy())
        if not chunks:
            raise ValueError("no images given")
        return np.concatenate(chunks, axis=0)


class ModuleBackbone(FeatureBackbone):
    """A backbone around an ``nn.Module`` that has ``embed(x)`` (features) and ``forward(x)``."""

    def __init__(
        self,
        module: nn.Module,
        name: str,
        protocol: str,
        weights_sha256: str,
        feature_dim: int,
        device: str,
    ):
        super().__init__(name, protocol, weights_sha256, feature_dim, device)
        self.module = module.to(device).eval().requires_grad_(False)

    def embed_batch(self, images: torch.Tensor) -> torch.Tensor:
        self.module.eval()  # guard against a caller having switched it to training mode
        return self.module.embed(images)

    def logits_batch(self, images: torch.Tensor) -> torch.Tensor:
        self.module.eval()
        return self.module(images)
