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

SMOKE = yaml.safe_load((Path(__file__).parent.parent / "config/smoke.yaml").read_text())


def with_change(path: str, value):
    config = copy.deepcopy(SMOKE)
    *parents, last = path.split(".")
    node = config
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return config


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
]  # fmt: skip
IDS = [case[0] for case in BAD_INPUTS]


@pytest.mark.parametrize("what, config, fragments", BAD_INPUTS, ids=IDS)
def test_bad_config_is_refused_with_one_clear_message(what, config, fragments):
    with pytest.raises(ConfigError) as err:
        load_workflow_config(config)
    message = str(err.value)
    for fragment in fragments:
        assert fragment in message, f"{what}: {fragment!r} missing from {message!r}"


@pytest.mark.slow
@pytest.mark.parametrize("what, config, fragments", BAD_INPUTS, ids=IDS)
def test_snakemake_refuses_bad_config_before_any_job(tmp_path, repo_root, what, config, fragments):
    config_file = tmp_path / "bad.yaml"
    config_file.write_text(yaml.safe_dump(config))
    work = tmp_path / "work"
    work.mkdir()
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "1", "--snakefile",
         str(repo_root / "Snakefile"), "--directory", str(work), "--configfile", str(config_file)],
        capture_output=True, text=True, timeout=120, cwd=repo_root,
    )  # fmt: skip
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "ConfigError" in output and fragments[0] in output, output[-2000:]
    assert not (work / "results").exists()


def test_defaults_are_filled_and_input_untouched():
    raw = {"profile": "x"}
    config = load_workflow_config(raw)
    assert raw == {"profile": "x"}
    assert config["gan"]["methods"] == ["vanilla", "adaptivemix"]
    assert config["evaluate"]["reference_split"] == "train"


def test_run_config_takes_only_its_own_slice():
    config = load_workflow_config(SMOKE)
    a = gan_run_config(config, "digits", "vanilla", 0)
    bigger = copy.deepcopy(config)
    bigger["gan"]["methods"].append("another")
    bigger["gan"]["method_options"]["adaptivemix"] = {"alpha": 0.5}
    assert gan_run_config(bigger, "digits", "vanilla", 0) == a
    own = gan_run_config(bigger, "digits", "adaptivemix", 0).method_options
    assert own == {"adaptivemix": {"alpha": 0.5}}


@pytest.mark.parametrize("profile", ["smoke", "default"])
def test_shipped_profiles_are_valid(repo_root, profile):
    raw = yaml.safe_load((repo_root / f"config/{profile}.yaml").read_text())
    assert load_workflow_config(raw)["profile"] == profile
