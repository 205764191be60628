# One job per (dataset, arch, method, seed): train, then measure the final metrics in the same
# process (the generator, the feature backbone and the reference are already loaded; one
# start-up per run instead of two). Checkpoints live under state/, outside the declared
# outputs, so a killed job resumes where it stopped when the DAG is rerun; a job whose
# evaluation settings changed resumes from the final checkpoint and only re-evaluates.
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
        metrics=f"{OUT}/runs/{RUN}/metrics.json",
        done=touch(f"{OUT}/runs/{RUN}/done"),
    params:
        backbone=BACKBONE,
        spec=run_spec,
        run_dir=lambda wildcards, output: os.path.dirname(output.summary),
        state_dir=f"{OUT}/state/{RUN}",
        n_gen=config["evaluate"]["n_gen"],
        pr_k=config["evaluate"]["pr_k"],
        timing=timing_file("train_gan", RUN),
    log:
        f"{OUT}/logs/train_gan/{RUN}.log",
    benchmark:
        benchmark_file("train_gan", RUN)
    threads: THREADS
    resources:
        mem_mb=max(config["resources"]["train_mem_mb"], config["resources"]["eval_mem_mb"]),
        runtime=config["resources"]["train_runtime_min"] + config["resources"]["eval_runtime_min"],
        gpu=config["resources"]["train_gpus"],
    shell:
        launcher(config["resources"]["train_gpus"]) + " --threads {threads} --timing {params.timing}"
        " train-gan --spec {params.spec:q}"
        " --dataset-file {input.data} --backbone " + BACKBONE + " --weights {input.weights}"
        " --reference {input.reference} --run-dir {params.run_dir}"
        " --state-dir {params.state_dir} --n-gen {params.n_gen} --pr-k {params.pr_k} > {log} 2>&1"
