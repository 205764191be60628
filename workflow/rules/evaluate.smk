rule evaluate_gan:
    input:
        generator=f"{OUT}/runs/{RUN}/G_ema.pt",
        summary=f"{OUT}/runs/{RUN}/train.json",
        d_features=f"{OUT}/runs/{RUN}/d_features.npz",
        weights=f"{OUT}/backbones/{BACKBONE}/weights.pt",
        reference=f"{OUT}/reference/{{dataset}}/{REF_SPLIT}/{BACKBONE}.npz",
    output:
        metrics=f"{OUT}/runs/{RUN}/metrics.json",
        done=touch(f"{OUT}/runs/{RUN}/done"),
    params:
        backbone=BACKBONE,
        run_dir=lambda wildcards, output: os.path.dirname(output.metrics),
        n_gen=config["evaluate"]["n_gen"],
        pr_k=config["evaluate"]["pr_k"],
        device=config["device"],
    log:
        f"{OUT}/logs/evaluate_gan/{RUN}.log",
    benchmark:
        f"{OUT}/benchmarks/evaluate_gan/{RUN}.tsv"
    threads: THREADS
    resources:
        mem_mb=config["resources"]["eval_mem_mb"],
        runtime=config["resources"]["eval_runtime_min"],
        gpu=config["resources"]["eval_gpus"],
    shell:
        CLI + " --threads {threads} evaluate-gan --run-dir {params.run_dir}"
        " --backbone {params.backbone} --weights {input.weights} --reference {input.reference}"
        " --n-gen {params.n_gen} --pr-k {params.pr_k} --device {params.device} > {log} 2>&1"
