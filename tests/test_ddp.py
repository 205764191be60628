"""Data-parallel training (torchrun, 2 CPU processes over gloo) equals single-process training
on the same global batch.

The equivalence needs losses that are batch means of per-sample terms and networks with no
cross-sample layer: the registered ``dcgan`` G has BatchNorm (batch statistics of 4 rows per
rank are not those of 8), so the script registers, in its own processes only, a tiny
BatchNorm-free G with a w-space (so path-length regularisation runs too) and uses the dcgan
D (per-sample: convolutions and linear layers). The knobs exercised: lazy R1, lazy path
length (its running mean is averaged over ranks), d_steps = 2 and x-flips (drawn for the
global batch, then sliced). D records the batch sizes it sees, to show the batch was split.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest
import torch

from adaptivemix.gan.distributed import DistEnv
from adaptivemix.io import load_torch, read_jsonl

SCRIPT = textwrap.dedent(
    """
    import atexit, json, os, sys
    from pathlib import Path

    import torch
    from torch import nn

    from adaptivemix.config import GanRunConfig
    from adaptivemix.data.base import ImageDataset
    from adaptivemix.gan.trainer import train_gan
    from adaptivemix.models import register_arch
    from adaptivemix.models.dcgan import Discriminator

    torch.set_num_threads(1)
    out = Path(sys.argv[1])
    seen = []  # batch sizes D.features saw in this process
    rank = os.environ.get("RANK", "single")
    atexit.register(lambda: (out / f"seen_{rank}.json").write_text(json.dumps(seen)))


    class TinyG(nn.Module):
        def __init__(self, resolution, channels, z_dim):
            super().__init__()
            self.shape = (channels, resolution, resolution)
            self.map = nn.Linear(z_dim, 12)
            self.out = nn.Linear(12, channels * resolution * resolution)

        def mapping(self, z):
            return nn.functional.leaky_relu(self.map(z), 0.2)

        def synthesis(self, ws, generator=None):
            return torch.tanh(self.out(ws)).view(-1, *self.shape)

        def forward(self, z, generator=None):
            return self.synthesis(self.mapping(z), generator)


    class RecordingD(Discriminator):
        def features(self, x):
            seen.append(x.shape[0])
            return super().features(x)


    @register_arch("ddp-test")
    def build(resolution, channels, z_dim, g_width, d_width, options=None):
        return TinyG(resolution, channels, z_dim), RecordingD(resolution, channels, d_width)


    images = torch.rand(40, 1, 8, 8, generator=torch.Generator().manual_seed(3)) * 2 - 1
    data = ImageDataset("noise", {s: images for s in ("train", "val", "test")},
                        {s: torch.zeros(40, dtype=torch.long) for s in ("train", "val", "test")}, 1)
    cfg = GanRunConfig(
        dataset="noise", resolution=8, arch="ddp-test", g_width=4, d_width=4, z_dim=6,
        method="vanilla", method_options={}, adv_loss="nonsaturating", seed=0, steps=4,
        batch_size=8, lr_g=2e-3, lr_d=2e-3, betas=(0.0, 0.99), r1_gamma=1.0, ema_kimg=0.01,
        log_every=1, eval_every=100, eval_samples=8, checkpoint_every=100, r1_interval=2,
        pl_weight=2.0, pl_interval=2, d_steps=2, xflip=True,
    )
    train_gan(cfg, data, out / "run", out / "state")
    """
)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_rank_rows_split_the_global_batch():
    assert DistEnv(0, 2).rows(8) == slice(0, 4)
    assert DistEnv(1, 2).rows(8) == slice(4, 8)
    assert DistEnv().rows(8) == slice(0, 8)
    with pytest.raises(ValueError, match=r"batch of 8 .* 3 ranks"):
        DistEnv(0, 3).rows(8)


def test_two_process_gloo_training_matches_single_process(tmp_path, repo_root):
    script = tmp_path / "ddp_run.py"
    script.write_text(SCRIPT)
    env = {k: v for k, v in os.environ.items() if k not in ("WORLD_SIZE", "RANK", "LOCAL_RANK")}
    env |= {"PYTHONPATH": str(repo_root), "OMP_NUM_THREADS": "1"}
    (tmp_path / "single").mkdir()
    (tmp_path / "ddp").mkdir()
    torchrun = [
        sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", "2",
        "--master_addr", "127.0.0.1", "--master_port", str(free_port()),
    ]  # fmt: skip
    procs = [
        subprocess.Popen([sys.executable, str(script), str(tmp_path / "single")], env=env,
                         cwd=repo_root, stderr=subprocess.PIPE, text=True),
        subprocess.Popen([*torchrun, str(script), str(tmp_path / "ddp")], env=env,
                         cwd=repo_root, stderr=subprocess.PIPE, text=True),
    ]  # fmt: skip
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err[-3000:]

    single = load_torch(tmp_path / "single/state/checkpoint.pt")
    ddp = load_torch(tmp_path / "ddp/state/checkpoint.pt")
    assert single["step"] == ddp["step"] == 4
    for part in ("G", "D", "G_ema"):
        for key, value in single[part].items():
            assert torch.allclose(value, ddp[part][key], atol=1e-5, rtol=0), (part, key)
    assert float(single["pl_mean"]) > 0
    assert float(ddp["pl_mean"]) == pytest.approx(float(single["pl_mean"]), abs=1e-6)

    # rank 0 alone wrote: one log row per step, values averaged over the ranks' halves
    rows_single = read_jsonl(tmp_path / "single/run/log.jsonl")
    rows_ddp = read_jsonl(tmp_path / "ddp/run/log.jsonl")
    assert [r["step"] for r in rows_ddp] == [1, 2, 3, 4]
    for a, b in zip(rows_single, rows_ddp, strict=True):
        assert b["d_loss"] == pytest.approx(a["d_loss"], rel=1e-4)
        assert b["g_loss"] == pytest.approx(a["g_loss"], rel=1e-4)
    assert (tmp_path / "ddp/run/G_ema.pt").exists()

    # the batch really was split: each rank's D saw 4 rows (8 in the single process)
    seen_single = json.loads((tmp_path / "single/seen_single.json").read_text())
    assert set(seen_single) == {8}
    for rank in ("0", "1"):
        assert set(json.loads((tmp_path / f"ddp/seen_{rank}.json").read_text())) == {4}
