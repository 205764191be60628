# Shared by every rule: config validation, paths, and the run matrix.
import json
import os
import shlex
import sys

import baselines  # registers the baseline methods before the config is checked
from adaptivemix.classify.config import arch_name, cls_run_config, ood_sets_in_use
from adaptivemix.config import gan_run_config, load_workflow_config
from adaptivemix.registries import DATASETS, OOD_SETS

config.update(load_workflow_config(config))
OOD_SETS_USED = ood_sets_in_use(config)  # in-distribution set -> its OOD sets

OUT = f"results/{config['profile']}"
RUN = "gan/{dataset}/{arch}/{method}/seed{seed}"
CLS_RUN = "classify/{dataset}/{arch}/{method}/seed{seed}"
CLS_DATA = f"{OUT}/data/classify/{{dataset}}/dataset.pt"
BACKBONE = config["backbone"]["name"]
REF_SPLIT = config["evaluate"]["reference_split"]
THREADS = config["threads_per_job"]
# The interpreter running Snakemake runs every job too: no reliance on PATH.
CLI = f"{shlex.quote(sys.executable)} -m adaptivemix"


wildcard_constraints:
    dataset="[A-Za-z0-9_-]+",
    arch="[A-Za-z0-9_-]+",
    method="[A-Za-z0-9_+-]+",
    oodset="[A-Za-z0-9_-]+",
    seed="[0-9]+",
    split="train|val|test",


def gan_runs():
    """Every (dataset, arch, method, seed) of the config: the whole GAN matrix."""
    gan = config["gan"]
    return [
        dict(dataset=d, arch=gan["arch"], method=m, seed=s)
        for d in config["data"]["datasets"]
        for m in gan["methods"]
        for s in gan["seeds"]
    ]


def run_spec(wildcards):
    """The run's own slice of the config, as JSON: only it decides whether the run reruns."""
    cfg = gan_run_config(config, wildcards.dataset, wildcards.method, int(wildcards.seed))
    return json.dumps(cfg.to_dict(), sort_keys=True)


def run_metrics():
    return [f"{OUT}/runs/{RUN}/metrics.json".format(**r) for r in gan_runs()]


def cls_runs():
    """Every (dataset, arch, method, seed) of the classification track (none when it is off)."""
    cls = config["classify"]
    return [
        dict(dataset=d, arch=arch_name(config), method=m, seed=s)
        for d in cls["datasets"]
        for m in cls["methods"]
        for s in cls["seeds"]
    ]


def cls_run_spec(wildcards):
    cfg = cls_run_config(config, wildcards.dataset, wildcards.method, int(wildcards.seed))
    return json.dumps(cfg.to_dict(), sort_keys=True)


def source_of(spec):
    """The config's ``sources`` entry a dataset or OOD set reads from, as JSON ({} if none)."""
    return json.dumps(config["sources"].get(spec.source_key, {}), sort_keys=True)


def cls_outputs(name, runs=None):
    return [f"{OUT}/runs/{CLS_RUN}/{name}".format(**r) for r in (cls_runs() if runs is None else runs)]


def ood_runs():
    return [r for r in cls_runs() if r["dataset"] in OOD_SETS_USED]


def classify_targets():
    if not cls_runs():
        return []
    tables = [f"{OUT}/tables/classify_{d}.md" for d in config["classify"]["datasets"]]
    ood = [f"{OUT}/tables/ood_{d}.md" for d in OOD_SETS_USED]
    return tables + ood + [f"{OUT}/figures/roc_{d}.png" for d in OOD_SETS_USED]


def gan_targets():
    datasets = config["data"]["datasets"]
    if not datasets:
        return []
    return (
        [f"{OUT}/tables/gan_{d}.md" for d in datasets]
        + [f"{OUT}/figures/fid_curve_{d}.png" for d in datasets]
        + [f"{OUT}/figures/samples_{d}.png" for d in datasets]
        + [f"{OUT}/tables/gan_summary.csv"]
    )


def final_targets():
    return gan_targets() + classify_targets()
