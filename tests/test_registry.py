"""The registries: names resolve, taken names and unknown names raise clearly."""

from __future__ import annotations

import pytest

from adaptivemix.errors import ConfigError
from adaptivemix.registries import ADV_LOSSES, ARCHS, BACKBONES, DATASETS, METHODS
from adaptivemix.registry import Registry


def test_registering_a_taken_name_raises():
    reg = Registry("thing")
    reg.register("a")(object)
    with pytest.raises(KeyError, match="thing 'a' is already registered"):
        reg.register("a")(object)


@pytest.mark.parametrize("registry", [ADV_LOSSES, ARCHS, BACKBONES, DATASETS, METHODS])
def test_unknown_name_names_key_value_and_choices(registry):
    with pytest.raises(ConfigError) as err:
        registry.get("no-such-thing", "some.key")
    message = str(err.value)
    assert "some.key" in message and "no-such-thing" in message
    assert all(name in message for name in registry.names())


def test_core_entries_are_registered():
    assert {"vanilla", "adaptivemix"} <= set(METHODS.names())
    assert "digits" in DATASETS and "dcgan" in ARCHS and "digits-cnn" in BACKBONES
