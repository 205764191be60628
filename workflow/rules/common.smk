# Shared by every rule: config validation, paths, and the run matrix.
import json
import os
import shlex
import sys

import baselines  # registers the baseline methods before the config is checked
from adaptivemix.classify.config import arch_name, cls_run_config, ood_sets_in_use
from adaptivemix.preflight import stop_if_missing
from adaptivemix.config import (
    claims_file,
    dataset_resolution,
    gan_experiments,
    gan_run_config,
    load_workflow_config,
)
from adaptivemix.metrics.backbones import BACKBONE_TRAINERS
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


EXPERIMENTS = gan_experiments(config)
# Every GAN dataset once, in config order, and every method in the order tables show them.
GAN_DATASETS = list(dict.fromkeys(d for e in EXPERIMENTS for d in e["datasets"]))
GAN_METHODS = list(dict.fromkeys(m for e in EXPERIMENTS for m in e["methods"]))


def benchmark_file(rule_name, job):
    """Snakemake's benchmark file of a job (``job``: its wildcard path, e.g. RUN)."""
    return f"{OUT}/benchmarks/{rule_name}/{job}.tsv"


def timing_file(rule_name, job):
    """Beside the benchmark file: the job's start-up and work seconds (``--timing``), which
    ``adaptivemix overhead`` adds up against the benchmark files."""
    return f"{OUT}/benchmarks/{rule_name}/{job}.timing.json"


def gan_runs():
    """Every (dataset, arch, method, seed) of the config: the whole GAN matrix."""
    return [
        dict(dataset=d, arch=e["arch"], method=m, seed=s)
        for e in EXPERIMENTS
        for d in e["datasets"]
        for m in e["methods"]
        for s in e["seeds"]
    ]


def run_spec(wildcards):
    """The run's own slice of the config, as JSON: only it decides whether the run reruns."""
    cfg = gan_run_config(
        config, wildcards.dataset, wildcards.arch, wildcards.method, int(wildcards.seed)
    )
    return json.dumps(cfg.to_dict(), sort_keys=True)


def launcher(gpus):
    """How a training job starts: plainly, or one process per GPU through torchrun (DDP)."""
    if gpus <= 1:
        return CLI
    return (
        f"{shlex.quote(sys.executable)} -m torch.distributed.run --standalone"
        f" --nproc_per_node {gpus} -m adaptivemix"
    )


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
    datasets = GAN_DATASETS
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
