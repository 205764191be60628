"""``adaptivemix <subcommand>``: the thin entry point every workflow rule calls.

adaptivemix check-config config/default.yaml      # validate, print the resolved config
adaptivemix prepare-data --dataset digits --resolution 16 --out data.pt --summary data.json
adaptivemix train-backbone --name digits-cnn --dataset-file data.pt --out w.pt --summary b.json
adaptivemix reference-stats --dataset-file data.pt --split train --backbone digits-cnn ...
adaptivemix install-perceptual --name lpips --files '{"weights": ..., "sha256": ...}' --out w.pt
adaptivemix train-gan --spec '{...}' --dataset-file data.pt ... --run-dir R --state-dir S \
    --n-gen 5000 --pr-k 3                         # then evaluates it in the same process
adaptivemix evaluate-gan --run-dir R --backbone digits-cnn --weights w.pt --reference ref.npz
adaptivemix aggregate --metrics R1/metrics.json R2/metrics.json --out-dir results/default
adaptivemix aggregate-sweep --metrics ... --sweep '{...}' --configured '{...}' --baseline vanilla \
    --out-dir D                                   # a gan.sweeps entry's table and figure
adaptivemix aggregate-limited-data --metrics ... --groups '{"digits": ["digits-25pct"]}' \
    --baseline vanilla --out-dir D                # each method's gain on a full set and its cut
adaptivemix train-classifier --spec '{...}' --dataset-file data.pt --run-dir R --state-dir S \
    --attacks '{"fgsm": {...}}' --ood-files ... --detectors '{...}'   # then evaluates it
adaptivemix prepare-ood-set --name letters --id-dataset-file data.pt --out letters.pt
adaptivemix evaluate-classifier --run-dir R --dataset-file data.pt --attacks '{"fgsm": {...}}' \
    --ood-files letters.pt ... --detectors '{"msp": {}, "odin": {"temperature": 1000}}'
adaptivemix aggregate-classify --metrics R1/metrics.json ... --ood R1/ood.json ... --out-dir D
adaptivemix claims --metrics R1/metrics.json ... --ood-tables T/ood_D.csv ... \
    --claims config/claims.csv --out-dir D
adaptivemix overhead results/default --cores 2     # where a finished run's wall time went
adaptivemix --timing job.json <command> ...         # any command: its start-up and work seconds
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
import time
from pathlib import Path

from adaptivemix.errors import ConfigError
from adaptivemix.run_lock import RunLockedError
from adaptivemix.timing import WorkTimer, process_started_at, write_timing

# Imports stay inside the commands: each process pays only for what its command uses
# (``--help``, ``aggregate*`` and ``claims`` never import torch; a
# training job imports no timm, torchvision or scikit-learn unless a plugin it runs does).


def _load_plugins() -> None:
    import adaptivemix.registries  # noqa: F401
    import baselines  # noqa: F401  (registers every baseline; the core never imports it)


def _rank_zero() -> bool:
    """Rank 0 of a torchrun launch, or a plain single process (read without torch)."""
    return int(os.environ.get("RANK", "0")) == 0


def _limit_threads(threads: int, with_torch: bool) -> None:
    # NumPy/SciPy's BLAS must obey the job's thread budget too: two BLAS threads per job
    # on a two-core machine running two jobs thrash (KID ran 20× slower).
    from threadpoolctl import threadpool_limits

    threadpool_limits(threads)
    if with_torch:
        import torch

        torch.set_num_threads(threads)
        torch.set_num_interop_threads(1)


def cmd_check_config(args) -> None:
    import yaml

    from adaptivemix.config import load_config_file, load_workflow_config

    config = load_workflow_config(load_config_file(args.config))
    if not args.quiet:
        print(yaml.safe_dump(config, sort_keys=False))


def cmd_prepare_data(args) -> None:
    from adaptivemix.data import DATASETS, save_prepared
    from adaptivemix.io import write_json

    source = json.loads(args.source)
    dataset = DATASETS.get(args.dataset, "data.datasets")(args.resolution, **source)
    save_prepared(dataset, args.out)
    write_json(args.summary, dataset.summary())


def cmd_train_backbone(args) -> None:
    from adaptivemix.data import load_prepared
    from adaptivemix.io import write_json
    from adaptivemix.metrics.backbones import BACKBONE_TRAINERS

    train = BACKBONE_TRAINERS.get(args.name, "backbone.name")
    summary = train(
        load_prepared(args.dataset_file), args.seed,
        steps=args.steps, batch_size=args.batch_size, lr=args.lr, out_path=args.out,
    )  # fmt: skip
    args.work.add("train", summary["train_seconds"])
    write_json(args.summary, summary)


def cmd_reference_stats(args) -> None:
    from adaptivemix.data import load_prepared
    from adaptivemix.metrics.backbones import BACKBONES
    from adaptivemix.metrics.fid import compute_reference_stats

    backbone = BACKBONES.get(args.backbone, "backbone.name")(args.weights, args.device)
    dataset = load_prepared(args.dataset_file)
    with args.work.phase("evaluate"):
        stats = compute_reference_stats(dataset, args.split, backbone, args.pr_k, args.xflip)
    stats.save(args.out)


def cmd_install_backbone(args) -> None:
    """Copy a pretrained backbone's weights into the workflow once their sha256 matches."""
    from adaptivemix.metrics.inception import install_weights

    install_weights(args.weights, args.sha256 or None, args.out)


def cmd_install_perceptual(args) -> None:
    """Copy a perceptual network's weights into the workflow once their sha256 matches."""
    from adaptivemix.metrics.perceptual import install_weights

    install_weights(args.name, json.loads(args.files), args.out)


def cmd_train_gan(args) -> None:
    """Train one GAN run (every rank under torchrun), then, with ``--n-gen``, measure its
    final metrics in the same process (rank 0). On SIGTERM (SLURM preemption) the state is
    checkpointed and the process exits with status 143 without writing the run's outputs;
    rerunning the same command resumes (e.g. ``sbatch --requeue``)."""
    from adaptivemix.config import GanRunConfig
    from adaptivemix.gan.distributed import PREEMPTED_EXIT_CODE, Preempted
    from adaptivemix.gan.run import run_training

    cfg = GanRunConfig.from_dict(json.loads(args.spec))
    try:
        summary = run_training(
            cfg, args.dataset_file, args.backbone, args.weights, args.reference,
            Path(args.run_dir), Path(args.state_dir), json.loads(args.perceptual_files),
        )  # fmt: skip
    except Preempted as err:
        print(f"adaptivemix: {err}", file=sys.stderr)
        raise SystemExit(PREEMPTED_EXIT_CODE) from None
    args.work.add("train", summary["session_seconds"])
    args.work.add("evaluate", summary["session_eval_seconds"])
    if args.n_gen and _rank_zero():
        args.device = cfg.device
        cmd_evaluate_gan(args)


def cmd_evaluate_gan(args) -> None:
    from adaptivemix.gan.run import run_evaluation

    with args.work.phase("evaluate"):
        run_evaluation(
            args.run_dir, args.backbone, args.weights, args.reference, args.n_gen, args.device,
            args.pr_k,
        )  # fmt: skip


def cmd_aggregate(args) -> None:
    from adaptivemix.report import aggregate_gan

    out = Path(args.out_dir)
    with args.work.phase("report"):
        aggregate_gan(
            args.metrics, out / "tables", out / "figures", args.method_order, args.baseline
        )


def cmd_aggregate_sweep(args) -> None:
    from adaptivemix.report.sweep import aggregate_sweep

    out = Path(args.out_dir)
    with args.work.phase("report"):
        aggregate_sweep(
            args.metrics, json.loads(args.sweep), json.loads(args.configured), args.baseline,
            out / "tables", out / "figures",
        )  # fmt: skip


def cmd_aggregate_limited_data(args) -> None:
    from adaptivemix.report.limited_data import aggregate_limited_data

    with args.work.phase("report"):
        aggregate_limited_data(
            args.metrics, json.loads(args.groups), args.baseline, Path(args.out_dir) / "tables",
            args.method_order or (),
        )  # fmt: skip


def cmd_claims(args) -> None:
    from adaptivemix.report.reproduction import reproduction_tables

    with args.work.phase("report"):
        tables = Path(args.out_dir) / "tables"
        reproduction_tables(args.metrics, args.claims, tables, args.ood_tables)


def cmd_train_classifier(args) -> None:
    """Train one classifier run, then, with ``--attacks``, evaluate it in the same process."""
    from adaptivemix.classify.config import ClsRunConfig
    from adaptivemix.classify.run import run_cls_training

    cfg = ClsRunConfig.from_dict(json.loads(args.spec))
    summary = run_cls_training(cfg, args.dataset_file, Path(args.run_dir), Path(args.state_dir))
    args.work.add("train", summary["session_seconds"])
    if args.attacks is not None:
        args.device = cfg.device
        cmd_evaluate_classifier(args)


def cmd_evaluate_classifier(args) -> None:
    """Clean/adversarial accuracy, then every detector on every OOD set (if any)."""
    from adaptivemix.classify.run import run_cls_evaluation
    from adaptivemix.ood.run import run_ood_evaluation

    attacks = json.loads(args.attacks)
    files = {Path(f).stem: Path(f) for f in args.ood_files}
    detectors = json.loads(args.detectors)
    with args.work.phase("evaluate"):
        run_cls_evaluation(args.run_dir, args.dataset_file, attacks, args.batch_size, args.device)
        run_ood_evaluation(
            args.run_dir, args.dataset_file, files, detectors, args.batch_size, args.device
        )


def cmd_prepare_ood_set(args) -> None:
    from adaptivemix.ood.prepare import prepare_ood_set

    prepare_ood_set(args.name, args.id_dataset_file, json.loads(args.source), args.out)


def cmd_aggregate_classify(args) -> None:
    from adaptivemix.report.classify import aggregate_classify

    out = Path(args.out_dir)
    with args.work.phase("report"):
        aggregate_classify(
            args.metrics, args.ood or [], out / "tables", out / "figures", args.method_order,
            args.baseline,
        )  # fmt: skip


def cmd_overhead(args) -> None:
    from adaptivemix.report.overhead import overhead_table

    table = overhead_table(Path(args.results), args.cores, args.wall)
    print(table)
    if args.out:
        from adaptivemix.io import atomic_write

        atomic_write(args.out, lambda f: f.write(table.encode()))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adaptivemix", description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    parser.add_argument(
        "--timing", default=None, help="write the job's start-up and work seconds to this JSON"
    )
    sub = parser.add_subparsers(dest="command", required=True)
    p = _command(sub, "check-config", cmd_check_config, "validate a config, print it resolved")
    p.add_argument("config")
    p.add_argument("--quiet", action="store_true", help="validate only, print nothing")
    p = _command(sub, "prepare-data", cmd_prepare_data, modules=("adaptivemix.data",))
    _args(p, "--dataset", "--out", "--summary", resolution=int)
    p.add_argument("--source", default="{}", help="JSON: the config's sources.<name>")
    p = _command(sub, "train-backbone", cmd_train_backbone, modules=("adaptivemix.data",))
    _args(p, "--name", "--dataset-file", "--out", "--summary", seed=int, steps=int,
          batch_size=int, lr=float)  # fmt: skip
    p = _command(sub, "reference-stats", cmd_reference_stats, modules=("adaptivemix.metrics.fid",))
    _args(p, "--dataset-file", "--split", "--backbone", "--weights", "--out", "--device")
    p.add_argument("--pr-k", type=int, default=0, help="also store the real k-NN radii")
    p.add_argument("--xflip", action="store_true", help="reals followed by their mirror images")
    p = _command(sub, "install-backbone", cmd_install_backbone)
    _args(p, "--name", "--weights", "--sha256", "--out")
    p = _command(sub, "install-perceptual", cmd_install_perceptual)
    _args(p, "--name", "--out")
    p.add_argument("--files", default="{}", help="JSON: the config's perceptual.<name>")
    p = _command(
        sub, "train-gan", cmd_train_gan, "train a GAN run (and evaluate it: --n-gen)", modules=GAN
    )
    _args(p, "--spec", "--dataset-file", "--backbone", "--weights", "--reference", "--run-dir",
          "--state-dir")  # fmt: skip
    files_help = 'JSON: perceptual distance -> {"weights": file, "sha256": hash}'
    p.add_argument("--perceptual-files", default="{}", help=files_help)
    _gan_evaluation_args(p, required=False)
    p = _command(
        sub, "evaluate-gan", cmd_evaluate_gan, "final metrics of a finished GAN run", modules=GAN
    )
    _args(p, "--run-dir", "--backbone", "--weights", "--reference", "--device")
    _gan_evaluation_args(p, required=True)
    _report_parsers(sub)
    _classify_parsers(sub)
    return parser


#: What the GAN and classifier commands import, before they start (see :func:`_command`).
GAN = ("adaptivemix.gan.run",)
CLASSIFIER = ("adaptivemix.classify.run", "adaptivemix.ood.run")


def _command(sub, name: str, func, help_text=None, plugins: bool = True, modules=()):
    """A subcommand; ``plugins=False``: it reads result files only (no registry, no torch).

    ``modules`` are imported before the command starts, so that a job's timing counts its
    imports as start-up, not as part of its work.
    """
    p = sub.add_parser(name, help=help_text)
    p.set_defaults(func=func, plugins=plugins, modules=modules)
    return p


def _gan_evaluation_args(p: argparse.ArgumentParser, required: bool) -> None:
    default = None if required else 0
    p.add_argument("--n-gen", type=int, required=required, default=default,
                   help="generated images of the final evaluation (0: train only)")  # fmt: skip
    p.add_argument("--pr-k", type=int, default=0, help="precision/recall neighbours; 0: off")


def _report_parsers(sub) -> None:
    p = _command(
        sub, "aggregate", cmd_aggregate, "GAN tables and figures", plugins=False,
        modules=("adaptivemix.report.aggregate",),
    )  # fmt: skip
    p.add_argument("--metrics", nargs="+", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--method-order", nargs="*", default=None)
    p.add_argument("--baseline", default="vanilla", help="every method is paired with it")
    p = _command(
        sub, "aggregate-sweep", cmd_aggregate_sweep, "a sweep's table and figure", plugins=False,
        modules=("adaptivemix.report.sweep",),
    )  # fmt: skip
    p.add_argument("--metrics", nargs="+", required=True)
    p.add_argument("--sweep", required=True, help="JSON: the gan.sweeps entry")
    p.add_argument("--configured", required=True, help="JSON: the method's configured options")
    _args(p, "--baseline", "--out-dir")
    p = _command(
        sub, "aggregate-limited-data", cmd_aggregate_limited_data, "the limited-data table",
        plugins=False, modules=("adaptivemix.report.limited_data",),
    )  # fmt: skip
    p.add_argument("--metrics", nargs="+", required=True)
    p.add_argument("--groups", required=True, help="JSON: full set -> its cuts")
    p.add_argument("--method-order", nargs="*", default=None)
    _args(p, "--baseline", "--out-dir")
    p = _command(
        sub, "claims", cmd_claims, "reproduced-vs-reported tables", plugins=False,
        modules=("adaptivemix.report.reproduction",),
    )  # fmt: skip
    p.add_argument("--metrics", nargs="*", default=[])
    p.add_argument("--ood-tables", nargs="*", default=[], help="aggregated ood_<dataset>.csv")
    _args(p, "--claims", "--out-dir")
    p = _command(
        sub, "aggregate-classify", cmd_aggregate_classify, "classification and OOD tables",
        plugins=False, modules=("adaptivemix.report.classify",),
    )  # fmt: skip
    p.add_argument("--metrics", nargs="+", required=True)
    p.add_argument("--ood", nargs="*", default=None)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--method-order", nargs="*", default=None)
    p.add_argument("--baseline", default="erm", help="every method is paired with it")
    p = _command(
        sub, "overhead", cmd_overhead, "where a finished profile's wall time went", plugins=False
    )
    p.add_argument("results", help="the profile's results folder, e.g. results/default")
    p.add_argument("--cores", type=int, required=True, help="the --cores Snakemake ran with")
    p.add_argument("--wall", type=float, default=None, help="measured wall seconds of the run")
    p.add_argument("--out", default=None, help="also write the table here (Markdown)")


def _classify_parsers(sub) -> None:
    p = _command(
        sub, "train-classifier", cmd_train_classifier, "train (and evaluate) a classifier",
        modules=CLASSIFIER,
    )  # fmt: skip
    _args(p, "--spec", "--dataset-file", "--run-dir", "--state-dir")
    _classifier_evaluation_args(p, required=False)
    p = _command(sub, "evaluate-classifier", cmd_evaluate_classifier, modules=CLASSIFIER)
    _args(p, "--run-dir", "--dataset-file", "--device")
    _classifier_evaluation_args(p, required=True)
    p = _command(sub, "prepare-ood-set", cmd_prepare_ood_set, modules=("adaptivemix.ood.prepare",))
    _args(p, "--name", "--id-dataset-file", "--out")
    p.add_argument("--source", default="{}", help="JSON: the config's sources.<key>")


def _classifier_evaluation_args(p: argparse.ArgumentParser, required: bool) -> None:
    help_text = "JSON: attack name -> options (given: evaluate after training)"
    p.add_argument("--attacks", required=required, default=None, help=help_text)
    p.add_argument("--batch-size", type=int, required=required, default=500)
    p.add_argument("--ood-files", nargs="*", default=[], help="one file per OOD set")
    p.add_argument("--detectors", default="{}", help="JSON: detector name -> options")


def _args(parser: argparse.ArgumentParser, *names: str, **typed: type) -> None:
    for name in names:
        optional = name == "--device"
        parser.add_argument(name, **({"default": "cpu"} if optional else {"required": True}))
    for name, kind in typed.items():
        parser.add_argument("--" + name.replace("_", "-"), type=kind, required=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    started_at = process_started_at() if args.timing else 0.0
    if args.threads:
        _limit_threads(args.threads, with_torch=args.plugins)
    if args.plugins:
        _load_plugins()
    for module in args.modules:
        importlib.import_module(module)
    args.work = WorkTimer()
    ready_at = time.time()
    try:
        args.func(args)
    except (ConfigError, RunLockedError) as err:
        print(f"adaptivemix: error: {err}", file=sys.stderr)
        return 2
    if args.timing and _rank_zero():  # one record per job under torchrun
        write_timing(args.timing, args.command, started_at, ready_at, args.work)
    return 0


if __name__ == "__main__":
    sys.exit(main())
