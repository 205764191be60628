rule prepare_dataset:
    output:
        data=f"{OUT}/data/{{dataset}}/dataset.pt",
        summary=f"{OUT}/data/{{dataset}}/dataset.json",
    params:
        resolution=lambda wildcards: dataset_resolution(config, wildcards.dataset),
        source=lambda wildcards: source_of(DATASETS.get(wildcards.dataset)),
        timing=timing_file("prepare_dataset", "{dataset}"),
    log:
        f"{OUT}/logs/prepare_dataset/{{dataset}}.log",
    benchmark:
        benchmark_file("prepare_dataset", "{dataset}")
    threads: 1
    resources:
        mem_mb=config["resources"]["data_mem_mb"],
        runtime=config["resources"]["data_runtime_min"],
    shell:
        CLI + " --threads {threads} --timing {params.timing} prepare-data --dataset {wildcards.dataset}"
        " --resolution {params.resolution} --source {params.source:q} --out {output.data} --summary {output.summary}"
        " > {log} 2>&1"
