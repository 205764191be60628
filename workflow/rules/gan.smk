# One job per (dataset, arch, method, seed). Checkpoints live under state/, outside the
# declared outputs, so a killed job resumes where it stopped when the DAG is rerun.
rule train_gan:
    input:
        data=f"{OUT}/data/{{dataset}}/dataset.pt",
        weights=f"{OUT}/backbones/{BACKBONE}/weights.pt",
        reference=f"{OUT}/reference/{{dataset}}/{REF_SPLIT}/{BACKBONE}.npz",
    output:
        generator=f"{OUT}/runs/{RUN}/G_ema.pt",
        samples=f"{OUT}/runs/{RUN}/samples.png",
        log_jsonl=f"{OUT}/runs/{RUN}/log.jsonl",
        summary=f"{OUT}/runs/{RUN}/train.json",
        d_features=f"{OUT}/runs/{RUN}/d_features.npz",
    params:
        backbone=BACKBONE,
        spec=run_spec,
        run_dir=lambda wildcards, output: os.path.dirname(output.summary),
        state_dir=f"{OUT}/state/{RUN}",
    log:
        f"{OUT}/logs/train_gan/{RUN}.log",
    benchmark:
        f"{OUT}/benchmarks/train_gan/{RUN}.tsv"
    threads: THREADS
    resources:
        mem_mb=config["resources"]["train_mem_mb"],
        runtime=config["resources"]["train_runtime_min"],
        gpu=config["resources"]["train_gpus"],
    shell:
        launcher(config["resources"]["train_gpus"]) + " --threads {threads} train-gan --spec {params.spec:q}"
        " --dataset-file {input.data} --backbone " + BACKBONE + " --weights {input.weights}"
        " --reference {input.reference} --run-dir {params.run_dir}"
        " --state-dir {params.state_dir} > {log} 2>&1"
