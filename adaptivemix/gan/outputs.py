"""A finished run's files: the EMA generator, a sample grid and a training summary."""

from __future__ import annotations

import io
from pathlib import Path

import torch
from PIL import Image
from torchvision.utils import make_grid

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
    grid = make_grid((images + 1) / 2, nrow=8, padding=1, pad_value=1.0).clamp(0, 1)
    array = (grid.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    picture = Image.fromarray(array.squeeze(-1) if array.shape[-1] == 1 else array)
    picture = picture.resize((picture.width * scale, picture.height * scale), Image.NEAREST)
    buffer = io.BytesIO()
    picture.save(buffer, format="PNG")
    return atomic_write(path, lambda f: f.write(buffer.getvalue()))
