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
from adaptivemix.report.aggregate import _sample_choice

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
) -> Path:
    """A fake finished run folder: metrics.json, log.jsonl and (optionally) samples.png."""
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
    record = {
        "task": "gan",
        "dataset": dataset,
        "arch": arch,
        "method": method,
        "seed": seed,
        "status": status,
        "diverged_at_step": 300 if status == "diverged" else None,
        "steps": 300 if status == "diverged" else 400,
        "metrics": {"fid": fid, "kid": kid},
        "protocol": protocol,
        "protocol_fingerprint": f"fp-{n_gen:012d}",
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
    assert s["ci_low"] == pytest.approx(2.0 - half, rel=1e-9)
    assert s["ci_high"] == pytest.approx(2.0 + half, rel=1e-9)


def test_mean_std_ci_other_confidence() -> None:
    s = mean_std_ci([1.0, 2.0, 3.0, 4.0], confidence=0.90)
    std = math.sqrt(5.0 / 3.0)  # squared deviations 2.25+0.25+0.25+2.25 = 5, over n-1 = 3
    half = T_950_DF3 * std / 2.0
    assert s["std"] == pytest.approx(std)
    assert (s["ci_low"], s["ci_high"]) == pytest.approx((2.5 - half, 2.5 + half), rel=1e-9)


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
        s = mean_std_ci(row)
        covered += s["ci_low"] <= 0.0 <= s["ci_high"]
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
    assert (base["fid_ci_low"], base["fid_ci_high"]) == pytest.approx((12 - half, 12 + half))
    assert (base["n_seeds"], base["n_diverged"]) == (3, 0)
    amix = table.iloc[1]
    # The diverged seed's FID 250 / KID 0.5 must not enter: mean of 8 and 9 only.
    assert (amix["fid_mean"], amix["fid_std"]) == pytest.approx((8.5, math.sqrt(0.5)))
    assert (amix["kid_mean"], amix["kid_std"]) == pytest.approx((0.006, math.sqrt(2e-6)))
    half = T_975_DF1 * math.sqrt(0.5) / math.sqrt(2)
    assert (amix["fid_ci_low"], amix["fid_ci_high"]) == pytest.approx((8.5 - half, 8.5 + half))
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
    # 12 ± 4.302653 * 2 / sqrt(3) = 12 ± 4.968 -> [7.03, 16.97]
    assert "12.00 ± 2.00 [7.03, 16.97]" in md
    assert "0.0200 ± 0.0100" in md
    assert "95% CI" in md
    paths = write_table(table, tmp_path / "out" / "gan_digits")
    assert [p.name for p in paths] == ["gan_digits.csv", "gan_digits.md"]
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
    written = aggregate_gan([*two_methods, *extra], tables, figures, ["adaptivemix", "baseline"])
    names = ("digits", "letters", "summary")
    expected_tables = {f"gan_{d}.{x}" for d in names for x in ("csv", "md")}
    expected_figures = {
        f"{name}_{d}.{x}"
        for d in ("digits", "letters")
        for name, x in (("fid_curve", "png"), ("fid_curve", "pdf"), ("samples", "png"))
    }
    assert {p.name for p in written["tables"]} == expected_tables
    assert {p.name for p in written["figures"]} == expected_figures
    assert {p.name for p in tables.iterdir()} == expected_tables  # no temp files left over
    assert {p.name for p in figures.iterdir()} == expected_figures
    for name in expected_figures:
        if name.endswith(".png"):
            _check_png(figures / name)
        else:
            assert (figures / name).read_bytes().startswith(b"%PDF")
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
    assert _sample_choice(collect_runs(paths))["seed"] == 2


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
    assert "10.00 (single seed)" in md and "n/a" in md
