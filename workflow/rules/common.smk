# Shared by every rule: config validation, paths, and the run matrix.
import json
import os
import shlex
import sys

import baselines  # registers the baseline methods before the config is checked
from adaptivemix.config import gan_run_config, load_workflow_config

config.update(load_workflow_config(config))

OUT = f"results/{config['profile']}"
RUN = "gan/{dataset}/{arch}/{method}/seed{seed}"
BACKBONE = config["backbone"]["name"]
REF_SPLIT = config["evaluate"]["reference_split"]
THREADS = config["threads_per_job"]
# The interpreter running Snakemake runs every job too: no reliance on PATH.
CLI = f"{shlex.quote(sys.executable)} -m adaptivemix"


wildcard_constraints:
    dataset="[A-Za-z0-9_-]+",
    arch="[A-Za-z0-9_-]+",
    method="[A-Za-z0-9_+-]+",
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


def final_targets():
    datasets = config["data"]["datasets"]
    return (
        [f"{OUT}/tables/gan_{d}.md" for d in datasets]
        + [f"{OUT}/figures/fid_curve_{d}.png" for d in datasets]
        + [f"{OUT}/figures/samples_{d}.png" for d in datasets]
        + [f"{OUT}/tables/gan_summary.csv"]
    )
