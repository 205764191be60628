rule prepare_dataset:
    output:
        data=f"{OUT}/data/{{dataset}}/dataset.pt",
        summary=f"{OUT}/data/{{dataset}}/dataset.json",
    params:
        resolution=config["data"]["resolution"],
    log:
        f"{OUT}/logs/prepare_dataset/{{dataset}}.log",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        CLI + " --threads {threads} prepare-data --dataset {wildcards.dataset}"
        " --resolution {params.resolution} --out {output.data} --summary {output.summary}"
        " > {log} 2>&1"
