rule aggregate_gan:
    input:
        metrics=run_metrics(),
    output:
        tables=[f"{OUT}/tables/gan_{d}.{ext}" for d in GAN_DATASETS for ext in ("csv", "md")],
        summary=f"{OUT}/tables/gan_summary.csv",
        curves=[f"{OUT}/figures/fid_curve_{d}.png" for d in GAN_DATASETS],
        curve_data=[f"{OUT}/figures/fid_curve_{d}.csv" for d in GAN_DATASETS],
        samples=[f"{OUT}/figures/samples_{d}.png" for d in GAN_DATASETS],
    params:
        out_dir=lambda wildcards, output: os.path.dirname(os.path.dirname(output.summary)),
        method_order=" ".join(GAN_METHODS),
    log:
        f"{OUT}/logs/aggregate_gan.log",
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    shell:
        CLI + " aggregate --metrics {input.metrics} --out-dir {params.out_dir}"
        " --method-order {params.method_order} > {log} 2>&1"
