"""Bad input fails before any job starts, with one message naming key, value and choices.

Each case is checked twice: through ``load_workflow_config`` (the message) and through a
real ``snakemake`` invocation on the repository's Snakefile (exit code, message, and no
results folder left behind).
"""

from __future__ import annotations

import copy
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from adaptivemix.config import gan_run_config, load_workflow_config
from adaptivemix.errors import ConfigError
from adaptivemix.preflight import missing_inputs
from tests.helpers import smoke_config

SMOKE = smoke_config()


def with_change(path: str, value):
    config = copy.deepcopy(SMOKE)
    *parents, last = path.split(".")
    node = config
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return config


def with_changes(*pairs):
    """Several changes at once: ``with_changes(("a.b", 1), ("c", 2))``."""
    config = copy.deepcopy(SMOKE)
    for path, value in pairs:
        *parents, last = path.split(".")
        node = config
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value
    return config


NO_OOD = ("ood.sets", {})
heavy = pytest.mark.heavy


def experiment(arch="dcgan", datasets=("digits",), resolution=16, settings=None):
    return {"arch": arch, "datasets": list(datasets), "resolution": resolution,
            "settings": settings or {}}  # fmt: skip


# Local copies that are missing: listed at start-up (not at validation, so that a dry run
# builds the DAG without data), with the key, the path and the expected format.
MISSING_INPUTS = [
    ("local dataset without a configured path",
     with_changes(("classify.datasets", ["cifar10"]), NO_OOD),
     ["sources.cifar10.root", "cifar-10-batches-py", "cifar-10-python.tar.gz"]),
    ("local dataset path that does not exist",
     with_changes(("classify.datasets", ["cifar10"]), NO_OOD,
                  ("sources", {"cifar10": {"root": "/nonexistent/cifar"}})),
     ["sources.cifar10.root", "/nonexistent/cifar", "cifar-10-batches-py"]),
    ("local OOD set missing", with_change("ood.sets", {"digits-0to5": ["odin-isun"]}),
     ["sources.odin-isun.root", "iSUN"]),
    ("LPIPS's AlexNet weights missing",
     with_changes(("data.resolution", 32), ("gan.methods", ["vanilla", "glead"]),
                  ("gan.method_options", {"glead": {"perceptual": "lpips"}}),
                  ("perceptual", {"lpips": {"weights": "/nonexistent/alexnet.pth"}})),
     ["perceptual.lpips.weights", "/nonexistent/alexnet.pth", "alexnet-owt-7be5be79.pth"]),
]  # fmt: skip


# (what is wrong, config, fragments the one message must contain)
BAD_INPUTS = [
    ("unknown method", with_change("gan.methods", ["vanilla", "adaptivemixx"]),
     ["gan.methods[1]", "'adaptivemixx'", "'adaptivemix'", "'vanilla'"]),
    ("unknown dataset", with_change("data.datasets", ["mnist"]),
     ["data.datasets[0]", "'mnist'", "'digits'"]),
    ("unknown architecture", with_change("gan.arch", "biggan"),
     ["gan.arch", "'biggan'", "'dcgan'"]),
    ("unknown backbone", with_change("backbone.name", "inception-v9"),
     ["backbone.name", "'inception-v9'", "'digits-cnn'"]),
    ("misspelled key", with_change("gan.stepz", 10),
     ["gan.stepz", "10", "'steps'", "'seeds'"]),
    ("unknown top-level key", with_change("trainer", {}),
     ["trainer", "'gan'", "'data'"]),
    ("unknown method option", with_change("gan.method_options", {"adaptivemix": {"alpah": 1}}),
     ["gan.method_options.adaptivemix.alpah", "'alpha'", "'noise_std'"]),
    ("wrong type", with_change("gan.steps", "many"),
     ["gan.steps", "'many'", "integer"]),
    ("wrong option type", with_change("gan.method_options", {"adaptivemix": {"alpha": "one"}}),
     ["gan.method_options.adaptivemix.alpha", "'one'", "float"]),
    ("empty seed list", with_change("gan.seeds", []),
     ["gan.seeds", "[]", "minItems"]),
    ("non-positive step count", with_change("gan.steps", 0),
     ["gan.steps", "0", "minimum=1"]),
    ("a feature probe of one image", with_change("gan.probe_samples", 1),
     ["gan.probe_samples", "1", "minimum=2"]),
    ("non-positive batch size", with_change("gan.batch_size", -4),
     ["gan.batch_size", "-4", "minimum"]),
    ("non-positive backbone steps", with_change("backbone.steps", 0),
     ["backbone.steps", "0", "minimum=1"]),
    ("unknown augmentation in a variant", with_change("gan.methods", ["vanilla+diffaug"]),
     ["gan.methods", "'vanilla+diffaug'", "'diffaug'", "'diffaugment'", "'ada'"]),
    ("augmentation in the method's place", with_change("gan.methods", ["diffaugment+vanilla"]),
     ["gan.methods", "'diffaugment+vanilla'", "'adaptivemix'", "vanilla+diffaugment"]),
    ("options for an unknown name", with_change("gan.method_options", {"mixupp": {}}),
     ["gan.method_options.mixupp", "'mixup'", "'diffaugment'"]),
    ("method incompatible with the networks",
     with_change("gan", {**SMOKE["gan"], "methods": ["glead"],
                         "method_options": {"glead": {"res_g": 16}}}),
     ["gan.methods[0]", "'glead'", "res_g=16", "'dcgan'"]),
    ("the FID network as a training perceptual network",
     with_change("gan", {**SMOKE["gan"], "methods": ["glead"],
                         "method_options": {"glead": {"perceptual": "backbone"}}}),
     ["gan.method_options.glead.perceptual", "'backbone'", "'lpips'", "'pixel'",
      "leak into training"]),
    ("LPIPS on images too small for AlexNet",
     with_change("gan", {**SMOKE["gan"], "methods": ["glead"],
                         "method_options": {"glead": {"perceptual": "lpips"}}}),
     ["gan.method_options.glead.perceptual", "'lpips'", "'pixel'", "(16)", "≥ 31"]),
    # the classification and OOD tracks
    ("unknown classification method", with_change("classify.methods", ["erm", "adaptivemixx"]),
     ["classify.methods[1]", "'adaptivemixx'", "'erm'", "'manifold-mixup'"]),
    ("bad classification option",
     with_change("classify.method_options", {"adaptivemix": {"alpha": -1.0}}),
     ["classify.method_options.adaptivemix.alpha", "-1.0"]),
    ("WRN depth not 6n+4", with_change("classify.depth", 11),
     ["classify.depth", "11", "6n+4"]),
    ("unknown attack", with_change("classify.attacks", {"cw": {}}),
     ["classify.attacks", "'cw'", "'fgsm'", "'pgd'"]),
    ("epsilon out of range", with_change("classify.attacks", {"fgsm": {"eps": 1.5}}),
     ["classify.attacks.fgsm.eps", "1.5"]),
    ("unknown detector", with_change("ood.detectors", ["msp", "odinn"]),
     ["ood.detectors[1]", "'odinn'", "'odin'", "'mahalanobis'"]),
    ("bad detector option", with_change("ood.detector_options", {"odin": {"temperature": 0.0}}),
     ["ood.detector_options.odin.temperature", "0.0"]),
    ("unknown OOD set", with_change("ood.sets", {"digits-0to5": ["lettres"]}),
     ["ood.sets.digits-0to5[0]", "'lettres'", "'letters'"]),
    ("OOD set overlapping the in-distribution classes",
     with_changes(("classify.datasets", ["digits"]), ("ood.sets", {"digits": ["digits-6to9"]})),
     ["ood.sets.digits[0]", "'digits-6to9'", "'6'", "'9'"]),
    ("OOD set defined for another in-distribution set",
     with_change("ood.sets", {"digits-0to5": ["openood-cifar100"]}),
     ["ood.sets.digits-0to5[0]", "'openood-cifar100'", "cifar10"]),
    ("OOD sets of an unknown in-distribution set",
     with_change("ood.sets", {"mnist": ["noise"]}),
     ["ood.sets.mnist", "'mnist'", "'digits-0to5'"]),
    ("experiment setting misspelled",
     with_change("gan.experiments", [experiment(settings={"stepz": 5})]),
     ["gan.experiments[0].settings.stepz", "5", "'steps'"]),
    ("experiment setting out of range",
     with_change("gan.experiments", [experiment(settings={"d_steps": 0})]),
     ["gan.experiments[0].settings.d_steps", "0", "≥ 1"]),
    ("experiment with an unknown architecture",
     with_change("gan.experiments", [experiment(arch="biggan")]),
     ["gan.experiments[0].arch", "'biggan'", "'dcgan'"]),
    ("two experiments training the same dataset and architecture",
     with_change("gan.experiments", [experiment(), experiment(datasets=["stacked-digits",
                                                                         "digits"])]),
     ["gan.experiments[1].datasets", "'digits'", "gan.experiments[0]"]),
    ("one dataset at two resolutions",
     with_change("gan.experiments", [experiment(), experiment(arch="dcgan-cifar",
                                                              resolution=32)]),
     ["gan.experiments[1].resolution", "32", "16", "gan.experiments[0]"]),
    ("mixed precision on the CPU", with_change("gan.amp", True),
     ["gan.amp", "True", "CUDA"]),
    ("path-length regularisation for a G without w-space", with_change("gan.pl_weight", 2.0),
     ["gan.pl_weight", "2.0", "mapping", "dcgan"]),
    ("unknown architecture option", with_change("gan.arch_options", {"widthh": 3}),
     ["gan.arch_options.widthh", "3"]),
    # the report
    ("unknown GAN baseline", with_change("report.baseline", {"gan": "vanila"}),
     ["report.baseline.gan", "'vanila'", "'vanilla'", "'adaptivemix'"]),
    ("unknown classification baseline", with_change("report.baseline", {"classify": "sgd"}),
     ["report.baseline.classify", "'sgd'", "'erm'"]),
    ("claims registry missing", with_change("report.claims", "/nonexistent/claims.csv"),
     ["report.claims", "'/nonexistent/claims.csv'", "claims CSV"]),
    # evaluation against another dataset's real statistics (APA's --metricdata)
    ("unknown metric dataset", with_change("evaluate.metric_data", {"digits": "ffhq-full"}),
     ["evaluate.metric_data.digits", "'ffhq-full'", "'ffhq256'"]),
]  # fmt: skip
IDS = [case[0] for case in BAD_INPUTS]

#: The cases the fast tier also runs through Snakemake: one per stage at which the workflow
#: refuses a config (the schema, before the plugins are imported; a registered name; a
#: plugin's own options; the networks' compatibility; a check across sections). Every case
#: is refused in-process in the fast tier (above); the rest go through Snakemake in the
#: slow tier, each a ~4 s process that repeats a stage already run here.
SNAKEMAKE_FAST_CASES = (
    "misspelled key",
    "unknown method",
    "wrong option type",
    "method incompatible with the networks",
    "OOD set overlapping the in-distribution classes",
)
SNAKEMAKE_CASES = [
    pytest.param(*case, id=case[0], marks=() if case[0] in SNAKEMAKE_FAST_CASES else heavy)
    for case in BAD_INPUTS
]


@pytest.mark.parametrize("what, config, fragments", BAD_INPUTS, ids=IDS)
def test_bad_config_is_refused_with_one_clear_message(what, config, fragments):
    with pytest.raises(ConfigError) as err:
        load_workflow_config(config)
    message = str(err.value)
    for fragment in fragments:
        assert fragment in message, f"{what}: {fragment!r} missing from {message!r}"


def run_snakemake(repo_root: Path, tmp_path: Path, config: dict):
    """The real Snakemake asked to run ``config`` in a fresh folder: (result, that folder)."""
    config_file = tmp_path / "config.yaml"
    config_file.write_text(yaml.safe_dump(config))
    return run_snakemake_on(repo_root, tmp_path, config_file)


def run_snakemake_on(repo_root: Path, tmp_path: Path, config_file: Path):
    """As :func:`run_snakemake`, with a config file as written (or absent, or broken)."""
    work = tmp_path / "work"
    work.mkdir(exist_ok=True)
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "1", "--snakefile",
         str(repo_root / "Snakefile"), "--directory", str(work), "--configfile", str(config_file)],
        capture_output=True, text=True, timeout=120, cwd=repo_root,
    )  # fmt: skip
    return result, work


@pytest.mark.slow
@pytest.mark.parametrize("what, config, fragments", SNAKEMAKE_CASES)
def test_snakemake_refuses_bad_config_before_any_job(tmp_path, repo_root, what, config, fragments):
    result, work = run_snakemake(repo_root, tmp_path, config)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "ConfigError" in output and fragments[0] in output, output[-2000:]
    assert not (work / "results").exists()


@pytest.mark.parametrize(
    "what, config, fragments", MISSING_INPUTS, ids=[c[0] for c in MISSING_INPUTS]
)
def test_missing_local_input_is_listed_but_does_not_fail_validation(what, config, fragments):
    checked = load_workflow_config(config)  # a dry run must still build the DAG
    listing = "\n".join(missing_inputs(checked, prepared=lambda kind, name: False))
    for fragment in fragments:
        assert fragment in listing, f"{what}: {fragment!r} missing from {listing!r}"


def test_prepared_copies_need_no_local_source():
    config = load_workflow_config(MISSING_INPUTS[0][1])
    assert missing_inputs(config, prepared=lambda kind, name: True) == []


@pytest.mark.slow
def test_snakemake_run_lists_every_missing_input_before_any_job(tmp_path, repo_root):
    config = with_changes(
        ("classify.datasets", ["digits-0to5", "cifar10"]),
        ("ood.sets", {"digits-0to5": ["odin-isun"]}),
        ("sources", {"cifar10": {"root": "/nonexistent/cifar"}}),
    )
    result, work = run_snakemake(repo_root, tmp_path, config)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "2 local input(s) missing" in output, output[-2000:]
    assert "sources.cifar10.root" in output and "/nonexistent/cifar" in output
    assert "sources.odin-isun.root" in output
    assert not (work / "results").exists()


def test_defaults_are_filled_and_input_untouched():
    raw = {"profile": "x"}
    config = load_workflow_config(raw)
    assert raw == {"profile": "x"}
    assert config["gan"]["methods"] == ["vanilla", "adaptivemix"]
    assert config["evaluate"]["reference_split"] == "train"


def test_run_config_takes_only_its_own_slice():
    config = load_workflow_config(SMOKE)
    a = gan_run_config(config, "digits", "dcgan", "vanilla", 0)
    bigger = copy.deepcopy(config)
    bigger["gan"]["methods"].append("another")
    bigger["gan"]["method_options"]["adaptivemix"] = {"alpha": 0.5}
    assert gan_run_config(bigger, "digits", "dcgan", "vanilla", 0) == a
    own = gan_run_config(bigger, "digits", "dcgan", "adaptivemix", 0).method_options
    assert own == {"adaptivemix": {"alpha": 0.5}}


@pytest.mark.parametrize("profile", ["smoke", "default"])
def test_shipped_profiles_are_valid(repo_root, profile):
    raw = yaml.safe_load((repo_root / f"config/{profile}.yaml").read_text())
    assert load_workflow_config(raw)["profile"] == profile
