# What `snakemake --report results/<profile>/report.html --configfile config/<profile>.yaml`
# shows: every table and figure, grouped by task (category) and dataset (subcategory), each with
# a caption from workflow/report/<caption>.rst. Mark an output with `reported(...)`; list a
# table (its .md/.csv written by adaptivemix.report.writers) in `report_tables()` so that
# `report_tables` renders it as an HTML page the report can show.

REPORT_CATEGORIES = {
    "gan": "Generation (GAN)",
    "classify": "Classification & robustness",
    "ood": "Out-of-distribution detection",
    "claims": "Claims: reproduced vs reported",
    "shrinkage": "Feature-space shrinkage",
}
# caption (workflow/report/<name>.rst) -> the short title listed in the report
REPORT_CAPTIONS = {
    "gan_table": "Table: FID, KID and modes",
    "gan_layout": "Table: generation results in the paper's layout",
    "fid_curve": "Figure: FID over training",
    "fid_trend": "Table: where each FID curve ends (falling, flat or turned)",
    "limited_data": "Table: each method's gain on a full set and on its cut",
    "sweep": "Figure: a method's options over a grid (ablation)",
    "sweep_table": "Table: a method's options over a grid (ablation)",
    "samples": "Figure: generated samples",
    "classify_table": "Table: clean and adversarial accuracy",
    "ood_table": "Table: OOD detection",
    "roc": "Figure: ROC curves",
    "paired": "Table: paired differences to the baseline",
    "selection_bias": "Table: selection bias (test accuracy at the validation choice vs best)",
    "bars": "Figure: methods compared",
    "claims_reproduced": "Table: reproduced vs reported",
    "claims_not_run": "Table: claims not run",
    "shrinkage_curve": "Figure: feature-space shrinkage",
    "shrinkage_projection": "Figure: feature projection",
}
REPORT_DIR = os.path.join(workflow.basedir, "workflow", "report")


def reported(path, caption, category, subcategory=None, title=None):
    """`path` marked for the HTML report under REPORT_CATEGORIES[category] / `subcategory`.

    `caption` names workflow/report/<caption>.rst (a key of REPORT_CAPTIONS); `title` (default:
    the caption's title) is the label listed in the report. `subcategory` and `title` may hold
    wildcards such as "{dataset}".
    """
    if category not in REPORT_CATEGORIES:
        raise ValueError(
            f"report category {category!r} of {path!r} is not one of {sorted(REPORT_CATEGORIES)}"
        )
    if caption not in REPORT_CAPTIONS:
        raise ValueError(
            f"report caption {caption!r} of {path!r} is not one of {sorted(REPORT_CAPTIONS)}"
        )
    caption_file = os.path.join(REPORT_DIR, f"{caption}.rst")
    if not os.path.exists(caption_file):
        raise ValueError(f"report caption {caption!r}: {caption_file} does not exist")
    return report(
        path,
        caption=caption_file,
        category=REPORT_CATEGORIES[category],
        subcategory=subcategory or "all datasets",
        labels={"result": title or REPORT_CAPTIONS[caption]},
    )


TABLE_FORMATS = ("csv", "md", "tex")


def report_tables():
    """Every table the report shows, as (stem under tables/, caption, category, subcategory)."""
    tables = []
    if GAN_DATASETS:
        tables += [("generation", "gan_layout", "gan", None), ("gan_paired", "paired", "gan", None)]
        tables += [("fid_trend", "fid_trend", "gan", None)]
        tables += [("limited_data", "limited_data", "gan", None)] if LIMITED_DATA else []
        tables += [(f"sweep_{name}", "sweep_table", "gan", name) for name in SWEEPS]
        tables += [(f"gan_{d}", "gan_table", "gan", d) for d in GAN_DATASETS]
    if cls_runs():
        tables += [(f"classify_{d}", "classify_table", "classify", d) for d in config["classify"]["datasets"]]
        tables += [("classify_paired", "paired", "classify", None)]
        tables += [("selection_bias", "selection_bias", "classify", None)]
        tables += [(f"ood_{d}", "ood_table", "ood", d) for d in OOD_SETS_USED]
        tables += [(f"ood_paired_{d}", "paired", "ood", d) for d in OOD_SETS_USED]
    tables += [("claims_reproduced", "claims_reproduced", "claims", None)]
    tables += [("claims_not_run", "claims_not_run", "claims", None)]
    return tables


def report_targets():
    """The HTML pages of report_tables(): `rule all` asks for them so a report can be made."""
    return [f"{OUT}/tables/{stem}.html" for stem, *_ in report_tables()]


def figure_outputs(prefix, caption, category, datasets):
    """A reported PNG per dataset, and its PDF and plotted-values CSV beside it."""
    pngs = [reported(f"{OUT}/figures/{prefix}_{d}.png", caption, category, d) for d in datasets]
    rest = [f"{OUT}/figures/{prefix}_{d}.{ext}" for d in datasets for ext in ("pdf", "csv")]
    return pngs, rest


# Per-dataset GAN figures: file prefix -> (reported PNGs, their PDFs and CSVs).
GAN_FIGURES = {
    prefix: figure_outputs(prefix, prefix, category, GAN_DATASETS)
    for prefix, category in (
        ("fid_curve", "gan"),
        ("shrinkage_curve", "shrinkage"),
        ("shrinkage_projection", "shrinkage"),
    )
}


rule aggregate_gan:
    input:
        metrics=run_metrics(),
    output:
        tables=[f"{OUT}/tables/gan_{d}.{ext}" for d in GAN_DATASETS for ext in TABLE_FORMATS],
        layouts=[
            f"{OUT}/tables/{name}.{ext}"
            for name in ("generation", "gan_paired", "gan_summary", "fid_trend")
            for ext in TABLE_FORMATS
        ],
        curves=GAN_FIGURES["fid_curve"][0],
        curve_data=GAN_FIGURES["fid_curve"][1],
        spread=GAN_FIGURES["shrinkage_curve"][0],
        spread_data=GAN_FIGURES["shrinkage_curve"][1],
        projection=GAN_FIGURES["shrinkage_projection"][0],
        projection_data=GAN_FIGURES["shrinkage_projection"][1],
        samples=[reported(f"{OUT}/figures/samples_{d}.png", "samples", "gan", d) for d in GAN_DATASETS],
        bars=reported(f"{OUT}/figures/bars_fid.png", "bars", "gan"),
        bars_data=[f"{OUT}/figures/bars_fid.{ext}" for ext in ("pdf", "csv")],
    params:
        out_dir=OUT,
        method_order=" ".join(GAN_METHODS),
        baseline=config["report"]["baseline"]["gan"],
        timing=timing_file("aggregate_gan", "all"),
    log:
        f"{OUT}/logs/aggregate_gan.log",
    benchmark:
        benchmark_file("aggregate_gan", "all")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        CLI + " --timing {params.timing} aggregate --metrics {input.metrics} --out-dir {params.out_dir}"
        " --method-order {params.method_order} --baseline {params.baseline} > {log} 2>&1"


# Each method's gain on a full set and on its cut (evaluate.metric_data maps the cut to the full).
rule aggregate_limited_data:
    input:
        metrics=run_metrics(limited_data_runs()),
    output:
        [f"{OUT}/tables/limited_data.{ext}" for ext in TABLE_FORMATS],
    params:
        out_dir=OUT,
        groups=json.dumps(LIMITED_DATA),
        method_order=" ".join(GAN_METHODS),
        timing=timing_file("aggregate_limited_data", "all"),
    log:
        f"{OUT}/logs/aggregate_limited_data.log",
    benchmark:
        benchmark_file("aggregate_limited_data", "all")
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        CLI + " --timing {params.timing} aggregate-limited-data --metrics {input.metrics}"
        " --groups {params.groups:q} --method-order {params.method_order}"
        " --baseline " + GAN_BASELINE + " --out-dir {params.out_dir} > {log} 2>&1"


# One gan.sweeps entry: its grid points (and baseline) into a table and a figure.
rule aggregate_sweep:
    input:
        metrics=lambda wildcards: run_metrics(sweep_runs(wildcards.sweep)),
    output:
        tables=[f"{OUT}/tables/sweep_{{sweep}}.{ext}" for ext in TABLE_FORMATS],
        figure=reported(f"{OUT}/figures/sweep_{{sweep}}.png", "sweep", "gan", "{sweep}"),
        figure_data=[f"{OUT}/figures/sweep_{{sweep}}.{ext}" for ext in ("pdf", "csv")],
    params:
        out_dir=OUT,
        sweep=lambda wildcards: json.dumps(SWEEPS[wildcards.sweep][0]),  # grid keys in config order
        configured=lambda wildcards: json.dumps(sweep_configured(wildcards.sweep), sort_keys=True),
        baseline=lambda wildcards: baseline_of(SWEEPS[wildcards.sweep][0]["method"], GAN_BASELINE),
        timing=timing_file("aggregate_sweep", "{sweep}"),
    log:
        f"{OUT}/logs/aggregate_sweep/{{sweep}}.log",
    benchmark:
        benchmark_file("aggregate_sweep", "{sweep}")
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    shell:
        CLI + " --timing {params.timing} aggregate-sweep --metrics {input.metrics}"
        " --sweep {params.sweep:q} --configured {params.configured:q}"
        " --baseline {params.baseline:q} --out-dir {params.out_dir} > {log} 2>&1"


def sweep_configured(name):
    """The options the sweep's method has in its experiment's gan.method_options."""
    sweep, experiment = SWEEPS[name]
    return experiment["method_options"].get(method_of(sweep["method"]), {})


# Reproduced vs reported: every claim of the registry against every run of the profile.
rule claims:
    input:
        metrics=run_metrics() + cls_outputs("metrics.json"),
        ood_tables=[f"{OUT}/tables/ood_{d}.csv" for d in OOD_SETS_USED] if cls_runs() else [],
        claims=str(claims_file(config)),
    output:
        [f"{OUT}/tables/{name}.{ext}" for name in ("claims_reproduced", "claims_not_run") for ext in TABLE_FORMATS],
    params:
        out_dir=OUT,
        timing=timing_file("claims", "all"),
    log:
        f"{OUT}/logs/claims.log",
    benchmark:
        benchmark_file("claims", "all")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        CLI + " --timing {params.timing} claims --metrics {input.metrics}"
        " --ood-tables {input.ood_tables} --claims {input.claims}"
        " --out-dir {params.out_dir} > {log} 2>&1"


# One job renders every listed table (cheap): the report shows HTML, not Markdown or CSV.
rule report_tables:
    input:
        md=[f"{OUT}/tables/{stem}.md" for stem, *_ in report_tables()],
        csv=[f"{OUT}/tables/{stem}.csv" for stem, *_ in report_tables()],
    output:
        [reported(f"{OUT}/tables/{stem}.html", *rest) for stem, *rest in report_tables()],
    log:
        f"{OUT}/logs/report_tables.log",
    benchmark:
        benchmark_file("report_tables", "all")
    threads: 1
    resources:
        mem_mb=1000,
        runtime=5,
    script:
        "../report/table_page.py"
