"""The paper profile's GAN track end to end, shrunken, through the real readers and metrics.

config/paper.yaml with its experiments cut to tiny sizes: StyleGAN2 (lazy R1, path length,
style mixing, x-flips) on an FFHQ-format zip written here, and the ResNet WGAN-GP
(Wasserstein loss, gradient penalty, 2 critic steps) on a CIFAR-10 python folder, measured
by an Inception-format TorchScript network installed through the sha256-checked rule.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch
import yaml
from test_classify_data import write_copy
from test_image_datasets import picture, png, tool_name, write_zip
from test_inception import TinyInception
from test_workflow import snakemake

from adaptivemix.data.cifar import CIFAR10

STYLEGAN2 = {
    "methods": ["vanilla", "adaptivemix"], "seeds": [0], "z_dim": 16, "batch_size": 4,
    "arch_options": {"channel_base": 128, "channel_max": 16, "mapping_layers": 2, "w_dim": 16,
                     "mbstd_group": 2},
    "r1_gamma": 1.0, "r1_interval": 2, "pl_weight": 2.0, "pl_interval": 2, "xflip": True,
    "steps": 4, "eval_every": 2, "eval_samples": 8, "checkpoint_every": 2, "log_every": 1,
    "ema_kimg": 0.01, "amp": False, "channels_last": False,
}  # fmt: skip
WGAN_GP = {
    "methods": ["vanilla"], "seeds": [0], "z_dim": 16, "g_width": 8, "d_width": 8,
    "adv_loss": "wasserstein", "gp_lambda": 10.0, "d_steps": 2, "batch_size": 4, "steps": 2,
    "eval_every": 2, "eval_samples": 8, "checkpoint_every": 2, "log_every": 1,
}  # fmt: skip


def tiny_inception(path: Path) -> str:
    """A TorchScript file with the official call convention; returns its sha256."""
    module = TinyInception().eval()
    torch.jit.script(module).save(str(path))
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.slow
def test_shrunken_paper_gan_matrix_runs_end_to_end(repo_root, tmp_path):
    data = tmp_path / "data"
    faces = {tool_name(i): png(picture(i, size=16)) for i in range(12)}
    write_zip(data / "ffhq/ffhq-16x16.zip", faces)
    write_copy(data / "cifar10", CIFAR10, "folder", 40, 10)
    weights = tmp_path / "inception-2015-12-05.pt"
    small = {
        "device": "cpu",
        "threads_per_job": 1,
        "sources": {"ffhq256": {"root": str(data / "ffhq")},
                    "cifar10": {"root": str(data / "cifar10")}},
        "backbone": {"name": "inception-clean", "weights": str(weights),
                     "sha256": tiny_inception(weights)},
        "evaluate": {"n_gen": 16},
        "classify": {"datasets": []},
        "gan": {"experiments": [
            {"arch": "stylegan2", "datasets": ["ffhq256"], "resolution": 16,
             "settings": STYLEGAN2},
            {"arch": "resnet-wgangp", "datasets": ["cifar10-gan"], "resolution": 32,
             "settings": WGAN_GP},
        ]},
        "resources": {"train_gpus": 0, "eval_gpus": 0, "train_mem_mb": 2000,
                      "data_mem_mb": 1000, "eval_mem_mb": 1000},
    }  # fmt: skip
    extra = tmp_path / "small.yaml"
    extra.write_text(yaml.safe_dump(small))
    args = ("--cores", "2", "--configfile", "config/paper.yaml", str(extra))
    result = snakemake(repo_root, tmp_path / "work", *args)
    assert result.returncode == 0, (result.stdout + result.stderr)[-3000:]
    out = tmp_path / "work/results/paper"
    for arch, dataset, methods in (("stylegan2", "ffhq256", STYLEGAN2["methods"]),
                                   ("resnet-wgangp", "cifar10-gan", ["vanilla"])):  # fmt: skip
        for method in methods:
            record = json.loads(
                (out / f"runs/gan/{dataset}/{arch}/{method}/seed0/metrics.json").read_text()
            )
            assert record["status"] == "ok" and record["protocol"]["backbone"] == "inception-clean"
            assert record["metrics"]["fid"] >= 0 and record["steps"] > 0
            assert 0 <= record["metrics"]["precision"] <= 1 and record["protocol"]["pr_k"] == 3
    logs = {
        arch: [
            json.loads(line)
            for line in (out / f"runs/gan/{d}/{arch}/vanilla/seed0/log.jsonl")
            .read_text()
            .splitlines()
        ]
        for arch, d in (("stylegan2", "ffhq256"), ("resnet-wgangp", "cifar10-gan"))
    }
    keys = set().union(*logs["stylegan2"])  # lazy R1 and path length log on their steps only
    assert {"r1", "pl_penalty", "fid"} <= keys
    assert "gp" in logs["resnet-wgangp"][0]
    summary = json.loads((out / "data/ffhq256/dataset.json").read_text())
    assert summary["provenance"]["sha256"] == hashlib.sha256(
        (data / "ffhq/ffhq-16x16.zip").read_bytes()).hexdigest()  # fmt: skip
    assert "stylegan2" in (out / "tables/gan_ffhq256.md").read_text()
    assert "resnet-wgangp" in (out / "tables/gan_cifar10-gan.md").read_text()
