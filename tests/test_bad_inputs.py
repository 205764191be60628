"""The catalogue of bad inputs (issue 16): each through a real ``snakemake`` call on the
Snakefile, which must fail within seconds, before any job, with a message naming the key
or the file, and leave nothing under ``results/``.

Where each is refused: the schema while the Snakefile is parsed (floats as integers, the
profile, strings as numbers), the start-up check before any job (``device: cuda`` without a
GPU, broken local copies), Snakemake itself for a ``--configfile`` it cannot read (it reads
the file before the Snakefile runs: ``adaptivemix check-config``, which ``make reproduce``
runs first, names the file and the line). Fast unit checks of the same refusals follow.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

from adaptivemix.config import key_path, load_config_file, load_workflow_config
from adaptivemix.data.cifar import CIFAR10
from adaptivemix.errors import ConfigError, ConfigFileError
from adaptivemix.preflight import device_problem
from adaptivemix.registries import DATASETS
from tests.test_classify_data import write_copy
from tests.test_config import (
    NO_OOD,
    SMOKE,
    experiment,
    run_snakemake,
    run_snakemake_on,
    with_change,
    with_changes,
)
from tests.test_image_datasets import picture, png, tool_name, write_zip

NO_CLASSIFY = ("classify.datasets", [])


def ffhq_zip(root: Path, odd: dict[str, bytes]) -> Path:
    """A 16-px ``ffhq-16x16.zip`` of three good images plus the ``odd`` entries."""
    files = {tool_name(i): png(picture(i, size=16)) for i in range(3)}
    write_zip(root / "ffhq-16x16.zip", files | odd)
    return root


def truncated_cifar(root: Path) -> Path:
    """A tiny CIFAR-10 archive cut at 60% of its bytes."""
    write_copy(root, CIFAR10, "archive", 100, 20)
    archive = root / CIFAR10.archive
    data = archive.read_bytes()
    archive.write_bytes(data[: int(len(data) * 0.6)])
    return root


def ffhq_config(root: Path) -> dict:
    return with_changes(("data.datasets", ["ffhq256"]), NO_CLASSIFY, NO_OOD,
                        ("sources", {"ffhq256": {"root": str(root)}}))  # fmt: skip


def raw_lr(tmp_path: Path) -> Path:
    """``lr_g: 1e3`` as a user writes it (YAML 1.1 reads it as a string)."""
    text = yaml.safe_dump(with_change("gan.lr_g", 0.123456)).replace("0.123456", "1e3")
    assert "lr_g: 1e3" in text
    return write(tmp_path / "lr.yaml", text)


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


SYNTAX_ERROR = "profile: smoke\ngan:\n  steps: [1, 2\n  batch_size: 16\n"

# (what is wrong, config dict or a function of tmp_path giving one, fragments of the message)
CONFIG_CASES = [
    ("batch size as a float", with_change("gan.batch_size", 16.0),
     ["gan.batch_size", "16.0", "integer", "write 16"]),
    ("steps as a float", with_change("gan.steps", 4.0), ["gan.steps", "4.0", "integer"]),
    ("profile '..'", with_change("profile", ".."), ["'profile'", "'..'", "plain folder name"]),
    ("profile with a path separator", with_change("profile", "a/b"),
     ["'profile'", "'a/b'", "plain folder name"]),
    ("seeds as strings", with_change("gan.seeds", [0, "1"]), ["gan.seeds[1]", "'1'", "integer"]),
]  # fmt: skip
START_UP_CASES = [
    ("device cuda on a machine without a GPU", lambda tmp: with_change("device", "cuda"),
     ["'device'", "'cuda'", "no CUDA GPU", "nothing was run"]),
    ("truncated CIFAR archive",
     lambda tmp: with_changes(("classify.datasets", ["cifar10"]), NO_OOD,
                              ("sources", {"cifar10": {"root": str(truncated_cifar(tmp / "c"))}})),
     ["sources.cifar10.root", "cifar-10-python.tar.gz", "truncated"]),
    ("zip with an image of the wrong size",
     lambda tmp: ffhq_config(ffhq_zip(tmp / "f", {tool_name(3): png(picture(3, size=8))})),
     ["sources.ffhq256.root", "ffhq-16x16.zip:00000/img00000003.png", "16×16", "8×8"]),
    ("zip entry leaving its folder",
     lambda tmp: ffhq_config(ffhq_zip(tmp / "f", {"../escape.png": png(picture(3, size=16))})),
     ["sources.ffhq256.root", "ffhq-16x16.zip:../escape.png", "outside its folder"]),
]  # fmt: skip


def assert_refused(result, work: Path, fragments: list[str]) -> None:
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-2000:]
    for fragment in fragments:
        assert fragment in output, f"{fragment!r} missing from {output[-2000:]}"
    assert not (work / "results").exists()


@pytest.mark.slow
@pytest.mark.parametrize("what, config, fragments", CONFIG_CASES, ids=[c[0] for c in CONFIG_CASES])
def test_schema_refusals_through_snakemake(tmp_path, repo_root, what, config, fragments):
    result, work = run_snakemake(repo_root, tmp_path, config)
    assert_refused(result, work, ["ConfigError", *fragments])


@pytest.mark.slow
@pytest.mark.parametrize(
    "what, make, fragments", START_UP_CASES, ids=[c[0] for c in START_UP_CASES]
)
def test_start_up_refusals_through_snakemake(tmp_path, repo_root, what, make, fragments):
    if what.startswith("device") and torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    result, work = run_snakemake(repo_root, tmp_path, make(tmp_path))
    assert_refused(result, work, fragments)


@pytest.mark.slow
def test_a_number_yaml_reads_as_a_string_gets_a_hint(tmp_path, repo_root):
    result, work = run_snakemake_on(repo_root, tmp_path, raw_lr(tmp_path))
    assert_refused(result, work, ["gan.lr_g", "'1e3'", "number", "1.0e+3"])


def check_config(repo_root: Path, config_file: Path) -> subprocess.CompletedProcess:
    """What ``make reproduce`` runs before Snakemake."""
    return subprocess.run(
        [sys.executable, "-m", "adaptivemix", "check-config", "--quiet", str(config_file)],
        capture_output=True, text=True, timeout=120, cwd=repo_root,
    )  # fmt: skip


UNREADABLE_FILES = [
    ("YAML syntax error", SYNTAX_ERROR, ["line 4", "column 13", "started at line 3"]),
    ("empty config file", "", ["empty"]),
    ("missing config file", None, ["no such file", "config/default.yaml"]),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    "what, text, fragments", UNREADABLE_FILES, ids=[c[0] for c in UNREADABLE_FILES]
)
def test_unreadable_configfile(tmp_path, repo_root, what, text, fragments):
    """Snakemake reads ``--configfile`` before the Snakefile runs: it fails before any job
    with its own message (which names neither file nor line); the checker that ``make
    reproduce`` runs first names both."""
    config_file = tmp_path / "bad.yaml"
    if text is not None:
        config_file.write_text(text)
    result, work = run_snakemake_on(repo_root, tmp_path, config_file)
    assert_refused(result, work, [])
    checked = check_config(repo_root, config_file)
    assert checked.returncode == 2
    assert f"config file '{config_file}'" in checked.stderr, checked.stderr
    for fragment in fragments:
        assert fragment in checked.stderr, checked.stderr


@pytest.mark.slow
def test_syntax_error_in_the_snakefiles_own_config_names_file_and_line(tmp_path, repo_root):
    """``config/default.yaml`` (relative to the working directory) is read by the Snakefile,
    which checks it first."""
    write(tmp_path / "work" / "config" / "default.yaml", SYNTAX_ERROR)
    result, work = run_snakemake_on(repo_root, tmp_path, tmp_path / "work/config/default.yaml")
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert not (work / "results").exists()
    # Snakemake reads it first as --configfile; without --configfile the Snakefile does:
    result = subprocess.run(
        [sys.executable, "-m", "snakemake", "--cores", "1", "--snakefile",
         str(repo_root / "Snakefile"), "--directory", str(work)],
        capture_output=True, text=True, timeout=120, cwd=repo_root,
    )  # fmt: skip
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "config file 'config/default.yaml', line 4, column 13" in output, output[-2000:]
    assert not (work / "results").exists()


# ------------------------------------------------------------------ fast unit checks


FLOAT_INTEGERS = [
    ("gan.batch_size", 16.0, "gan.batch_size"),
    ("classify.epochs", 2.0, "classify.epochs"),
    ("threads_per_job", 1.0, "threads_per_job"),
    ("resources.train_gpus", 0.0, "resources.train_gpus"),
    ("sources", {"ffhq256": {"root": "/x", "subset_seed": 1.0}}, "sources.ffhq256.subset_seed"),
    ("gan.experiments", [experiment(settings={"batch_size": 16.0})],
     "gan.experiments[0].settings.batch_size"),
    ("gan.experiments", [experiment(resolution=16.0)], "gan.experiments[0].resolution"),
    ("classify.seeds", [0, 1.0], "classify.seeds[1]"),
    ("gan.steps", True, "gan.steps"),  # a boolean is not an integer either
    ("gan.lr_g", True, "gan.lr_g"),  # nor a number
]  # fmt: skip


@pytest.mark.parametrize("path, value, key", FLOAT_INTEGERS)
def test_floats_and_booleans_are_not_integers(path, value, key):
    with pytest.raises(ConfigError) as err:
        load_workflow_config(with_change(path, value))
    assert err.value.key == key
    assert "expected a value of type" in str(err.value)


def test_whole_integers_and_floats_for_numbers_still_pass():
    config = load_workflow_config(with_changes(("gan.steps", 4), ("gan.lr_g", 1)))
    assert config["gan"]["steps"] == 4 and type(config["gan"]["steps"]) is int


@pytest.mark.parametrize("profile", ["", ".", "..", "../x", "a/b", "a\\b", ".hidden", "/abs"])
def test_profile_is_a_plain_folder_name(profile):
    with pytest.raises(ConfigError, match="plain folder name") as err:
        load_workflow_config(with_change("profile", profile))
    assert err.value.key == "profile" and err.value.value == profile


@pytest.mark.parametrize("profile", ["smoke", "paper-v2", "run_1.b"])
def test_plain_profile_names_pass(profile):
    assert load_workflow_config(with_change("profile", profile))["profile"] == profile


def test_key_paths_write_list_indices_in_brackets():
    assert key_path(["gan", "seeds", 1]) == "gan.seeds[1]"
    assert key_path(["gan", "experiments", 0, "settings", "d_steps"]) == (
        "gan.experiments[0].settings.d_steps"
    )
    assert key_path(["ood", "sets", "digits", 0]) == "ood.sets.digits[0]"
    assert key_path([]) == ""


@pytest.mark.parametrize(
    "written, hint",
    [("1e3", "1.0e+3"), ("1e-4", "1.0e-4"), ("2.5E3", "2.5e+3"), ("1.0e3", "1.0e+3")],
)
def test_numbers_yaml_reads_as_strings_get_a_hint(written, hint):
    raw = yaml.safe_load(f"lr_g: {written}")["lr_g"]
    assert raw == written  # YAML 1.1: no decimal point or no signed exponent -> a string
    with pytest.raises(ConfigError) as err:
        load_workflow_config(with_change("gan.lr_g", raw))
    assert err.value.key == "gan.lr_g" and f"write {hint}" in str(err.value)
    assert yaml.safe_load(f"lr_g: {hint}")["lr_g"] == float(written)  # the hint parses


def test_a_count_written_with_an_exponent_gets_a_whole_number_hint():
    with pytest.raises(ConfigError, match=r"write 1000, unquoted"):
        load_workflow_config(with_change("gan.steps", yaml.safe_load("steps: 1e3")["steps"]))


def test_config_file_errors_name_file_and_line(tmp_path):
    cases = {
        "syntax.yaml": (SYNTAX_ERROR, 4, 13),
        "tab.yaml": ("profile: x\n\tgan: {}\n", 2, 1),
        "empty.yaml": ("", None, None),
        "comments.yaml": ("# nothing\n", None, None),
        "list.yaml": ("- profile\n", None, None),
    }
    for name, (text, line, column) in cases.items():
        with pytest.raises(ConfigFileError) as err:
            load_config_file(write(tmp_path / name, text))
        assert (err.value.line, err.value.column) == (line, column), name
        assert str(err.value).startswith(f"config file '{tmp_path / name}'")
        assert "mapping of config keys" in str(err.value)
    with pytest.raises(ConfigFileError, match="no such file"):
        load_config_file(tmp_path / "absent.yaml")


def test_device_cuda_is_refused_only_for_local_jobs_without_a_gpu():
    config = load_workflow_config(with_change("device", "cuda"))
    problem = device_problem(config, local_jobs=True)
    if torch.cuda.is_available():
        assert problem is None
    else:
        assert "'device'" in problem and "no CUDA GPU" in problem
    assert device_problem(config, local_jobs=False) is None  # e.g. the SLURM profile
    assert device_problem(load_workflow_config(SMOKE), local_jobs=True) is None


def test_paper_profile_passes_validation_on_a_cpu_machine(repo_root):
    """Its device is cuda: validation (and a dry run) must not ask for a GPU."""
    raw = load_config_file(repo_root / "config/paper.yaml")
    assert load_workflow_config(raw)["device"] == "cuda"


def test_start_up_check_reads_broken_copies_naming_key_file_and_entry(tmp_path):
    cifar = DATASETS.get("cifar10")
    with pytest.raises(ConfigError, match="truncated") as err:
        cifar.check_source({"cifar10": {"root": str(truncated_cifar(tmp_path / "c"))}})
    assert err.value.key == "sources.cifar10.root"
    assert err.value.value == str(tmp_path / "c" / CIFAR10.archive)
    ffhq = DATASETS.get("ffhq256")
    root = ffhq_zip(tmp_path / "f", {tool_name(3): png(picture(3, size=8))})
    with pytest.raises(ConfigError, match="8×8") as err:
        ffhq.check_source({"ffhq256": {"root": str(root)}}, 16)
    assert err.value.value == f"{root / 'ffhq-16x16.zip'}:{tool_name(3)}"
    ffhq.check_source({"ffhq256": {"root": str(root)}})  # no resolution: file unknown, passes


def test_cifar_reader_names_file_and_key_for_a_truncated_copy(tmp_path):
    """The reader itself (the prepare-data job), not a bare EOFError."""
    root = truncated_cifar(tmp_path / "archive")
    with pytest.raises(ConfigError, match=r"sources\.cifar10\.root.*cifar-10-python\.tar\.gz"):
        DATASETS.get("cifar10")(32, root=str(root))
    folder = write_copy(tmp_path / "folder", CIFAR10, "folder", 50, 10)
    batch = folder / CIFAR10.folder / "data_batch_2"
    batch.write_bytes(batch.read_bytes()[:1000])
    with pytest.raises(ConfigError, match="intact CIFAR pickle") as err:
        DATASETS.get("cifar10-gan")(32, root=str(folder))
    assert err.value.key == "sources.cifar10.root" and err.value.value == str(batch)


def test_folder_of_images_gets_the_same_header_check(tmp_path):
    folder = tmp_path / "ffhq-16x16"
    (folder / "00000").mkdir(parents=True)
    for i in range(2):
        (folder / tool_name(i)).write_bytes(png(picture(i, size=16 if i == 0 else 12)))
    with pytest.raises(ConfigError, match="12×12") as err:
        DATASETS.get("ffhq256").check_source({"ffhq256": {"root": str(tmp_path)}}, 16)
    assert err.value.value == str(folder / tool_name(1))
