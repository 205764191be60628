"""A finished run's files: the EMA generator, a sample grid and a training summary."""

from __future__ import annotations

import io
import math
from pathlib import Path

import torch
from PIL import Image

from adaptivemix.config import GanRunConfig
from adaptivemix.io import atomic_write, load_torch, save_torch, write_json
from adaptivemix.models import build_models
from adaptivemix.provenance import provenance

GENERATOR_FILE = "G_ema.pt"
SAMPLES_FILE = "samples.png"
TRAIN_SUMMARY_FILE = "train.json"
SAMPLE_SEED_OFFSET = 7_000_000  # sample-grid noise never shares a stream with training


def write_run_outputs(
    run_dir: Path, G_ema, cfg: GanRunConfig, summary: dict, channels: int
) -> None:
    save_torch(
        run_dir / GENERATOR_FILE,
        {"config": cfg.to_dict(), "channels": channels, "state_dict": G_ema.state_dict()},
    )
    save_sample_grid(G_ema, cfg.z_dim, cfg.seed + SAMPLE_SEED_OFFSET, run_dir / SAMPLES_FILE)
    write_json(
        run_dir / TRAIN_SUMMARY_FILE,
        {**summary, "config": cfg.to_dict(), "provenance": provenance()},
    )


def load_generator(path: Path, device: str = "cpu") -> tuple[torch.nn.Module, GanRunConfig]:
    payload = load_torch(path)
    cfg = GanRunConfig.from_dict(payload["config"])
    G, _ = build_models(
        cfg.arch, cfg.resolution, payload["channels"], cfg.z_dim, cfg.g_width, cfg.d_width, 0,
        cfg.arch_options,
    )  # fmt: skip
    G.load_state_dict(payload["state_dict"])
    return G.to(device).eval(), cfg


@torch.no_grad()
def save_sample_grid(G, z_dim: int, seed: int, path: Path, n: int = 64, scale: int = 4) -> Path:
    """An 8×8 grid of G's samples for fixed noise, upscaled (nearest) for viewing."""
    was_training = G.training
    G.eval()
    device = next(G.parameters()).device
    gen = torch.Generator(device).manual_seed(seed)
    images = G(torch.randn(n, z_dim, generator=gen, device=device)).cpu()
    G.train(was_training)
    grid = image_grid((images + 1) / 2, per_row=8, padding=1, pad_value=1.0).clamp(0, 1)
    array = (grid.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    picture = Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array)
    picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return atomic_write(path, lambda f: f.write(buffer.getvalue()))


def image_grid(
    images: torch.Tensor, per_row: int = 8, padding: int = 2, pad_value: float = 0.0
) -> torch.Tensor:
    """(N, C, H, W) images tiled row-major into one (C', H', W') picture, ``padding`` pixels
    between and around them; single-channel images become 3-channel.

    The layout of torchvision's ``make_grid`` (without its normalisation), written here so
    that writing a sample grid does not import torchvision (its package import pulls
    ``torchvision.models``: seconds per job); ``tests/test_outputs.py`` compares the two.
    """
    if images.shape[1] == 1:
        images = images.expand(-1, 3, -1, -1)
    n, channels, height, width = images.shape
    cols = min(per_row, n)
    rows = math.ceil(n / cols)
    cell_h, cell_w = height + padding, width + padding
    grid = images.new_full((channels, rows * cell_h + padding, cols * cell_w + padding), pad_value)
    for k in range(n):
        top, left = (k // cols) * cell_h + padding, (k % cols) * cell_w + padding
        grid[:, top : top + height, left : left + width] = images[k]
    return grid
