# Shared by every rule: config validation, paths, and the run matrix.
import json
import os
import shlex
import sys

from adaptivemix.config import schema_checked

config.update(schema_checked(config))  # a schema error stops here, before torch is imported

import baselines  # registers the baseline methods before the config is checked
from adaptivemix.classify.config import arch_name, cls_run_config, ood_sets_in_use
from adaptivemix.preflight import stop_if_missing
from adaptivemix.config import (
    check_registered_names,
    claims_file,
    dataset_resolution,
    gan_experiments,
    gan_run_config,
    gan_sweeps,
    metric_dataset,
)
from adaptivemix.metrics.backbones import BACKBONE_TRAINERS
from adaptivemix.registries import DATASETS, OOD_SETS
from adaptivemix.sweeps import method_of, sweep_runs as sweep_point_runs
from adaptivemix.variant_names import baseline_of

check_registered_names(config)  # the schema is checked above
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
    method="[A-Za-z0-9_+-]+(@[A-Za-z0-9_.=,+-]+)?",  # a sweep point's options after @
    sweep="[A-Za-z0-9_-]+",
    oodset="[A-Za-z0-9_-]+",
    seed="[0-9]+",
    split="train|val|test",


EXPERIMENTS = gan_experiments(config)
# Every GAN dataset once, in config order, and every method in the order tables show them.
GAN_DATASETS = list(dict.fromkeys(d for e in EXPERIMENTS for d in e["datasets"]))
GAN_METHODS = list(dict.fromkeys(m for e in EXPERIMENTS for m in e["methods"]))
SWEEPS = {sweep["name"]: (sweep, experiment) for sweep, experiment, _ in gan_sweeps(config)}
GAN_BASELINE = config["report"]["baseline"]["gan"]
# Limited data: full set -> its cuts (trained sets measured against it, evaluate.metric_data)
LIMITED_DATA = {}
for _cut, _full in ((d, metric_dataset(config, d)) for d in GAN_DATASETS):
    if _full != _cut and _full in GAN_DATASETS:
        LIMITED_DATA.setdefault(_full, []).append(_cut)


def benchmark_file(rule_name, job):
    """Snakemake's benchmark file of a job (``job``: its wildcard path, e.g. RUN)."""
    return f"{OUT}/benchmarks/{rule_name}/{job}.tsv"


def timing_file(rule_name, job):
    """Beside the benchmark file: the job's start-up and work seconds (``--timing``), which
    ``adaptivemix overhead`` adds up against the benchmark files."""
    return f"{OUT}/benchmarks/{rule_name}/{job}.timing.json"


def gan_runs():
    """Every (dataset, arch, method, seed) of the GAN matrix (gan.methods on each dataset;
    sweeps have their own, :func:`sweep_runs`)."""
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


def run_metrics(runs=None):
    return [f"{OUT}/runs/{RUN}/metrics.json".format(**r) for r in (gan_runs() if runs is None else runs)]


def sweep_runs(name):
    """A sweep's grid points and, on the same dataset and seeds, its baseline (trained for the
    sweep if the matrix does not have it)."""
    sweep, experiment = SWEEPS[name]
    runs = sweep_point_runs(sweep, experiment)
    baseline = baseline_of(sweep["method"], GAN_BASELINE)
    seeds = list(dict.fromkeys(r["seed"] for r in runs))
    return runs + [dict(runs[0], method=baseline, seed=s) for s in seeds]


def limited_data_runs():
    """The matrix's runs on every full set and cut of LIMITED_DATA."""
    sets = {d for full, cuts in LIMITED_DATA.items() for d in (full, *cuts)}
    return [r for r in gan_runs() if r["dataset"] in sets]


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


def study_targets():
    """The limited-data table (when a trained set is measured against another trained set)
    and each sweep's table and figure."""
    targets = [f"{OUT}/tables/limited_data.md"] if LIMITED_DATA else []
    for name in SWEEPS:
        targets += [f"{OUT}/tables/sweep_{name}.md", f"{OUT}/figures/sweep_{name}.png"]
    return targets


def gan_targets():
    datasets = GAN_DATASETS
    if not datasets:
        return []
    return (
        study_targets()
        + [f"{OUT}/tables/gan_{d}.md" for d in datasets]
        + [f"{OUT}/figures/fid_curve_{d}.png" for d in datasets]
        + [f"{OUT}/figures/samples_{d}.png" for d in datasets]
        + [f"{OUT}/tables/gan_summary.csv"]
    )


def final_targets():
    return gan_targets() + classify_targets()
