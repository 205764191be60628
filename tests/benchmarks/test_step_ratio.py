"""AdaptiveMix's step cost relative to vanilla, measured interleaved, at the default size.

Timing the variants one after another (``test_step_cost.py``) lets load from other processes
on a shared machine land on one of them only (two runs gave 3.4× and 0.8×). Here both
training states live in one process and each round times one step of each, back to back,
in alternating order; each round gives a ratio (AdaptiveMix step / vanilla step) under about
the same load. ``extra_info`` holds the ratio's median, min and max over the rounds and each
variant's median ms per step; ``make bench`` runs it (group ``gan-step-ratio``) and
``adaptivemix.report.bench`` writes them to ``results/benchmarks/step_ratio.json`` and
``step_cost.md``. The target (median ≤ 1.45) is reported, not asserted. Under
``--benchmark-disable`` one round runs, as a smoke check.

A second pair measures the floor under that ratio: :class:`TwoPassFloor`, vanilla with one
more D pass in each D call and none of AdaptiveMix's own arithmetic. Any implementation of
AdaptiveMix's losses makes that second pass (D's features of the mix), so its ratio to vanilla
is a lower bound for AdaptiveMix's at this size, measured the same way.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Callable

import pytest

from adaptivemix.gan.losses import build_adv_loss
from adaptivemix.gan.methods import Discrimination, GanMethod
from adaptivemix.gan.trainer import build_state, train_step
from adaptivemix.gan.variants import build_variant
from adaptivemix.report.bench import RATIO_GROUP, step_ratio_table
from tests.benchmarks.test_step_cost import DEFAULT_GAN, DEFAULT_SIZE
from tests.helpers import tiny_run_config

ROUNDS = 50
WARMUP_ROUNDS = 3  # allocator and kernels
TWO_PASS_FLOOR = "two-pass floor"
PAIRS = [("vanilla", "adaptivemix"), ("vanilla", TWO_PASS_FLOOR)]


class TwoPassFloor(GanMethod):
    """Not a method: vanilla's logits plus D's logits of the batch reversed, in every D call.
    The second D pass AdaptiveMix needs (of ``x_mix``), at a vanilla pass's cost, without the
    mix, permutation, λ draw, noisy target or consistency term."""

    def discriminate(self, D, x, phase, ctx) -> Discrimination:
        return Discrimination(D.head(D.features(x)) + D.head(D.features(x.flip(0))))


def build_plugin(variant: str):
    """(method, augmentations) of a registered variant, or of the floor."""
    if variant == TWO_PASS_FLOOR:
        return TwoPassFloor(), build_variant("vanilla")[1]
    return build_variant(variant, DEFAULT_GAN["method_options"])


def make_step(variant: str, dataset) -> Callable[[], dict | None]:
    """One training step of ``variant`` at the default size, on its own state."""
    cfg = tiny_run_config("vanilla" if variant == TWO_PASS_FLOOR else variant, **DEFAULT_SIZE)
    plugin, augment = build_plugin(variant)
    state = build_state(cfg, plugin, dataset.channels, augment)
    adv = build_adv_loss(cfg.adv_loss)
    reals = dataset.images["train"]
    return lambda: train_step(state, plugin, adv, reals, cfg)


def interleaved(steps: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Seconds per step of each, ``rounds`` times; the order is reversed every other round."""
    names = list(steps)
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(rounds):
        for name in names if i % 2 == 0 else names[::-1]:
            start = time.perf_counter()
            steps[name]()
            times[name].append(time.perf_counter() - start)
    return times


def ratio_summary(times: dict[str, list[float]], baseline: str, method: str) -> dict:
    """Median, min and max of the per-round ratio method / baseline; median ms of each."""
    ratios = [m / b for b, m in zip(times[baseline], times[method], strict=True)]
    return {
        "baseline": baseline, "method": method, "rounds": len(ratios),
        "ratio_median": statistics.median(ratios), "ratio_min": min(ratios),
        "ratio_max": max(ratios),
        "baseline_ms_median": 1e3 * statistics.median(times[baseline]),
        "method_ms_median": 1e3 * statistics.median(times[method]),
    }  # fmt: skip


@pytest.mark.parametrize("baseline, method", PAIRS)
def test_interleaved_step_ratio(benchmark, digits16, baseline, method):
    steps = {name: make_step(name, digits16) for name in (baseline, method)}
    rounds = 1 if benchmark.disabled else ROUNDS
    interleaved(steps, 0 if benchmark.disabled else WARMUP_ROUNDS)
    benchmark.group = RATIO_GROUP
    times = benchmark.pedantic(interleaved, args=(steps, rounds), rounds=1, iterations=1)
    summary = ratio_summary(times, baseline, method)
    benchmark.extra_info.update(summary)
    assert summary["rounds"] == rounds and summary["ratio_min"] > 0


def test_ratio_summary_and_report_table(tmp_path):
    times = {"vanilla": [1.0, 2.0, 1.0], "adaptivemix": [1.5, 2.0, 1.2]}
    summary = ratio_summary(times, "vanilla", "adaptivemix")
    assert summary["ratio_median"] == pytest.approx(1.2)
    assert (summary["ratio_min"], summary["ratio_max"]) == pytest.approx((1.0, 1.5))
    assert summary["method_ms_median"] == pytest.approx(1500.0)
    other = {"group": "gan-step", "params": {"method": "vanilla"}, "extra_info": {}}
    data = {"benchmarks": [other, {"group": RATIO_GROUP, "extra_info": summary}]}
    (tmp_path / "bench.json").write_text(json.dumps(data))
    table = step_ratio_table(tmp_path / "bench.json")
    assert table.to_dict(orient="records") == [summary]
