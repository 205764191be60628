from adaptivemix.config import parse_reference_reals

# The FID backbone: trained by the workflow (the embedded profile's digits classifier, fixed
# seed) or pretrained (Inception): a verified copy of the configured weights file.
if BACKBONE in BACKBONE_TRAINERS:

    rule train_backbone:
        input:
            data=f"{OUT}/data/{config['backbone']['dataset']}/dataset.pt",
        output:
            weights=f"{OUT}/backbones/{{backbone}}/weights.pt",
            summary=f"{OUT}/backbones/{{backbone}}/summary.json",
        params:
            seed=config["backbone"]["seed"],
            steps=config["backbone"]["steps"],
            batch_size=config["backbone"]["batch_size"],
            lr=config["backbone"]["lr"],
            timing=timing_file("train_backbone", "{backbone}"),
        log:
            f"{OUT}/logs/train_backbone/{{backbone}}.log",
        benchmark:
            benchmark_file("train_backbone", "{backbone}")
        threads: THREADS
        resources:
            mem_mb=2000,
            runtime=30,
        shell:
            CLI + " --threads {threads} --timing {params.timing} train-backbone --name {wildcards.backbone}"
            " --dataset-file {input.data} --seed {params.seed} --steps {params.steps}"
            " --batch-size {params.batch_size} --lr {params.lr}"
            " --out {output.weights} --summary {output.summary} > {log} 2>&1"

else:

    rule install_backbone:
        output:
            weights=f"{OUT}/backbones/{{backbone}}/weights.pt",
            sha256=f"{OUT}/backbones/{{backbone}}/weights.pt.sha256",
        params:
            source=config["backbone"].get("weights", ""),
            sha256=config["backbone"].get("sha256", ""),
            timing=timing_file("install_backbone", "{backbone}"),
        log:
            f"{OUT}/logs/install_backbone/{{backbone}}.log",
        benchmark:
            benchmark_file("install_backbone", "{backbone}")
        threads: 1
        resources:
            mem_mb=1000,
            runtime=10,
        shell:
            CLI + " --timing {params.timing} install-backbone --name {wildcards.backbone} --weights {params.source:q}"
            " --sha256 {params.sha256:q} --out {output.weights} > {log} 2>&1"


# Real statistics of a dataset's split; `reals` is the split, + "-xflip" for the split
# followed by its mirror images (stylegan2-ada's --mirror=1 dataset, for runs with gan.xflip).
rule reference_stats:
    input:
        data=f"{OUT}/data/{{dataset}}/dataset.pt",
        weights=f"{OUT}/backbones/{{backbone}}/weights.pt",
    output:
        f"{OUT}/reference/{{dataset}}/{{reals}}/{{backbone}}.npz",
    wildcard_constraints:
        reals="(train|val|test)(-xflip)?",
    params:
        split=lambda wildcards: parse_reference_reals(wildcards.reals)[0],
        xflip=lambda wildcards: " --xflip" if parse_reference_reals(wildcards.reals)[1] else "",
        pr_k=config["evaluate"]["pr_k"],
        timing=timing_file("reference_stats", "{dataset}/{reals}/{backbone}"),
    log:
        f"{OUT}/logs/reference_stats/{{dataset}}/{{reals}}/{{backbone}}.log",
    benchmark:
        benchmark_file("reference_stats", "{dataset}/{reals}/{backbone}")
    threads: THREADS
    resources:
        mem_mb=config["resources"]["eval_mem_mb"],
        runtime=config["resources"]["eval_runtime_min"],
        gpu=min(config["resources"]["eval_gpus"], 1),
    shell:
        CLI + " --threads {threads} --timing {params.timing} reference-stats --dataset-file {input.data}"
        " --split {params.split}{params.xflip} --backbone {wildcards.backbone} --weights {input.weights}"
        " --pr-k {params.pr_k} --out {output} > {log} 2>&1"


# The weights of a training-time perceptual network (GLeaD's LPIPS-AlexNet): a verified copy
# of the configured file (perceptual.<distance>), made only when a run's method uses it.
rule install_perceptual:
    output:
        f"{OUT}/perceptual/{{distance}}/weights.pt",
    params:
        files=lambda wildcards: json.dumps(config["perceptual"].get(wildcards.distance, {})),
        timing=timing_file("install_perceptual", "{distance}"),
    log:
        f"{OUT}/logs/install_perceptual/{{distance}}.log",
    benchmark:
        benchmark_file("install_perceptual", "{distance}")
    wildcard_constraints:
        distance="[A-Za-z0-9_-]+",
    threads: 1
    resources:
        mem_mb=1000,
        runtime=10,
    shell:
        CLI + " --timing {params.timing} install-perceptual --name {wildcards.distance}"
        " --files {params.files:q} --out {output} > {log} 2>&1"
