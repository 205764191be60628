# OOD test sets, built once per in-distribution set at its resolution and channel count.
# train_classifier (classify.smk) scores every detector on them for each run.
rule prepare_ood_set:
    input:
        data=CLS_DATA,
    output:
        f"{OUT}/data/ood/{{dataset}}/{{oodset}}.pt",
    params:
        source=lambda wildcards: source_of(OOD_SETS.get(wildcards.oodset)),
        timing=timing_file("prepare_ood_set", "{dataset}/{oodset}"),
    log:
        f"{OUT}/logs/prepare_ood_set/{{dataset}}/{{oodset}}.log",
    benchmark:
        benchmark_file("prepare_ood_set", "{dataset}/{oodset}")
    threads: 1
    resources:
        mem_mb=4000,
        runtime=30,
    shell:
        CLI + " --threads {threads} --timing {params.timing} prepare-ood-set --name {wildcards.oodset}"
        " --id-dataset-file {input.data} --source {params.source:q} --out {output} > {log} 2>&1"
