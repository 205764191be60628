"""The paper profile's wiring, on tiny copies in the real on-disk formats.

Without data, a dry run builds the whole matrix, and a real run stops before any job,
listing every missing dataset and weights file with the key to set. With tiny
CIFAR python folders, ODIN image folders and an OpenOOD v1.5 tree written here, the full
paper DAG builds (``tests/test_paper_matrix.py`` runs every cell of it, shrunken).
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from test_classify_data import write_copy
from test_ood_sets import write_png
from test_workflow import job_counts, snakemake

from adaptivemix.data.cifar import CIFAR10, CIFAR100
from adaptivemix.ood.local_sets import ODIN_SETS

OPENOOD_SETS = {
    "cifar10": ["cifar100", "tin", "mnist", "svhn", "texture", "places365"],
    "cifar100": ["cifar10", "tin", "mnist", "svhn", "texture", "places365"],
}


def write_local_copies(root: Path) -> dict:
    """Tiny copies of every source the paper profile reads; returns its ``sources``."""
    write_copy(root / "cifar10", CIFAR10, "folder", 100, 20)
    write_copy(root / "cifar100", CIFAR100, "archive", 300, 100)
    for odin in ODIN_SETS:
        for i in range(3):
            write_png(root / "odin" / odin.folder / f"{i}.png", (40 * i, 90, 200))
    for id_name, names in OPENOOD_SETS.items():
        lists = root / "openood/benchmark_imglist" / id_name
        lists.mkdir(parents=True, exist_ok=True)
        for name in names:
            write_png(root / "openood/images_classic" / name / "test/a.png", (10, 200, 30))
            (lists / f"test_{name}.txt").write_text(f"{name}/test/a.png -1\n")
    sources = {f"cifar{k}": {"root": str(root / f"cifar{k}")} for k in ("10", "100")}
    sources |= {odin.name: {"root": str(root / "odin")} for odin in ODIN_SETS}
    return sources | {"openood": {"root": str(root / "openood")}}


#: The paper's GAN matrix: (datasets, methods, seeds) per architecture, as config/paper.yaml.
GAN_MATRIX = {"stylegan2": (5, 10, 1), "dcgan-cifar": (1, 7, 3), "resnet-wgangp": (1, 7, 3)}


@pytest.mark.slow
def test_paper_dry_run_builds_the_whole_matrix_without_any_data(repo_root, tmp_path):
    result = snakemake(repo_root, tmp_path, "-n", "--configfile", "config/paper.yaml")
    text = result.stdout + result.stderr
    assert result.returncode == 0, text[-3000:]
    gan_runs = sum(d * m * s for d, m, s in GAN_MATRIX.values())
    # 5 references: ffhq256 and afhq-cat with mirrored reals (--mirror=1; ffhq256-5k is
    # measured against ffhq256's, evaluate.metric_data), LSUN's two and cifar10-gan's plain;
    # ffhq256-5k is a cut of ffhq256, so the limited-data table is made too
    assert job_counts(text) == {
        "prepare_dataset": 6, "install_backbone": 1, "install_perceptual": 1,
        "reference_stats": 5,
        "train_gan": gan_runs, "aggregate_gan": 1, "aggregate_limited_data": 1,
        "prepare_cls_dataset": 2, "train_classifier": 30,
        "prepare_ood_set": 22, "aggregate_classify": 1, "claims": 1, "report_tables": 1,
        "all": 1,
    }  # fmt: skip
    assert gan_runs == 92
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_paper_run_without_data_lists_every_missing_input_and_runs_nothing(repo_root, tmp_path):
    result = snakemake(repo_root, tmp_path, "--cores", "1", "--configfile", "config/paper.yaml")
    text = result.stdout + result.stderr
    assert result.returncode != 0
    keys = [f"sources.{name}.root" for name in ("ffhq256", "afhq-cat", "lsun-church",
            "lsun-bedroom", "cifar10", "cifar100", "odin-isun", "openood")]  # fmt: skip
    for key in [*keys, "backbone.weights", "perceptual.lpips.weights"]:
        assert key in text, key
    assert "/data/cifar10" in text and "cifar-10-batches-py" in text
    assert "inception-2015-12-05.pt" in text and "alexnet-owt-7be5be79.pth" in text
    assert not (tmp_path / "results").exists()


@pytest.mark.slow
def test_paper_dag_builds_with_local_copies(repo_root, tmp_path):
    extra = tmp_path / "local.yaml"
    sources = write_local_copies(tmp_path / "data")
    extra.write_text(yaml.safe_dump({"sources": sources, "gan": {"experiments": []}}))
    args = ("-n", "--configfile", "config/paper.yaml", str(extra))
    result = snakemake(repo_root, tmp_path / "work", *args)
    text = result.stdout + result.stderr
    assert result.returncode == 0, text[-3000:]
    # 2 ID sets × 5 methods × 3 seeds; 11 OOD sets per ID set
    assert job_counts(text) == {
        "prepare_cls_dataset": 2, "train_classifier": 30,
        "prepare_ood_set": 22, "aggregate_classify": 1, "claims": 1, "report_tables": 1,
        "all": 1,
    }  # fmt: skip
