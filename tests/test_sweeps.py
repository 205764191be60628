"""Config-declared sweeps: point names, their options in the run spec, and bad sweeps refused."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from adaptivemix.config import gan_run_config, gan_sweeps, load_workflow_config
from adaptivemix.errors import ConfigError
from adaptivemix.gan.variants import build_variant, parse_variant
from adaptivemix.sweeps import point_name, point_names, split_point, sweep_runs
from adaptivemix.variant_names import baseline_of

SMOKE = yaml.safe_load((Path(__file__).parent.parent / "config/smoke.yaml").read_text())
SWEEP = {"name": "s", "method": "adaptivemix", "dataset": "digits",
         "grid": {"noise_std": [0.0, 0.05], "alpha": [0.5, 1.0]}}  # fmt: skip


def with_sweep(**changes) -> dict:
    config = copy.deepcopy(SMOKE)
    config["gan"]["sweeps"] = [dict(SWEEP, **changes)]
    config["gan"]["method_options"] = {"adaptivemix": {"alpha": 1.0, "noise_std": 0.05}}
    return config


def test_point_names_round_trip_with_sorted_keys_and_typed_values():
    name = point_name("adaptivemix+ada", {"noise_std": 0.2, "alpha": 1.0, "flag": True, "n": 3})
    assert name == "adaptivemix+ada@alpha=1.0,flag=true,n=3,noise_std=0.2"
    variant, values = split_point(name)
    assert variant == "adaptivemix+ada"
    assert values == {"alpha": 1.0, "flag": True, "n": 3, "noise_std": 0.2}
    assert type(values["alpha"]) is float and type(values["n"]) is int
    assert split_point("vanilla") == ("vanilla", {})


def test_grid_points_in_order_and_the_configured_point_keeps_the_plain_name():
    names = point_names(SWEEP, {"alpha": 1.0, "noise_std": 0.05, "distance": "cosine"})
    assert names == [
        "adaptivemix@alpha=0.5,noise_std=0.0",
        "adaptivemix@alpha=1.0,noise_std=0.0",
        "adaptivemix@alpha=0.5,noise_std=0.05",
        "adaptivemix",  # alpha 1.0 and noise_std 0.05: the matrix's run
    ]
    # an option left at its default in method_options is not known to be that point
    assert "adaptivemix" not in point_names(SWEEP, {"alpha": 1.0})
    # a bool is never equal to a number (True == 1 in Python)
    flags = {"name": "f", "method": "m", "dataset": "d", "grid": {"x": [1]}}
    assert point_names(flags, {"x": True}) == ["m@x=1"]


def test_a_point_trains_with_its_options_over_the_configured_ones():
    config = load_workflow_config(with_sweep())
    cfg = gan_run_config(config, "digits", "dcgan", "adaptivemix@alpha=0.5,noise_std=0.0", 0)
    assert cfg.method_options == {"adaptivemix": {"alpha": 0.5, "noise_std": 0.0}}
    method, _ = build_variant(cfg.method, cfg.method_options)
    assert (method.options.alpha, method.options.noise_std) == (0.5, 0.0)
    assert parse_variant(cfg.method).point == (("alpha", 0.5), ("noise_std", 0.0))


def test_sweep_runs_take_the_experiment_and_its_seeds_unless_given():
    config = load_workflow_config(with_sweep())
    [(sweep, experiment, key)] = gan_sweeps(config)
    assert key == "gan.sweeps[0]"
    runs = sweep_runs(sweep, experiment)
    assert len(runs) == 4 * len(SMOKE["gan"]["seeds"])
    assert {r["arch"] for r in runs} == {"dcgan"} and {r["dataset"] for r in runs} == {"digits"}
    runs = sweep_runs(dict(sweep, seeds=[7]), experiment)
    assert {r["seed"] for r in runs} == {7}


def test_the_baseline_of_a_point_keeps_the_augmentations_only():
    assert baseline_of("adaptivemix@alpha=0.5", "vanilla") == "vanilla"
    assert baseline_of("adaptivemix+ada@alpha=0.5,noise_std=0.0", "vanilla") == "vanilla+ada"


@pytest.mark.parametrize(
    ("changes", "key", "fragment"),
    [
        ({"grid": {"alpha": [0.5, -1.0]}}, "gan.sweeps[0].grid.alpha[1]", "alpha"),
        ({"grid": {"colour": [1.0]}}, "gan.sweeps[0].grid.colour[0]", "one of the options"),
        ({"dataset": "cifar10"}, "gan.sweeps[0].dataset", "a dataset one experiment trains"),
        ({"method": "adaptivemix+nope"}, "gan.sweeps[0].method", "replaced by one of"),
        ({"name": "a/b"}, "gan.sweeps[0].name", "pattern"),
        ({"grid": {}}, "gan.sweeps[0].grid", ""),
        ({"grid": {"distance": ["cosine", "a b"]}}, "gan.sweeps[0].grid.distance[1]", "folders"),
    ],
)
def test_bad_sweeps_are_refused_naming_the_key(changes, key, fragment):
    with pytest.raises(ConfigError) as err:
        load_workflow_config(with_sweep(**changes))
    assert err.value.key == key
    assert fragment in str(err.value)


def test_two_sweeps_of_one_name_are_refused():
    config = with_sweep()
    config["gan"]["sweeps"].append(dict(SWEEP))
    with pytest.raises(ConfigError, match="a name no other sweep has") as err:
        load_workflow_config(config)
    assert err.value.key == "gan.sweeps[1].name"
