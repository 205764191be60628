"""``adaptivemix <subcommand>``: the thin entry point every workflow rule calls.

adaptivemix check-config config/default.yaml      # validate, print the resolved config
adaptivemix prepare-data --dataset digits --resolution 16 --out data.pt --summary data.json
adaptivemix train-backbone --name digits-cnn --dataset-file data.pt --out w.pt --summary b.json
adaptivemix reference-stats --dataset-file data.pt --split train --backbone digits-cnn ...
adaptivemix train-gan --spec '{...}' --dataset-file data.pt ... --run-dir R --state-dir S
adaptivemix evaluate-gan --run-dir R --backbone digits-cnn --weights w.pt --reference ref.npz
adaptivemix aggregate --metrics R1/metrics.json R2/metrics.json --out-dir results/default
adaptivemix train-classifier --spec '{...}' --dataset-file data.pt --run-dir R --state-dir S
adaptivemix prepare-ood-set --name letters --id-dataset-file data.pt --out letters.pt
adaptivemix evaluate-classifier --run-dir R --dataset-file data.pt --attacks '{"fgsm": {...}}' \
    --ood-files letters.pt ... --detectors '{"msp": {}, "odin": {"temperature": 1000}}'
adaptivemix aggregate-classify --metrics R1/metrics.json ... --ood R1/ood.json ... --out-dir D
adaptivemix claims --metrics R1/metrics.json ... --claims config/claims.csv --out-dir D
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
import yaml
from threadpoolctl import threadpool_limits

from adaptivemix.errors import ConfigError


def _load_plugins() -> None:
    import adaptivemix.registries  # noqa: F401
    import baselines  # noqa: F401  (registers every baseline; the core never imports it)


def cmd_check_config(args) -> None:
    from adaptivemix.config import load_workflow_config

    config = load_workflow_config(yaml.safe_load(Path(args.config).read_text()) or {})
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
    write_json(args.summary, summary)


def cmd_reference_stats(args) -> None:
    from adaptivemix.data import load_prepared
    from adaptivemix.metrics.backbones import BACKBONES
    from adaptivemix.metrics.fid import compute_reference_stats

    backbone = BACKBONES.get(args.backbone, "backbone.name")(args.weights, args.device)
    compute_reference_stats(load_prepared(args.dataset_file), args.split, backbone).save(args.out)


def cmd_install_backbone(args) -> None:
    """Copy a pretrained backbone's weights into the workflow once their sha256 matches."""
    from adaptivemix.metrics.inception import install_weights

    install_weights(args.weights, args.sha256 or None, args.out)


def cmd_train_gan(args) -> None:
    """Train one GAN run (every rank under torchrun). On SIGTERM (SLURM preemption) the
    state is checkpointed and the process exits with status 143 without writing the run's
    outputs; rerunning the same command resumes (e.g. ``sbatch --requeue``)."""
    from adaptivemix.config import GanRunConfig
    from adaptivemix.gan.distributed import PREEMPTED_EXIT_CODE, Preempted
    from adaptivemix.gan.run import run_training

    cfg = GanRunConfig.from_dict(json.loads(args.spec))
    try:
        run_training(
            cfg, args.dataset_file, args.backbone, args.weights, args.reference,
            Path(args.run_dir), Path(args.state_dir),
        )  # fmt: skip
    except Preempted as err:
        print(f"adaptivemix: {err}", file=sys.stderr)
        raise SystemExit(PREEMPTED_EXIT_CODE) from None


def cmd_evaluate_gan(args) -> None:
    from adaptivemix.gan.run import run_evaluation

    run_evaluation(
        args.run_dir, args.backbone, args.weights, args.reference, args.n_gen, args.device,
        args.pr_k,
    )  # fmt: skip


def cmd_aggregate(args) -> None:
    from adaptivemix.report import aggregate_gan

    out = Path(args.out_dir)
    aggregate_gan(args.metrics, out / "tables", out / "figures", args.method_order, args.baseline)


def cmd_claims(args) -> None:
    from adaptivemix.report.reproduction import reproduction_tables

    reproduction_tables(args.metrics, args.claims, Path(args.out_dir) / "tables")


def cmd_train_classifier(args) -> None:
    from adaptivemix.classify.config import ClsRunConfig
    from adaptivemix.classify.run import run_cls_training

    cfg = ClsRunConfig.from_dict(json.loads(args.spec))
    run_cls_training(cfg, args.dataset_file, Path(args.run_dir), Path(args.state_dir))


def cmd_evaluate_classifier(args) -> None:
    """Clean/adversarial accuracy, then every detector on every OOD set (if any)."""
    from adaptivemix.classify.run import run_cls_evaluation
    from adaptivemix.ood.run import run_ood_evaluation

    attacks = json.loads(args.attacks)
    run_cls_evaluation(args.run_dir, args.dataset_file, attacks, args.batch_size, args.device)
    files = {Path(f).stem: Path(f) for f in args.ood_files}
    detectors = json.loads(args.detectors)
    run_ood_evaluation(
        args.run_dir, args.dataset_file, files, detectors, args.batch_size, args.device
    )


def cmd_prepare_ood_set(args) -> None:
    from adaptivemix.ood.run import prepare_ood_set

    prepare_ood_set(args.name, args.id_dataset_file, json.loads(args.source), args.out)


def cmd_aggregate_classify(args) -> None:
    from adaptivemix.report.classify import aggregate_classify

    out = Path(args.out_dir)
    aggregate_classify(
        args.metrics, args.ood or [], out / "tables", out / "figures", args.method_order,
        args.baseline,
    )  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adaptivemix", description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("check-config", help="validate a workflow config and print it resolved")
    p.add_argument("config")
    p.set_defaults(func=cmd_check_config)
    p = sub.add_parser("prepare-data")
    _args(p, "--dataset", "--out", "--summary", resolution=int)
    p.add_argument("--source", default="{}", help="JSON: the config's sources.<name>")
    p.set_defaults(func=cmd_prepare_data)
    p = sub.add_parser("train-backbone")
    _args(p, "--name", "--dataset-file", "--out", "--summary", seed=int, steps=int,
          batch_size=int, lr=float)  # fmt: skip
    p.set_defaults(func=cmd_train_backbone)
    p = sub.add_parser("reference-stats")
    _args(p, "--dataset-file", "--split", "--backbone", "--weights", "--out", "--device")
    p.set_defaults(func=cmd_reference_stats)
    p = sub.add_parser("install-backbone")
    _args(p, "--name", "--weights", "--sha256", "--out")
    p.set_defaults(func=cmd_install_backbone)
    p = sub.add_parser("train-gan")
    _args(p, "--spec", "--dataset-file", "--backbone", "--weights", "--reference", "--run-dir",
          "--state-dir")  # fmt: skip
    p.set_defaults(func=cmd_train_gan)
    p = sub.add_parser("evaluate-gan")
    _args(p, "--run-dir", "--backbone", "--weights", "--reference", "--device", n_gen=int)
    p.add_argument("--pr-k", type=int, default=0, help="precision/recall neighbours; 0: off")
    p.set_defaults(func=cmd_evaluate_gan)
    p = sub.add_parser("aggregate")
    p.add_argument("--metrics", nargs="+", required=True)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--method-order", nargs="*", default=None)
    p.add_argument("--baseline", default="vanilla", help="every method is paired with it")
    p.set_defaults(func=cmd_aggregate)
    p = sub.add_parser("claims", help="reproduced-vs-reported tables from the claims registry")
    p.add_argument("--metrics", nargs="*", default=[])
    _args(p, "--claims", "--out-dir")
    p.set_defaults(func=cmd_claims)
    _classify_parsers(sub)
    return parser


def _classify_parsers(sub) -> None:
    p = sub.add_parser("train-classifier")
    _args(p, "--spec", "--dataset-file", "--run-dir", "--state-dir")
    p.set_defaults(func=cmd_train_classifier)
    p = sub.add_parser("evaluate-classifier")
    _args(p, "--run-dir", "--dataset-file", "--attacks", "--device", batch_size=int)
    p.add_argument("--ood-files", nargs="*", default=[], help="one file per OOD set")
    p.add_argument("--detectors", default="{}", help="JSON: detector name -> options")
    p.set_defaults(func=cmd_evaluate_classifier)
    p = sub.add_parser("prepare-ood-set")
    _args(p, "--name", "--id-dataset-file", "--out")
    p.add_argument("--source", default="{}", help="JSON: the config's sources.<key>")
    p.set_defaults(func=cmd_prepare_ood_set)
    p = sub.add_parser("aggregate-classify")
    p.add_argument("--metrics", nargs="+", required=True)
    p.add_argument("--ood", nargs="*", default=None)
    p.add_argument("--out-dir", required=True)
    p.add_argument("--method-order", nargs="*", default=None)
    p.add_argument("--baseline", default="erm", help="every method is paired with it")
    p.set_defaults(func=cmd_aggregate_classify)


def _args(parser: argparse.ArgumentParser, *names: str, **typed: type) -> None:
    for name in names:
        optional = name == "--device"
        parser.add_argument(name, **({"default": "cpu"} if optional else {"required": True}))
    for name, kind in typed.items():
        parser.add_argument("--" + name.replace("_", "-"), type=kind, required=True)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.threads:
        # NumPy/SciPy's BLAS must obey the job's thread budget too: two BLAS threads per job
        # on a two-core machine running two jobs thrash (KID ran 20× slower).
        threadpool_limits(args.threads)
        torch.set_num_threads(args.threads)
        torch.set_num_interop_threads(1)
    _load_plugins()
    try:
        args.func(args)
    except ConfigError as err:
        print(f"adaptivemix: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
