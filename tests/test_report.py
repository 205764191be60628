"""Reporting: statistics, run collection, protocol checks, tables and figures.

Expected numbers are worked out by hand (and the t quantiles copied from printed tables),
not by calling the code under test.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from adaptivemix.report import (
    aggregate_gan,
    check_fingerprints,
    collect_curves,
    collect_runs,
    format_markdown,
    mean_std_ci,
    summary_table,
    write_table,
)
from adaptivemix.report.aggregate import _representative
from adaptivemix.report.tables import drop_unreported

T_975_DF1 = 12.706204736174707  # t(0.975, 1)
T_975_DF2 = 4.302652729911275  # t(0.975, 2)
T_950_DF3 = 2.353363434801823  # t(0.95, 3)


def write_run(
    root: Path,
    method: str,
    seed: int,
    fid: float | None,
    kid: float | None,
    *,
    dataset: str = "digits",
    arch: str = "dcgan",
    status: str = "ok",
    n_gen: int = 1257,
    samples: bool = True,
    modes: tuple[float | None, float | None] | None = None,
    n_modes: int = 1000,
) -> Path:
    """A fake finished run folder: metrics.json, log.jsonl and (optionally) samples.png.

    ``modes=(modes, kl_modes)`` adds the mode metrics and ``n_modes`` to the protocol, as a
    classifier backbone's evaluation does.
    """
    run_dir = root / "runs" / "gan" / dataset / arch / method / f"seed{seed}"
    run_dir.mkdir(parents=True)
    protocol = {
        "backbone": "digits-cnn",
        "backbone_sha256": "ab" * 32,
        "resize": "native",
        "n_gen": n_gen,
        "n_real": 1257,
        "reference_split": "train",
        "dataset_sha256": "cd" * 32,
    }
    metrics = {"fid": fid, "kid": kid}
    fingerprint = f"fp-{n_gen:012d}"
    if modes is not None:
        metrics.update(modes=modes[0], kl_modes=modes[1])
        protocol["n_modes"] = n_modes
        fingerprint += f"-{n_modes}"
    record = {
        "task": "gan",
        "dataset": dataset,
        "arch": arch,
        "method": method,
        "seed": seed,
        "status": status,
        "diverged_at_step": 300 if status == "diverged" else None,
        "steps": 300 if status == "diverged" else 400,
        "metrics": metrics,
        "protocol": protocol,
        "protocol_fingerprint": fingerprint,
        "config": {},
        "provenance": {"code_version": "test", "libraries": {}},
        "train_seconds": 1.5,
    }
    (run_dir / "metrics.json").write_text(json.dumps(record))
    last = 300 if status == "diverged" else 400
    log = []
    for step in range(100, last + 1, 100):
        row = {"step": step, "kimg": step * 0.064, "time_s": step / 100, "d_loss": 1.0}
        if step % 200 == 0 or step == last:
            row.update(fid=100.0 / step + seed, kid=1.0 / step)
        log.append(row)
    (run_dir / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    if samples:
        pixels = np.random.default_rng(seed).integers(0, 256, (48, 48, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(run_dir / "samples.png")
    return run_dir / "metrics.json"


@pytest.fixture
def two_methods(tmp_path: Path) -> list[Path]:
    """baseline: 3 finished seeds; adaptivemix: 2 finished + seed 2 diverged (with values)."""
    return [
        write_run(tmp_path, "baseline", 0, 10.0, 0.01),
        write_run(tmp_path, "baseline", 1, 12.0, 0.02),
        write_run(tmp_path, "baseline", 2, 14.0, 0.03),
        write_run(tmp_path, "adaptivemix", 0, 8.0, 0.005),
        write_run(tmp_path, "adaptivemix", 1, 9.0, 0.007),
        write_run(tmp_path, "adaptivemix", 2, 250.0, 0.5, status="diverged"),
    ]


# --- stats -----------------------------------------------------------------------------


def test_mean_std_ci_by_hand() -> None:
    s = mean_std_ci([1.0, 2.0, 3.0])
    half = T_975_DF2 * 1.0 / math.sqrt(3)
    assert s["n"] == 3
    assert s["mean"] == pytest.approx(2.0)
    assert s["std"] == pytest.approx(1.0)
    assert s["t_ci_low"] == pytest.approx(2.0 - half, rel=1e-9)
    assert s["t_ci_high"] == pytest.approx(2.0 + half, rel=1e-9)
    # bootstrap: "all three resampled = the min" has mass 1/27 > 2.5%, so [min, max]
    assert (s["ci_low"], s["ci_high"]) == (1.0, 3.0)


def test_mean_std_ci_other_confidence() -> None:
    s = mean_std_ci([1.0, 2.0, 3.0, 4.0], confidence=0.90)
    std = math.sqrt(5.0 / 3.0)  # squared deviations 2.25+0.25+0.25+2.25 = 5, over n-1 = 3
    half = T_950_DF3 * std / 2.0
    assert s["std"] == pytest.approx(std)
    assert (s["t_ci_low"], s["t_ci_high"]) == pytest.approx((2.5 - half, 2.5 + half), rel=1e-9)
    # bootstrap, 256 resamples: means <= 1.25 have mass 5/256 < 5%, <= 1.5 mass 15/256 > 5%
    assert (s["ci_low"], s["ci_high"]) == (1.5, 3.5)


def test_mean_std_ci_small_and_nan() -> None:
    one = mean_std_ci([float("nan"), 5.0])
    assert one["n"] == 1 and one["mean"] == 5.0
    assert all(math.isnan(one[k]) for k in ("std", "ci_low", "ci_high"))
    none = mean_std_ci([float("nan")])
    assert none["n"] == 0
    assert all(math.isnan(none[k]) for k in ("mean", "std", "ci_low", "ci_high"))
    assert mean_std_ci([])["n"] == 0
    with pytest.raises(ValueError, match="confidence"):
        mean_std_ci([1.0, 2.0], confidence=95)


def test_mean_std_ci_coverage() -> None:
    rng = np.random.default_rng(0)
    samples = rng.standard_normal((2000, 5))
    covered = 0
    for row in samples:
        s = mean_std_ci(row, n_boot=100)  # the t interval: nominal coverage at n = 5
        covered += s["t_ci_low"] <= 0.0 <= s["t_ci_high"]
    assert 0.93 <= covered / 2000 <= 0.97


# --- collect ---------------------------------------------------------------------------


def test_collect_runs_columns(two_methods: list[Path]) -> None:
    runs = collect_runs(two_methods)
    assert len(runs) == 6
    for col in ("task", "dataset", "arch", "method", "seed", "status", "diverged_at_step",
                "steps", "train_seconds", "protocol_fingerprint", "backbone", "resize",
                "n_gen", "n_real", "reference_split", "fid", "kid", "run_dir"):  # fmt: skip
        assert col in runs.columns, col
    diverged = runs[runs["status"] == "diverged"].iloc[0]
    assert diverged["diverged_at_step"] == 300
    assert Path(diverged["run_dir"]) == two_methods[-1].parent


def test_collect_runs_rejects_duplicates_and_bad_status(tmp_path: Path) -> None:
    path = write_run(tmp_path, "baseline", 0, 10.0, 0.01)
    with pytest.raises(ValueError, match="more than once"):
        collect_runs([path, path])
    record = json.loads(path.read_text())
    path.write_text(json.dumps({**record, "status": "running"}))
    with pytest.raises(ValueError, match="running"):
        collect_runs([path])


def test_collect_curves_only_eval_rows(tmp_path: Path) -> None:
    path = write_run(tmp_path, "baseline", 1, 10.0, 0.01)
    curves = collect_curves([path])
    fid = curves[curves["metric"] == "fid"].sort_values("step")
    # Log steps 100..400; evaluations at 200 and 400 only, fid = 100/step + seed.
    assert fid["step"].tolist() == [200, 400]
    assert fid["value"].tolist() == pytest.approx([1.5, 1.25])
    assert set(curves["metric"]) == {"fid", "kid"}
    assert (curves["method"] == "baseline").all() and (curves["seed"] == 1).all()


def test_check_fingerprints(tmp_path: Path) -> None:
    a = write_run(tmp_path, "baseline", 0, 10.0, 0.01, n_gen=1257)
    b = write_run(tmp_path, "adaptivemix", 0, 9.0, 0.01, n_gen=500)
    c = write_run(tmp_path, "adaptivemix", 1, 9.0, 0.01, n_gen=1257)
    with pytest.raises(ValueError) as err:
        check_fingerprints(collect_runs([a, b]))
    message = str(err.value)
    assert "n_gen" in message and "1257" in message and "500" in message
    assert "digits" in message
    assert "backbone," not in message.split("differing protocol fields:")[1].split("\n")[0]
    check_fingerprints(collect_runs([a, c]))  # same protocol: no error
    other = write_run(tmp_path, "baseline", 0, 10.0, 0.01, dataset="other", n_gen=500)
    check_fingerprints(collect_runs([a, c, other]))  # differs only across datasets: fine


# --- tables ----------------------------------------------------------------------------


def test_summary_table_by_hand(two_methods: list[Path]) -> None:
    table = summary_table(collect_runs(two_methods))
    assert table["method"].tolist() == ["baseline", "adaptivemix"]  # first appearance
    base = table.iloc[0]
    assert (base["fid_mean"], base["fid_std"]) == pytest.approx((12.0, 2.0))
    assert (base["kid_mean"], base["kid_std"]) == pytest.approx((0.02, 0.01))
    half = T_975_DF2 * 2.0 / math.sqrt(3)
    assert (base["fid_t_ci_low"], base["fid_t_ci_high"]) == pytest.approx((12 - half, 12 + half))
    assert (base["fid_ci_low"], base["fid_ci_high"]) == (10.0, 14.0)  # bootstrap of 3: min..max
    assert (base["n_seeds"], base["n_diverged"]) == (3, 0)
    amix = table.iloc[1]
    # The diverged seed's FID 250 / KID 0.5 must not enter: mean of 8 and 9 only.
    assert (amix["fid_mean"], amix["fid_std"]) == pytest.approx((8.5, math.sqrt(0.5)))
    assert (amix["kid_mean"], amix["kid_std"]) == pytest.approx((0.006, math.sqrt(2e-6)))
    half = T_975_DF1 * math.sqrt(0.5) / math.sqrt(2)
    amix_t = (amix["fid_t_ci_low"], amix["fid_t_ci_high"])
    assert amix_t == pytest.approx((8.5 - half, 8.5 + half))
    # bootstrap of 8, 9: means 8 (1/4), 8.5 (1/2), 9 (1/4) -> [8, 9]
    assert (amix["fid_ci_low"], amix["fid_ci_high"]) == (8.0, 9.0)
    assert (amix["n_seeds"], amix["n_diverged"]) == (2, 1)
    assert base["protocol"] == "digits-cnn/native, 1257 gen vs 1257 train"


def test_summary_table_method_order(two_methods: list[Path]) -> None:
    runs = collect_runs(two_methods)
    table = summary_table(runs, method_order=["adaptivemix", "baseline"])
    assert table["method"].tolist() == ["adaptivemix", "baseline"]
    with pytest.raises(ValueError, match="is"):
        summary_table(runs, metrics=("fid", "is"))


def test_markdown_and_csv(two_methods: list[Path], tmp_path: Path) -> None:
    table = summary_table(collect_runs(two_methods))
    md = format_markdown(table)
    # bootstrap CI of 10, 12, 14: [min, max] (see test_mean_std_ci_by_hand)
    assert "12.00 ± 2.00 [10.00, 14.00]" in md
    assert "0.0200 ± 0.0100" in md
    assert "95% CI" in md
    paths = write_table(table, tmp_path / "out" / "gan_digits")
    assert [p.name for p in paths] == ["gan_digits.csv", "gan_digits.md", "gan_digits.tex"]
    back = pd.read_csv(paths[0])
    assert back.loc[1, "fid_std"] == math.sqrt(0.5)  # full precision survives the CSV
    assert paths[1].read_text() == md + "\n"


# --- end to end ------------------------------------------------------------------------


def _check_png(path: Path, min_side: int = 100) -> None:
    with Image.open(path) as img:
        assert img.format == "PNG"
        assert min(img.size) >= min_side
        pixels = np.asarray(img.convert("L"), dtype=float)
    assert pixels.std() > 1.0  # not a blank canvas


def test_aggregate_gan_end_to_end(two_methods: list[Path], tmp_path: Path) -> None:
    extra = [
        write_run(tmp_path, "baseline", 0, 20.0, 0.05, dataset="letters"),
        write_run(tmp_path, "adaptivemix", 0, 18.0, 0.04, dataset="letters"),
        write_run(tmp_path, "adaptivemix", 1, 17.0, 0.03, dataset="letters"),
    ]
    tables, figures = tmp_path / "tables", tmp_path / "figures"
    order = ["adaptivemix", "baseline"]
    written = aggregate_gan([*two_methods, *extra], tables, figures, order, baseline="baseline")
    names = ("gan_digits", "gan_letters", "gan_summary", "generation", "gan_paired", "fid_trend")
    expected_tables = {f"{n}.{x}" for n in names for x in ("csv", "md", "tex")}
    expected_figures = {
        f"{name}_{d}.{x}"
        for d in ("digits", "letters")
        for name, x in (("fid_curve", "png"), ("fid_curve", "pdf"), ("fid_curve", "csv"),
                        ("samples", "png"))
    } | {"bars_fid.png"}  # fmt: skip
    assert {p.name for p in written["tables"]} == expected_tables
    assert {p.name for p in written["figures"]} == expected_figures
    assert {p.name for p in tables.iterdir()} == expected_tables  # no temp files left over
    # beside the bar figure sit its PDF and the CSV of its plotted values; nothing else
    on_disk = {p.name for p in figures.iterdir()}
    assert on_disk == expected_figures | {"bars_fid.pdf", "bars_fid.csv"}
    for name in expected_figures:
        if name.endswith(".png"):
            _check_png(figures / name)
        elif name.endswith(".pdf"):
            assert (figures / name).read_bytes().startswith(b"%PDF")
    # the paired table: adaptivemix minus baseline on digits, seeds 0-2 by hand
    paired = pd.read_csv(tables / "gan_paired.csv")
    row = paired[(paired["dataset"] == "digits") & (paired["metric"] == "fid")].iloc[0]
    assert (row["method"], row["baseline"]) == ("adaptivemix", "baseline")
    # seed 2 of adaptivemix diverged: pairs (8 - 10, 9 - 12) = (-2, -3)
    assert (row["n_pairs"], row["diff_mean"]) == (2, pytest.approx(-2.5))
    md = (tables / "gan_digits.md").read_text()
    assert "adaptivemix" in md and "baseline" in md and "±" in md
    assert md.index("adaptivemix") < md.index("baseline")  # method_order respected
    summary = pd.read_csv(tables / "gan_summary.csv")
    assert summary["dataset"].tolist() == ["digits", "digits", "letters", "letters"]


def test_aggregate_gan_refuses_mixed_protocols(tmp_path: Path) -> None:
    paths = [
        write_run(tmp_path, "baseline", 0, 10.0, 0.01, n_gen=1257),
        write_run(tmp_path, "adaptivemix", 0, 9.0, 0.01, n_gen=2000),
    ]
    with pytest.raises(ValueError, match="n_gen"):
        aggregate_gan(paths, tmp_path / "tables", tmp_path / "figures")
    assert not (tmp_path / "tables").exists() and not (tmp_path / "figures").exists()


def test_samples_use_lowest_finished_seed(tmp_path: Path) -> None:
    paths = [
        write_run(tmp_path, "adaptivemix", 0, None, None, status="diverged"),
        write_run(tmp_path, "adaptivemix", 1, 9.0, 0.01, samples=False),
        write_run(tmp_path, "adaptivemix", 2, 9.0, 0.01),
        write_run(tmp_path, "adaptivemix", 3, 9.0, 0.01),
    ]
    assert _representative(collect_runs(paths), "samples.png")["seed"] == 2


def test_all_diverged_method(tmp_path: Path) -> None:
    paths = [
        write_run(tmp_path, "baseline", 0, 10.0, 0.01),
        write_run(tmp_path, "fragile", 0, None, None, status="diverged"),
        write_run(tmp_path, "fragile", 1, None, None, status="diverged"),
    ]
    runs = collect_runs(paths)
    assert runs["fid"].isna().tolist() == [False, True, True]  # JSON null -> NaN
    row = summary_table(runs).set_index("method").loc["fragile"]
    assert (row["n_seeds"], row["n_diverged"]) == (0, 2)
    assert math.isnan(row["fid_mean"])
    md = format_markdown(summary_table(runs))
    assert "10.00 (single seed)" in md and "| diverged" in md  # no finished seed


# --- mode metrics (stacked digits) -----------------------------------------------------

STACKED = "stacked-digits"


@pytest.fixture
def stacked_runs(tmp_path: Path) -> list[Path]:
    """Stacked-digits runs with mode metrics; adaptivemix seed 2 diverged (nulls)."""
    return [
        write_run(tmp_path, "baseline", 0, 30.0, 0.1, dataset=STACKED, modes=(950, 0.1)),
        write_run(tmp_path, "baseline", 1, 32.0, 0.2, dataset=STACKED, modes=(960, 0.2)),
        write_run(tmp_path, "baseline", 2, 34.0, 0.3, dataset=STACKED, modes=(970, 0.3)),
        write_run(tmp_path, "adaptivemix", 0, 20.0, 0.1, dataset=STACKED, modes=(990, 0.05)),
        write_run(tmp_path, "adaptivemix", 1, 22.0, 0.1, dataset=STACKED, modes=(992, 0.07)),
        write_run(tmp_path, "adaptivemix", 2, None, None, dataset=STACKED, status="diverged",
                  modes=(None, None)),
    ]  # fmt: skip


def test_mode_metrics_are_collected_with_their_protocol(stacked_runs, two_methods) -> None:
    runs = collect_runs([*two_methods, *stacked_runs])
    assert {"modes", "kl_modes", "n_modes"} <= set(runs.columns)
    stacked = runs[runs["dataset"] == STACKED]
    assert stacked["modes"].tolist()[:5] == [950, 960, 970, 990, 992]
    assert math.isnan(stacked["modes"].iloc[5])  # the diverged run's null
    assert stacked["n_modes"].tolist() == [1000] * 6
    assert runs.loc[runs["dataset"] == "digits", "n_modes"].isna().all()
    assert runs.loc[runs["dataset"] == "digits", "modes"].isna().all()


def test_mode_columns_by_hand(stacked_runs) -> None:
    table = summary_table(collect_runs(stacked_runs))
    assert [c for c in table.columns if c.endswith("_mean")] == [
        "fid_mean", "kid_mean", "modes_mean", "kl_modes_mean"
    ]  # fmt: skip
    base = table.set_index("method").loc["baseline"]
    assert (base["modes_mean"], base["modes_std"]) == pytest.approx((960.0, 10.0))
    assert (base["kl_modes_mean"], base["kl_modes_std"]) == pytest.approx((0.2, 0.1))
    half = T_975_DF2 * 10.0 / math.sqrt(3)  # 24.841
    base_t = (base["modes_t_ci_low"], base["modes_t_ci_high"])
    assert base_t == pytest.approx((960 - half, 960 + half))
    assert (base["modes_ci_low"], base["modes_ci_high"]) == (950.0, 970.0)  # bootstrap: min..max
    amix = table.set_index("method").loc["adaptivemix"]
    assert (amix["modes_mean"], amix["n_seeds"], amix["n_diverged"]) == (991.0, 2, 1)
    assert amix["modes_std"] == pytest.approx(math.sqrt(2.0))  # (1 + 1) / (2 - 1)
    assert base["protocol"] == "digits-cnn/native, 1257 gen vs 1257 train, 1000 modes"
    md = format_markdown(table)
    assert "modes (mean ± std [bootstrap 95% CI])" in md
    assert "kl_modes (mean ± std [bootstrap 95% CI])" in md
    assert "960.0 ± 10.0 [950.0, 970.0]" in md  # 1 decimal for modes
    assert "0.200 ± 0.100 [0.100, 0.300]" in md  # 3 decimals for kl_modes; CI = min..max


def test_datasets_without_mode_metrics_keep_fid_and_kid(two_methods, stacked_runs) -> None:
    table = summary_table(collect_runs([*two_methods, *stacked_runs]))
    digits = table[table["dataset"] == "digits"].set_index("method")
    # digits runs have no modes: they are not missing, and keep all their seeds
    assert digits.loc["baseline", "n_seeds"] == 3 and digits.loc["baseline", "n_missing"] == 0
    assert digits["modes_mean"].isna().all()
    assert digits.loc["baseline", "fid_mean"] == pytest.approx(12.0)
    kept = drop_unreported(table[table["dataset"] == "digits"])
    assert not any(c.startswith(("modes_", "kl_modes_")) for c in kept.columns)
    assert "modes" not in format_markdown(kept)
    stacked = drop_unreported(table[table["dataset"] == STACKED])
    assert "modes_mean" in stacked.columns and "kl_modes_ci_high" in stacked.columns


def test_finished_run_without_mode_metrics_counts_as_missing(tmp_path: Path) -> None:
    paths = [
        write_run(tmp_path, "baseline", 0, 30.0, 0.1, dataset=STACKED, modes=(950, 0.1)),
        write_run(tmp_path, "baseline", 1, 31.0, 0.1, dataset=STACKED, modes=(None, None)),
    ]
    row = summary_table(collect_runs(paths)).iloc[0]
    assert (row["n_seeds"], row["n_missing"], row["fid_mean"]) == (1, 1, 30.0)


def test_fingerprint_mismatch_names_n_modes(tmp_path: Path) -> None:
    a = write_run(tmp_path, "baseline", 0, 30.0, 0.1, dataset=STACKED, modes=(9, 0.1))
    b = write_run(tmp_path, "adaptivemix", 0, 30.0, 0.1, dataset=STACKED, modes=(9, 0.1),
                  n_modes=100)  # fmt: skip
    with pytest.raises(ValueError, match="differing protocol fields: n_modes"):
        check_fingerprints(collect_runs([a, b]))


def test_aggregate_tables_with_and_without_mode_metrics(two_methods, stacked_runs, tmp_path):
    tables = tmp_path / "tables"
    aggregate_gan([*two_methods, *stacked_runs], tables, tmp_path / "figures")
    digits = pd.read_csv(tables / "gan_digits.csv")
    assert [c for c in digits.columns if c.endswith("_mean")] == ["fid_mean", "kid_mean"]
    stacked = pd.read_csv(tables / f"gan_{STACKED}.csv")
    assert "modes_mean" in stacked.columns and "kl_modes_mean" in stacked.columns
    assert stacked["modes_mean"].tolist() == pytest.approx([960.0, 991.0])
    md = (tables / f"gan_{STACKED}.md").read_text()
    assert "960.0 ± 10.0" in md and "1000 modes" in md
    assert "modes" not in (tables / "gan_digits.md").read_text()
    summary = pd.read_csv(tables / "gan_summary.csv")
    assert summary["modes_mean"].isna().tolist() == [True, True, False, False]
    assert "n/a" in (tables / "gan_summary.md").read_text()  # digits: no mode metrics
