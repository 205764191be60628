# AdaptiveMix reproducibility harness: the table of contents of the workflow.
#   snakemake --cores all                                  (config/default.yaml)
#   snakemake --cores all --configfile config/smoke.yaml
# The config is validated (and its defaults filled) before any job is scheduled.
# Snakemake reads --configfile itself, before this file runs (`make reproduce` runs
# `adaptivemix check-config` first for a message naming file and line). Without one, the
# default profile: config/default.yaml, read here first for such a message. With one, that
# file alone: Snakemake would otherwise merge it into config/default.yaml key by key, and the
# default profile's sweeps, cuts and method options would leak into every other profile.
import os

from adaptivemix.config import load_config_file

if not workflow.overwrite_configfiles:
    if os.path.exists("config/default.yaml"):
        load_config_file("config/default.yaml")

    configfile: "config/default.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/report.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/backbones.smk"
include: "workflow/rules/gan.smk"
include: "workflow/rules/classify.smk"
include: "workflow/rules/ood.smk"


rule all:
    input:
        final_targets(),
        report_targets(),
    default_target: True


# One track alone: `snakemake --cores all gan` or `snakemake --cores all classify`.
rule gan:
    input:
        gan_targets(),


rule classify:
    input:
        classify_targets(),


# Asked to run (not on a dry run), stop before any job if a local dataset or weights file
# is missing or broken, listing them all, or if device: cuda has no GPU to run on here
# (only when the jobs run locally: a cluster executor's jobs run on its GPU nodes).
onstart:
    stop_if_missing(config, OUT, local_jobs=workflow.local_exec)
