# The classification / adversarial-robustness track: one job per (dataset, arch, method,
# seed) trains (selection on the validation split; classify.selection: test is upstream's
# optimistic choice on the test split; either way the test accuracy at every evaluation is
# recorded for the selection_bias table), then in the same process measures
# clean/FGSM/PGD accuracy on the test split and, for in-distribution sets with OOD sets,
# every detector on every OOD set (ood.json has no rows for sets without OOD sets).
# Checkpoints live under state/ so a killed job resumes (after training: re-evaluates only).
rule prepare_cls_dataset:
    output:
        data=CLS_DATA,
        summary=f"{OUT}/data/classify/{{dataset}}/dataset.json",
    params:
        resolution=config["classify"]["resolution"],
        source=lambda wildcards: source_of(DATASETS.get(wildcards.dataset)),
        timing=timing_file("prepare_cls_dataset", "{dataset}"),
    log:
        f"{OUT}/logs/prepare_cls_dataset/{{dataset}}.log",
    benchmark:
        benchmark_file("prepare_cls_dataset", "{dataset}")
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        CLI + " --threads {threads} --timing {params.timing} prepare-data --dataset {wildcards.dataset}"
        " --resolution {params.resolution} --source {params.source:q}"
        " --out {output.data} --summary {output.summary} > {log} 2>&1"


rule train_classifier:
    input:
        data=CLS_DATA,
        ood=lambda wildcards: [
            f"{OUT}/data/ood/{wildcards.dataset}/{name}.pt"
            for name in OOD_SETS_USED.get(wildcards.dataset, [])
        ],
    output:
        model=f"{OUT}/runs/{CLS_RUN}/model.pt",
        log_jsonl=f"{OUT}/runs/{CLS_RUN}/log.jsonl",
        summary=f"{OUT}/runs/{CLS_RUN}/train.json",
        metrics=f"{OUT}/runs/{CLS_RUN}/metrics.json",
        ood=f"{OUT}/runs/{CLS_RUN}/ood.json",
        done=touch(f"{OUT}/runs/{CLS_RUN}/done"),
    params:
        spec=cls_run_spec,
        run_dir=lambda wildcards, output: os.path.dirname(output.summary),
        state_dir=f"{OUT}/state/{CLS_RUN}",
        attacks=json.dumps(config["classify"]["attacks"], sort_keys=True),
        detectors=json.dumps(
            {d: config["ood"]["detector_options"].get(d, {}) for d in config["ood"]["detectors"]},
            sort_keys=True,
        ),
        batch_size=config["classify"]["eval_batch_size"],
        timing=timing_file("train_classifier", CLS_RUN),
    log:
        f"{OUT}/logs/train_classifier/{CLS_RUN}.log",
    benchmark:
        benchmark_file("train_classifier", CLS_RUN)
    threads: THREADS
    resources:
        mem_mb=max(config["resources"]["train_mem_mb"], 4000),
        runtime=config["resources"]["train_runtime_min"] + 60,
        gpu=min(config["resources"]["train_gpus"], 1),  # one process per classifier run
    shell:
        CLI + " --threads {threads} --timing {params.timing} train-classifier"
        " --spec {params.spec:q} --dataset-file {input.data} --run-dir {params.run_dir}"
        " --state-dir {params.state_dir} --attacks {params.attacks:q}"
        " --ood-files {input.ood} --detectors {params.detectors:q}"
        " --batch-size {params.batch_size} > {log} 2>&1"


rule aggregate_classify:
    input:
        metrics=cls_outputs("metrics.json"),
        ood=cls_outputs("ood.json", ood_runs()),
    output:
        tables=[
            f"{OUT}/tables/classify_{d}.{ext}"
            for d in config["classify"]["datasets"]
            for ext in TABLE_FORMATS
        ],
        ood_tables=[
            f"{OUT}/tables/{name}_{d}.{ext}"
            for name in ("ood", "ood_paired")
            for d in OOD_SETS_USED
            for ext in TABLE_FORMATS
        ],
        paired=[f"{OUT}/tables/classify_paired.{ext}" for ext in TABLE_FORMATS],
        selection_bias=[f"{OUT}/tables/selection_bias.{ext}" for ext in TABLE_FORMATS],
        roc=[reported(f"{OUT}/figures/roc_{d}.png", "roc", "ood", d) for d in OOD_SETS_USED],
        roc_data=[f"{OUT}/figures/roc_{d}.{ext}" for d in OOD_SETS_USED for ext in ("pdf", "csv")],
        bars=reported(f"{OUT}/figures/bars_clean_acc.png", "bars", "classify"),
        bars_data=[f"{OUT}/figures/bars_clean_acc.{ext}" for ext in ("pdf", "csv")],
        summary=f"{OUT}/tables/classify_summary.csv",
        summary_text=[f"{OUT}/tables/classify_summary.{ext}" for ext in ("md", "tex")],
    params:
        out_dir=lambda wildcards, output: os.path.dirname(os.path.dirname(output.summary)),
        method_order=" ".join(config["classify"]["methods"]),
        baseline=config["report"]["baseline"]["classify"],
        timing=timing_file("aggregate_classify", "all"),
    log:
        f"{OUT}/logs/aggregate_classify.log",
    benchmark:
        benchmark_file("aggregate_classify", "all")
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        CLI + " --timing {params.timing} aggregate-classify --metrics {input.metrics} --ood {input.ood}"
        " --out-dir {params.out_dir} --method-order {params.method_order}"
        " --baseline {params.baseline} > {log} 2>&1"
