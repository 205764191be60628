"""The start-up check of a real run: every missing local dataset and weights file at once.

Config validation only checks names and values, so ``snakemake -n`` builds the whole DAG of
a profile whose data is not present. When asked to run, the workflow calls
:func:`stop_if_missing` before any job starts: it lists every local copy the pending jobs
would read that is missing or incomplete (datasets, OOD sets, pretrained backbone weights,
perceptual-network weights), each with its config key, path and expected format, and stops.
A present copy is verified as cheaply as its reader allows (an archive streamed to its end,
zip entry names, image headers), so a truncated archive or an image of the wrong size stops
the run here too, naming the key, the file and the entry. First of all, ``device: cuda``
is refused when the jobs run on this machine and it has no CUDA GPU.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from adaptivemix.errors import ConfigError


class MissingInputs(SystemExit):
    """Raised (as a clean exit with a message) when local inputs are missing."""


def missing_inputs(config: dict, prepared: Callable[[str, str], bool]) -> list[str]:
    """One line per missing local input of ``config``.

    ``prepared(kind, name)`` says whether the workflow already holds its own prepared copy
    of a dataset (kind ``gan``/``classify``) or OOD set (``ood``); those need no source.
    """
    from adaptivemix.classify.config import ood_sets_in_use
    from adaptivemix.config import dataset_resolution, gan_experiments, metric_dataset
    from adaptivemix.registries import DATASETS, OOD_SETS

    experiments = gan_experiments(config)
    wanted = [("gan", d, DATASETS, e["resolution"]) for e in experiments for d in e["datasets"]]
    trained = {d for e in experiments for d in e["datasets"]}
    measured = sorted({metric_dataset(config, d) for d in trained} - trained)  # metric data only
    wanted += [("gan", d, DATASETS, dataset_resolution(config, d)) for d in measured]
    wanted += [("classify", d, DATASETS, None) for d in config["classify"]["datasets"]]
    ood = {name for names in ood_sets_in_use(config).values() for name in names}
    wanted += [("ood", name, OOD_SETS, None) for name in sorted(ood)]
    lines = []
    for kind, name, registry, resolution in wanted:
        if not prepared(kind, name):
            lines.append(_source_problem(registry.get(name), config["sources"], resolution))
    if any(e["datasets"] for e in experiments):
        lines += backbone_problems(config["backbone"])
    lines += perceptual_problems(config, experiments)
    return list(dict.fromkeys(line for line in lines if line))


def _source_problem(spec, sources: dict, resolution: int | None) -> str | None:
    """The copy's problem, if any; GAN datasets are checked at the resolution they train at."""
    try:
        spec.check_source(sources, *([resolution] if resolution else []))
    except ConfigError as err:
        return str(err)
    return None


def backbone_problems(backbone: dict) -> list[str]:
    """The weights file of a pretrained backbone, when it is missing or not the expected one."""
    from adaptivemix.metrics.backbones import BACKBONE_TRAINERS

    if backbone["name"] in BACKBONE_TRAINERS:
        return []  # trained by the workflow itself
    from adaptivemix.metrics.inception import missing_backbone_files

    return missing_backbone_files(backbone)


def perceptual_problems(config: dict, experiments: list[dict]) -> list[str]:
    """The weights files of the perceptual distances the GAN runs' methods use (e.g. GLeaD's
    LPIPS-AlexNet), when missing, without a configured sha256, or not the expected file."""
    from adaptivemix.metrics.perceptual import missing_perceptual_files, weights_of_variant

    names = [
        name
        for exp in experiments
        if exp["datasets"]
        for variant in exp["methods"]
        for name in weights_of_variant(variant, exp["method_options"])
    ]
    return missing_perceptual_files(names, config["perceptual"])


def device_problem(config: dict, local_jobs: bool) -> str | None:
    """``device: cuda`` when the jobs run on this machine and it has no CUDA GPU.

    Only for local jobs: a cluster executor (the SLURM profile) submits them to GPU nodes
    from a login node that may have none. torch is imported already (the registries)."""
    if config["device"] != "cuda" or not local_jobs:
        return None
    import torch

    if torch.cuda.is_available():
        return None
    expected = (
        "cpu: the jobs run on this machine and torch sees no CUDA GPU here "
        "(torch.cuda.is_available() is False); set device: cpu, or run the workflow on a "
        "GPU machine or through a cluster executor (--profile workflow/profiles/slurm)"
    )
    return str(ConfigError("device", "cuda", expected))


def stop_if_missing(config: dict, out_dir: str | Path, local_jobs: bool = True) -> None:
    """Raise :class:`MissingInputs` listing every missing input of a run writing to ``out_dir``
    (first, with ``local_jobs``, a CUDA device this machine does not have), all at once."""
    from adaptivemix.classify.config import ood_sets_in_use

    device = device_problem(config, local_jobs)
    out = Path(out_dir)
    ood_ids = ood_sets_in_use(config)
    files = {
        "gan": lambda name: [out / "data" / name / "dataset.pt"],
        "classify": lambda name: [out / "data" / "classify" / name / "dataset.pt"],
        "ood": lambda name: [
            out / "data" / "ood" / id_name / f"{name}.pt"
            for id_name, names in ood_ids.items()
            if name in names
        ],
    }

    def prepared(kind: str, name: str) -> bool:
        return all(path.exists() for path in files[kind](name))

    lines = missing_inputs(config, prepared)
    if device and not lines:
        raise MissingInputs(f"nothing was run:\n  - {device}")
    if lines:
        listing = "\n".join(f"  - {line}" for line in [*([device] if device else []), *lines])
        raise MissingInputs(
            f"{len(lines)} local input(s) missing; nothing was run. Set these keys or put "
            f"the files in place, then rerun:\n{listing}"
        )
