# One job per (dataset, arch, method, seed): train, then measure the final metrics in the same
# process (the generator, the feature backbone and the reference are already loaded; one
# start-up per run instead of two). Checkpoints live under state/, outside the declared
# outputs, so a killed job resumes where it stopped when the DAG is rerun; a job whose
# evaluation settings changed resumes from the final checkpoint and only re-evaluates.
from adaptivemix.config import run_reference
from adaptivemix.metrics.perceptual import weights_of_variant


def run_reference_file(wildcards):
    """The real statistics a run is measured against: its metric dataset's
    (evaluate.metric_data), of mirrored reals too when it trains with x-flips (--mirror)."""
    ref = run_reference(config, wildcards.dataset, wildcards.arch)
    return f"{OUT}/reference/{ref['dataset']}/{ref['reals']}/{BACKBONE}.npz"


def perceptual_copies(wildcards):
    """Distance name -> the workflow's verified copy of its weights file, for each perceptual
    distance the run's method measures with that reads one (e.g. GLeaD with LPIPS)."""
    cfg = gan_run_config(
        config, wildcards.dataset, wildcards.arch, wildcards.method, int(wildcards.seed)
    )
    names = weights_of_variant(cfg.method, cfg.method_options)
    return {name: f"{OUT}/perceptual/{name}/weights.pt" for name in names}


def perceptual_files(wildcards):
    """train-gan's --perceptual-files: each copy with the sha256 it was verified against."""
    files = {
        name: {"weights": path, "sha256": config["perceptual"][name].get("sha256")}
        for name, path in perceptual_copies(wildcards).items()
    }
    return json.dumps(files, sort_keys=True)


rule train_gan:
    input:
        data=f"{OUT}/data/{{dataset}}/dataset.pt",
        weights=f"{OUT}/backbones/{BACKBONE}/weights.pt",
        perceptual=lambda wildcards: list(perceptual_copies(wildcards).values()),
        reference=run_reference_file,
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
        perceptual=perceptual_files,
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
        " --state-dir {params.state_dir} --perceptual-files {params.perceptual:q}"
        " --n-gen {params.n_gen} --pr-k {params.pr_k} > {log} 2>&1"
