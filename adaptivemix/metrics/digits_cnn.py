"""The digits feature backbone: a small CNN classifier trained on the digits train split.

Inception-v3 features mean little on 16×16 handwritten digits, and no pretrained weights
may be downloaded at run time, so the digits profile measures FID/KID in the 64-d
penultimate layer of this classifier instead (images fed at their own resolution, protocol
"native"). It is trained once per profile from a seed and identified everywhere by the
sha256 of its weights file, so every FID of a profile is measured by the same network.
On stacked digits (three digits as RGB channels) the single-channel network measures each
channel separately (3 × 64-d features) and its per-channel predictions count the modes.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from adaptivemix.data.base import ImageDataset
from adaptivemix.io import load_torch, save_torch
from adaptivemix.metrics.backbones import (
    BACKBONE_TRAINERS,
    BACKBONES,
    FeatureBackbone,
    ModuleBackbone,
    checked_sha256,
)  # fmt: skip
from adaptivemix.provenance import sha256_file

BACKBONE_NAME = "digits-cnn"
FEATURE_DIM = 64
SHIFT_PX = 1  # augmentation: random translation of up to ±1 pixel


class DigitsCNN(nn.Module):
    """conv32-pool-conv64, 2×2 adaptive average pool, fc64 embedding, 10-way classifier.

    The adaptive pool lets one architecture serve 8, 16 and 32 px inputs. Batch norm before
    each ReLU keeps the embedding at unit scale with few dead units: the cubic KID kernel
    needs x·y/d of order one, and FID needs a well-conditioned covariance.
    """

    def __init__(self, in_channels: int = 1, feature_dim: int = FEATURE_DIM, num_classes: int = 10):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, 32, 3, padding=1, bias=False),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3, padding=1, bias=False),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(2),
        )
        self.embedding = nn.Sequential(
            nn.Linear(64 * 2 * 2, feature_dim, bias=False), nn.BatchNorm1d(feature_dim)
        )
        self.classifier = nn.Linear(feature_dim, num_classes)
        self.feature_dim = feature_dim

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """The 64-d penultimate activations (after ReLU): the features FID/KID use."""
        return F.relu(self.embedding(self.body(x).flatten(1)))

    def logits_from_features(self, features: torch.Tensor) -> torch.Tensor:
        return self.classifier(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.logits_from_features(self.embed(x))


def random_shift(x: torch.Tensor, generator: torch.Generator, max_shift: int = SHIFT_PX):
    """Translate each image by its own offset in [-max_shift, max_shift]² (background -1).

    Offsets come from ``generator`` only, so augmentation never touches the global RNG.
    """
    n, _, h, w = x.shape
    padded = F.pad(x, (max_shift,) * 4, value=-1.0)
    dy, dx = torch.randint(0, 2 * max_shift + 1, (2, n, 1), generator=generator)
    rows = (dy + torch.arange(h))[:, :, None]  # (N, H, 1)
    cols = (dx + torch.arange(w))[:, None, :]  # (N, 1, W)
    batch = torch.arange(n)[:, None, None]
    return padded.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2).contiguous()


def accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    """Top-1 accuracy in eval mode, batched to bound memory."""
    model.eval()
    correct = 0
    with torch.no_grad():
        for start in range(0, images.shape[0], 500):
            logits = model(images[start : start + 500])
            correct += int((logits.argmax(1) == labels[start : start + 500]).sum())
    return correct / max(int(images.shape[0]), 1)


@BACKBONE_TRAINERS.register(BACKBONE_NAME)
def train_digits_cnn(
    dataset: ImageDataset,
    seed: int,
    *,
    steps: int = 1000,
    batch_size: int = 64,
    lr: float = 3e-3,
    out_path: str | Path,
) -> dict:
    """Train the backbone on the train split and save it; returns accuracies and hash.

    Initialisation uses a forked global RNG seeded with ``seed``; batch sampling and
    augmentation use an explicit generator seeded with ``seed``. The same seed therefore
    gives bit-identical weights (on one thread) and the caller's RNG state is untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = DigitsCNN(dataset.channels, FEATURE_DIM, dataset.num_classes)
    gen = torch.Generator().manual_seed(seed)
    images, labels = dataset.split("train")
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    # cosine decay to zero: the saved final iterate is settled, not mid-oscillation
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=max(steps, 1))
    start = time.perf_counter()
    model.train()
    for _ in range(steps):
        idx = torch.randint(0, images.shape[0], (batch_size,), generator=gen)
        loss = F.cross_entropy(model(random_shift(images[idx], gen)), labels[idx])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
    train_seconds = time.perf_counter() - start
    meta = {**_meta(model, dataset), "seed": seed, "steps": steps, "batch_size": batch_size}
    save_torch(out_path, {"state_dict": model.state_dict(), "meta": {**meta, "lr": lr}})
    acc = {s: accuracy(model, *dataset.split(s)) for s in ("train", "val", "test")}
    return {
        "backbone": BACKBONE_NAME,
        "seed": seed,
        "steps": steps,
        "batch_size": batch_size,
        "lr": lr,
        **{f"{s}_accuracy": a for s, a in acc.items()},
        "weights_sha256": sha256_file(out_path),
        "train_seconds": train_seconds,
    }


def _meta(model: DigitsCNN, dataset: ImageDataset) -> dict:
    return {
        "in_channels": int(dataset.channels),
        "resolution": int(dataset.resolution),
        "feature_dim": int(model.feature_dim),
        "num_classes": int(dataset.num_classes),
    }


def load_digits_cnn(weights_path: str | Path) -> tuple[DigitsCNN, dict]:
    """Rebuild the model from a file written by :func:`train_digits_cnn` (weights only)."""
    payload = load_torch(weights_path)
    meta = payload["meta"]
    model = DigitsCNN(meta["in_channels"], meta["feature_dim"], meta["num_classes"])
    model.load_state_dict(payload["state_dict"])
    return model.eval(), meta


@BACKBONES.register(BACKBONE_NAME)
def load_digits_backbone(
    weights_path: str | Path, device: str = "cpu", sha256: str | None = None
) -> FeatureBackbone:
    """The trained classifier as a backbone; it measures any multiple of its input channels
    (stacked digits: one digit per channel) and classifies each channel group.

    ``sha256``, when given, must be the weights file's hash (checked before loading)."""
    found = checked_sha256(weights_path, sha256)
    model, meta = load_digits_cnn(weights_path)
    return ModuleBackbone(
        model,
        name=BACKBONE_NAME,
        protocol="native",
        weights_sha256=found,
        feature_dim=int(meta["feature_dim"]),
        device=device,
        in_channels=int(meta["in_channels"]),
        num_classes=int(meta["num_classes"]),
    )
