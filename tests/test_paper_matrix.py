"""Every cell of config/paper.yaml, shrunken, through the real workflow, evaluation included.

The matrix is read from config/paper.yaml itself: every GAN (experiment × dataset × method)
and every classification (dataset × method) cell with every OOD set and detector. Only sizes
shrink (steps, widths, resolution, seeds to one, images); the methods, their options, the
losses, regularisers and evaluation protocol stay the paper's. The data are tiny copies in
each reader's exact on-disk format, the FID network a tiny Inception-format TorchScript file
and the perceptual network tiny weights in the torchvision AlexNet file format, each
installed through its sha256 check. A cell that cannot run fails the test.
"""

from __future__ import annotations

import copy
import csv
import hashlib
import json
from pathlib import Path

import pytest
import torch
import yaml
from test_image_datasets import picture, png, tool_name, write_zip
from test_inception import TinyInception
from test_paper_profile import write_local_copies
from test_perceptual import random_alexnet
from test_workflow import snakemake

from adaptivemix.provenance import sha256_file

RESOLUTION = 32  # the smallest side AlexNet's LPIPS layers accept
GAN_SIZES = {  # over every experiment's settings: sizes only
    "seeds": [0], "z_dim": 16, "batch_size": 4, "steps": 2, "eval_every": 2,
    "eval_samples": 8, "checkpoint_every": 2, "log_every": 1, "ema_kimg": 0.01,
    "amp": False, "channels_last": False, "probe_samples": 16,
}  # fmt: skip
ARCH_SIZES = {
    "stylegan2": {"r1_interval": 2, "pl_interval": 2,
                  "arch_options": {"channel_base": 256, "channel_max": 16, "mapping_layers": 2,
                                   "w_dim": 16, "mbstd_group": 2}},
    "dcgan-cifar": {"g_width": 8, "d_width": 8},
    "resnet-wgangp": {"g_width": 8, "d_width": 8, "d_steps": 2},
}  # fmt: skip
CLASSIFY_SIZES = {"depth": 10, "widen": 1, "seeds": [0], "epochs": 1, "batch_size": 8,
                  "eval_batch_size": 50}  # fmt: skip
N_FACES = 5_003  # ffhq256-5k draws 5,000 of them


def tiny_inception(path: Path) -> str:
    """A TorchScript file with the official call convention; returns its sha256."""
    torch.jit.script(TinyInception().eval()).save(str(path))
    return hashlib.sha256(path.read_bytes()).hexdigest()


def paper_config(repo_root: Path) -> dict:
    return yaml.safe_load((repo_root / "config/paper.yaml").read_text())


def shrink_options(options: dict, scale: int) -> dict:
    """Method options with resolutions (GLeaD's ``res_g``, ``res_d``) scaled with the images."""
    out = copy.deepcopy(options)
    for values in out.values():
        for key in ("res_g", "res_d"):
            if values and values.get(key):
                values[key] = max(values[key] // scale, 4)
    return out


def shrink_experiment(experiment: dict, paper: dict) -> dict:
    settings = {**experiment.get("settings", {}), **GAN_SIZES}
    settings.update(copy.deepcopy(ARCH_SIZES[experiment["arch"]]))
    scale = max(experiment["resolution"] // RESOLUTION, 1)
    options = settings.get("method_options", paper["gan"].get("method_options", {}))
    settings["method_options"] = shrink_options(options, scale)
    return {**experiment, "resolution": RESOLUTION, "settings": settings}


def gan_cells(paper: dict) -> list[tuple[str, str, str]]:
    """(dataset, arch, method) of every GAN cell of the paper profile."""
    cells = []
    for experiment in paper["gan"]["experiments"]:
        methods = experiment.get("settings", {}).get("methods", paper["gan"]["methods"])
        for dataset in experiment["datasets"]:
            cells += [(dataset, experiment["arch"], m) for m in methods]
    return cells


def write_gan_sources(root: Path, paper: dict) -> dict:
    """A tiny copy of every GAN dataset's local format (dataset_tool zips at R×R)."""
    size = RESOLUTION
    faces = {tool_name(i): png(picture(i, size=size)) for i in range(N_FACES)}
    write_zip(root / f"ffhq/ffhq-{size}x{size}.zip", faces)
    for stem in ("afhq-cat", "lsun-church", "lsun-bedroom"):
        files = {tool_name(i): png(picture(i + 7, size=size)) for i in range(12)}
        write_zip(root / stem / f"{stem}-{size}x{size}.zip", files)
    folders = {"ffhq256": "ffhq", "ffhq256-5k": "ffhq", "afhq-cat": "afhq-cat",
               "lsun-church": "lsun-church", "lsun-bedroom": "lsun-bedroom"}  # fmt: skip
    used = {d for e in paper["gan"]["experiments"] for d in e["datasets"]}
    return {name: {"root": str(root / folders[name])} for name in used if name in folders}


def tiny_alexnet(path: Path) -> dict:
    """Random AlexNet convolutions in torchvision's file format (``features.*`` keys)."""
    features = random_alexnet().features.state_dict()
    torch.save({f"features.{k}": v for k, v in features.items()}, path)
    return {"weights": str(path), "sha256": sha256_file(path)}


def shrunken_paper(tmp_path: Path, paper: dict) -> dict:
    data = tmp_path / "data"
    sources = write_local_copies(data)
    sources |= write_gan_sources(data, paper)
    inception = tmp_path / "inception-2015-12-05.pt"
    backbone = {**paper["backbone"], "weights": str(inception),
                "sha256": tiny_inception(inception)}  # fmt: skip
    experiments = [shrink_experiment(e, paper) for e in paper["gan"]["experiments"]]
    return {
        "device": "cpu", "threads_per_job": 1, "sources": sources, "backbone": backbone,
        "perceptual": {"lpips": tiny_alexnet(tmp_path / "alexnet-owt.pth")},
        "evaluate": {"n_gen": 16},
        "gan": {**GAN_SIZES, "experiments": experiments},
        "classify": CLASSIFY_SIZES,
        "resources": {"train_gpus": 0, "eval_gpus": 0, "train_mem_mb": 2000,
                      "data_mem_mb": 1000, "eval_mem_mb": 1000},
    }  # fmt: skip


@pytest.mark.slow
def test_every_cell_of_the_paper_profile_runs_shrunken(repo_root, tmp_path):
    paper = paper_config(repo_root)
    extra = tmp_path / "small.yaml"
    extra.write_text(yaml.safe_dump(shrunken_paper(tmp_path, paper)))
    args = ("--cores", "2", "--configfile", "config/paper.yaml", str(extra))
    result = snakemake(repo_root, tmp_path / "work", *args)
    assert result.returncode == 0, (result.stdout + result.stderr)[-4000:]
    out = tmp_path / "work/results/paper"
    cells = gan_cells(paper)
    assert len(cells) == len(set(cells)) >= 60  # 5 × 10 StyleGAN2, 7 DCGAN, 7 WGAN-GP
    for dataset, arch, method in cells:
        run = out / f"runs/gan/{dataset}/{arch}/{method}/seed0"
        record = json.loads((run / "metrics.json").read_text())
        assert record["status"] == "ok", (dataset, arch, method, record["status"])
        assert record["steps"] == GAN_SIZES["steps"] and record["metrics"]["fid"] >= 0
        assert record["protocol"]["backbone"] == paper["backbone"]["name"]
    check_gan_logs_and_data(out, tmp_path / "data")
    for dataset in paper["classify"]["datasets"]:
        methods = paper["classify"]["methods"]
        rows = read_rows(out / f"tables/classify_{dataset}.csv")
        assert {r["method"] for r in rows} == set(methods), dataset
        assert all(r["n_diverged"] == "0" for r in rows), dataset
        ood = {(r["detector"], r["method"], r["ood_set"])
               for r in read_rows(out / f"tables/ood_{dataset}.csv")}  # fmt: skip
        sets, detectors = paper["ood"]["sets"][dataset], paper["ood"]["detectors"]
        assert ood == {(d, m, s) for d in detectors for m in methods for s in sets}, dataset


def check_gan_logs_and_data(out: Path, data: Path) -> None:
    """StyleGAN2 logs lazy R1 and path length, WGAN-GP its penalty; data keep provenance."""

    def log_keys(dataset: str, arch: str) -> set[str]:
        path = out / f"runs/gan/{dataset}/{arch}/vanilla/seed0/log.jsonl"
        return set().union(*(json.loads(line) for line in path.read_text().splitlines()))

    assert {"r1", "pl_penalty", "fid"} <= log_keys("ffhq256", "stylegan2")
    assert "gp" in log_keys("cifar10-gan", "resnet-wgangp")
    summary = json.loads((out / "data/ffhq256/dataset.json").read_text())
    archive = data / f"ffhq/ffhq-{RESOLUTION}x{RESOLUTION}.zip"
    assert summary["provenance"]["sha256"] == hashlib.sha256(archive.read_bytes()).hexdigest()
    sizes = json.loads((out / "data/classify/cifar10/dataset.json").read_text())["sizes"]
    assert sizes == {"train": 90, "val": 10, "test": 20}


def read_rows(path: Path) -> list[dict]:
    with path.open(newline="") as f:
        return list(csv.DictReader(f))
