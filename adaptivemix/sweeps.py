"""Config-declared sweeps: one GAN method's options over a grid, as one more axis of the DAG.

A sweep in ``gan.sweeps`` names a variant, the dataset it trains on and a grid of the
method's options::

    sweeps:
      - name: adaptivemix-ablation        # tables/sweep_<name>.*, figures/sweep_<name>.*
        method: adaptivemix
        dataset: digits-25pct
        grid: {noise_std: [0.0, 0.05, 0.2], alpha: [0.2, 1.0]}
        seeds: [0, 1, 2]                  # default: those of the experiment training dataset

Every grid point is one run per seed, whose variant name carries the point's options after
``@`` (``adaptivemix@alpha=0.2,noise_std=0.0``, keys sorted): it is a run folder and a table
row like any other, its spec holds the options it trains with, and adding a point reruns
nothing else. The point whose values equal those the variant has in ``gan.method_options``
is the matrix's own run (plain name): trained once, shown in both places. Everything else of
the run (networks, steps, evaluation) is that of the experiment training ``dataset``.

This module only handles names and config: it imports neither torch nor pandas.
"""

from __future__ import annotations

import itertools
import re

from adaptivemix.errors import ConfigError
from adaptivemix.registry import VARIANT_SEPARATOR

__all__ = [
    "POINT_SEPARATOR", "grid_values", "point_name", "point_names", "split_point", "sweep_points",
    "sweep_runs",
]  # fmt: skip

#: Separates a variant from its point's options in a run's method name.
POINT_SEPARATOR = "@"
_PAIR, _ASSIGN = ",", "="
#: What a grid value may be written with: it becomes part of a run folder's name.
VALUE_PATTERN = re.compile(r"[A-Za-z0-9_.+-]+")


def format_value(value: object) -> str:
    """A grid value as it appears in a name: ``0.05``, ``1.0``, ``3``, ``true``, ``cosine``."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def parse_value(text: str) -> object:
    """The inverse of :func:`format_value` (``1.0`` stays a float, ``3`` an int)."""
    if text in ("true", "false"):
        return text == "true"
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def point_name(variant: str, values: dict) -> str:
    """``variant@key=value,...`` with keys sorted; ``variant`` itself for no values."""
    if not values:
        return variant
    pairs = _PAIR.join(f"{k}{_ASSIGN}{format_value(values[k])}" for k in sorted(values))
    return f"{variant}{POINT_SEPARATOR}{pairs}"


def split_point(name: str) -> tuple[str, dict]:
    """(variant, options) of a run's method name; a plain variant has no options."""
    variant, sep, pairs = name.partition(POINT_SEPARATOR)
    if not sep:
        return name, {}
    values = {}
    for pair in pairs.split(_PAIR):
        key, assign, text = pair.partition(_ASSIGN)
        if not assign or not key:
            raise ValueError(f"method name {name!r}: {pair!r} is not key=value")
        values[key] = parse_value(text)
    return variant, values


def _same(a: object, b: object) -> bool:
    """Equal values, a bool equal only to a bool (``True == 1`` in Python)."""
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    return a == b


def grid_values(grid: dict) -> list[dict]:
    """Every point of ``grid`` (option -> values) as option -> value, first key slowest."""
    keys = list(grid)
    return [dict(zip(keys, values, strict=True)) for values in itertools.product(*grid.values())]


def point_names(sweep: dict, configured: dict) -> list[str]:
    """The method name of every grid point, in :func:`grid_values` order. ``configured``:
    the options the variant's method has in ``gan.method_options``; the point equal to them
    (every grid key set there to that value) is the plain variant name, the matrix's run."""
    names = []
    for point in grid_values(sweep["grid"]):
        default = all(k in configured and _same(configured[k], v) for k, v in point.items())
        names.append(sweep["method"] if default else point_name(sweep["method"], point))
    return names


def sweep_points(sweep: dict, method_options: dict) -> list[str]:
    """:func:`point_names` with the configured options taken from ``method_options``."""
    return point_names(sweep, method_options.get(method_of(sweep["method"]), {}))


def sweep_runs(sweep: dict, experiment: dict) -> list[dict]:
    """(dataset, arch, method, seed) of every run of ``sweep``, trained under ``experiment``."""
    seeds = sweep.get("seeds") or experiment["seeds"]
    return [
        dict(dataset=sweep["dataset"], arch=experiment["arch"], method=name, seed=seed)
        for name in sweep_points(sweep, experiment["method_options"])
        for seed in seeds
    ]


def method_of(variant: str) -> str:
    """The method part of a variant name (``adaptivemix`` of ``adaptivemix+ada``)."""
    return variant.split(VARIANT_SEPARATOR)[0]


def check_sweep(sweep: dict, key: str, method_options: dict, build_method) -> None:
    """Every grid value parses as the method's option over its configured ones
    (``build_method(name, options)`` raises ConfigError otherwise); the error names the grid
    key, not method_options."""
    method = method_of(sweep["method"])
    for name, values in sweep["grid"].items():
        for i, value in enumerate(values):
            if not VALUE_PATTERN.fullmatch(format_value(value)):
                expected = f"a value written with {VALUE_PATTERN.pattern} (it names run folders)"
                raise ConfigError(f"{key}.grid.{name}[{i}]", value, expected)
            try:
                build_method(method, method_options.get(method, {}) | {name: value})
            except ConfigError as err:
                raise ConfigError(f"{key}.grid.{name}[{i}]", value, err.expected) from None
