"""Adding a baseline is one new file in baselines/ plus one name in a config.

The README's worked example is dropped, unchanged, into a copy of the project as
``baselines/flipmix.py``; its name is added to a config; the real Snakemake DAG then trains,
evaluates and reports it beside vanilla, with nothing else edited.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pandas as pd
import pytest
import yaml

from tests.helpers import copy_project, smoke_config


@pytest.fixture(scope="module")
def project_with_new_plugin(tmp_path_factory, repo_root):
    copy = tmp_path_factory.mktemp("project")
    copy_project(repo_root, copy)
    readme = (repo_root / "README.md").read_text()
    block = re.search(r"```python\n(# baselines/flipmix.py\n.*?)```", readme, re.DOTALL)
    (copy / "baselines/flipmix.py").write_text(block.group(1))
    config = smoke_config()
    config["profile"] = "plugin"
    config["data"]["datasets"] = ["digits"]
    config["classify"]["datasets"] = []  # the GAN track alone: the plugin is a GAN method
    config["ood"]["sets"] = {}
    config["gan"].update(methods=["vanilla", "flipmix"], seeds=[0, 1], steps=20, eval_every=10)
    config["gan"]["method_options"] = {"flipmix": {"p": 0.3}}
    (copy / "plugin.yaml").write_text(yaml.safe_dump(config))
    return copy


def snakemake(cwd, *args):
    command = [sys.executable, "-m", "snakemake", "--configfile", "plugin.yaml", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=cwd)


@pytest.mark.heavy  # a second whole DAG beside the smoke one, about a minute: the slow tier
def test_new_plugin_file_reaches_dag_tables_and_figures(project_with_new_plugin):
    project = project_with_new_plugin
    dry = snakemake(project, "-n")
    assert dry.returncode == 0, dry.stderr[-3000:]
    assert "gan/digits/dcgan/flipmix/seed1" in dry.stdout + dry.stderr
    result = snakemake(project, "--cores", "2")
    assert result.returncode == 0, result.stderr[-3000:]
    out = project / "results/plugin"
    table = pd.read_csv(out / "tables/gan_digits.csv")
    assert list(table["method"]) == ["vanilla", "flipmix"]
    assert (table["n_seeds"] == 2).all() and table["fid_mean"].notna().all()
    assert "flipmix" in (out / "tables/gan_digits.md").read_text()
    curve = pd.read_csv(out / "figures/fid_curve_digits.csv")
    assert set(curve["method"]) == {"vanilla", "flipmix"}
    assert (out / "runs/gan/digits/dcgan/flipmix/seed0/samples.png").is_file()
    summary = pd.read_csv(out / "tables/gan_summary.csv")
    assert "flipmix" in set(summary["method"])
