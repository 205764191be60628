"""The claims registry: loading and validating it, matching claims with runs, its tables."""

from __future__ import annotations

import csv
import math

import pandas as pd
import pytest

from adaptivemix.report.claims import (
    load_claims,
    match_claims,
    protocols_from_runs,
    write_claims_tables,
)
from tests.conftest import REPO_ROOT

CLAIMS = REPO_ROOT / "config" / "claims.csv"
SHARED_CLAIMS = REPO_ROOT.parent / "shared" / "paper_claims.csv"
# One extra claim, written as a user would add it (its numbers are made up for the test).
EXTRA_LINE = (
    "Toy,0000.00000,2,generation,Digits,16,DCGAN,Vanilla,FID,11.0,fid5k_full,5000,full,"
    "train,legacy-tensorflow,3,test line,digits,dcgan,vanilla,,,,,"
)
TF = "inception-legacy-tensorflow"
#: The papers whose confirmed numbers the registry holds, every one of them.
REGISTERED_PAPERS = ("GLeaD", "PConv", "APA", "ODIN")
N_CLAIMS = 79  # 24 GLeaD, 2 PConv, 3 APA, 50 ODIN


def _protocol(n_gen=50000, n_real=70000, split="train", backbone=TF) -> dict:
    resize = {TF: "legacy_tensorflow", "inception-clean": "clean"}.get(backbone, "native")
    return {
        "backbone": backbone,
        "resize": resize,
        "n_gen": n_gen,
        "n_real": n_real,
        "reference_split": split,
    }


def _summary_row(dataset, method, mean, std, low, high, n_seeds, arch="stylegan2") -> dict:
    return {
        "task": "gan",
        "dataset": dataset,
        "arch": arch,
        "method": method,
        "fid_mean": mean,
        "fid_std": std,
        "fid_ci_low": low,
        "fid_ci_high": high,
        "n_seeds": n_seeds,
        "protocol": "hand-built",
    }


def _write(tmp_path, text: str, name: str = "claims.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


# --- the real registry -------------------------------------------------------------------


def test_registry_holds_the_shared_claims():
    if not SHARED_CLAIMS.is_file():
        pytest.skip(f"{SHARED_CLAIMS} is outside this checkout")
    with SHARED_CLAIMS.open(newline="") as f:
        expected = [row for row in csv.DictReader(f) if row["paper"] in REGISTERED_PAPERS]
    claims = load_claims(CLAIMS)
    assert len(expected) == N_CLAIMS and len(claims) == N_CLAIMS
    for want, got in zip(expected, claims.to_dict("records"), strict=True):
        for column, value in want.items():
            if column == "value":
                assert got["value"] == float(value)
            else:
                assert got[column] == value, (column, want)


def test_registry_maps_runnable_claims_to_harness_keys():
    claims = load_claims(CLAIMS)
    assert len(claims) == N_CLAIMS
    runnable = claims[(claims["not_runnable"] == "") & (claims["task"] != "ood")]
    columns = ["run_dataset", "run_method", "value"]
    keys = sorted(tuple(r) for r in runnable[columns].itertuples(index=False))
    # The six FID claims of StyleGAN2 and GLeaD (GLeaD paper, Table 1) and APA's three
    # (official README model zoo), by hand.
    assert keys == [
        ("afhq-cat", "apa", 4.876),
        ("ffhq256", "apa", 3.678),
        ("ffhq256", "glead", 3.24),
        ("ffhq256", "vanilla", 3.79),
        ("ffhq256-5k", "apa", 13.249),
        ("lsun-bedroom", "glead", 2.55),
        ("lsun-bedroom", "vanilla", 4.30),
        ("lsun-church", "glead", 2.82),
        ("lsun-church", "vanilla", 4.04),
    ]
    assert set(runnable["run_arch"]) == {"stylegan2"}
    assert set(runnable["fid_mode"]) == {"legacy-tensorflow"}
    blocked = claims[claims["not_runnable"] != ""]
    assert (blocked[["run_dataset", "run_arch", "run_method"]] == "").all().all()
    assert sorted(blocked["method"].value_counts().items()) == [
        ("GGDR", 3),
        ("GLeaD", 6),  # precision and recall (pr50k3)
        ("GLeaD+GGDR", 3),
        ("PConv", 1),
        ("StyleGAN2", 6),
        ("baseline", 1),
    ]


def test_adding_a_claim_is_one_line(tmp_path):
    path = _write(tmp_path, CLAIMS.read_text() + EXTRA_LINE + "\n")
    claims = load_claims(path)
    assert len(claims) == N_CLAIMS + 1
    assert claims.iloc[-1]["paper"] == "Toy" and claims.iloc[-1]["value"] == 11.0
    summary = pd.DataFrame([_summary_row("digits", "vanilla", 12.0, 1.0, 10.0, 14.0, 3, "dcgan")])
    protocols = {("digits", "dcgan", "vanilla"): _protocol(n_gen=5000, n_real=1257)}
    reproduced, not_run = match_claims(claims, summary, protocols)
    assert reproduced[["paper", "dataset", "reported", "ours_mean"]].values.tolist() == [
        ["Toy", "digits", 11.0, 12.0]
    ]
    assert len(not_run) == N_CLAIMS


# --- bad input -------------------------------------------------------------------------

HEADER = CLAIMS.read_text().splitlines()[0]
GOOD = EXTRA_LINE


def _bad(column: str, value: str) -> str:
    cells = GOOD.split(",")
    cells[HEADER.split(",").index(column)] = value
    return ",".join(cells)


@pytest.mark.parametrize(
    ("line", "column", "value", "choices"),
    [
        (_bad("value", "3.2x"), "value", "3.2x", "a finite number"),
        (_bad("value", "nan"), "value", "nan", "a finite number"),
        (_bad("task", "gan"), "task", "gan", "['generation', 'classification', 'ood']"),
        (_bad("fid_mode", "tf"), "fid_mode", "tf", "'legacy-tensorflow', 'clean', 'vgg16'"),
        (_bad("n_real", "all"), "n_real", "all", "a positive integer, 'full' or 'unstated'"),
        (_bad("n_gen", "0"), "n_gen", "0", "a positive integer or 'unstated'"),
        (_bad("seeds", "three"), "seeds", "three", "a positive integer or 'unstated'"),
        (_bad("reference_split", "training"), "reference_split", "training", "'val', 'test'"),
        (_bad("paper", ""), "paper", "", "a non-empty value"),
        (_bad("run_arch", ""), "run_arch", "", "all of ['run_dataset', 'run_arch', 'run_method']"),
    ],
)
def test_bad_cell_names_file_line_column_value_and_choices(tmp_path, line, column, value, choices):
    path = _write(tmp_path, f"{HEADER}\n{GOOD}\n\n{line}\n")  # the blank line 3 still counts
    with pytest.raises(ValueError) as err:
        load_claims(path)
    message = str(err.value)
    assert message.startswith(f"{path}, line 4, column '{column}': got {value!r}; expected ")
    assert choices in message


def test_missing_columns_are_named(tmp_path):
    header = HEADER.replace(",fid_mode", "").replace(",seeds", "")
    path = _write(tmp_path, header + "\n")
    with pytest.raises(ValueError, match=r"missing columns \['fid_mode', 'seeds'\]") as err:
        load_claims(path)
    assert str(path) in str(err.value)


def test_duplicate_claim_and_cell_count_are_rejected(tmp_path):
    path = _write(tmp_path, f"{HEADER}\n{GOOD}\n{GOOD.replace(',11.0,', ',12.0,')}\n")
    with pytest.raises(ValueError, match=r"line 3: the claim .* is already on line 2"):
        load_claims(path)
    path = _write(tmp_path, f"{HEADER}\n{GOOD},extra\n", "short.csv")
    with pytest.raises(ValueError, match=r"short.csv, line 2: 26 cells; the header has 25"):
        load_claims(path)


# --- matching --------------------------------------------------------------------------


@pytest.fixture()
def matched():
    """The real registry against hand-built runs of each runnable (dataset, method)."""
    summary = pd.DataFrame(
        [
            _summary_row("ffhq256", "vanilla", 4.0, 0.3, 3.5, 4.5, 3),
            _summary_row("ffhq256", "glead", 3.0, math.nan, math.nan, math.nan, 1),
            _summary_row("lsun-church", "vanilla", 5.0, 0.1, 4.9, 5.1, 2),
            _summary_row("lsun-church", "glead", 5.0, 0.1, 4.9, 5.1, 2),
            _summary_row("lsun-bedroom", "vanilla", 5.0, 0.1, 4.9, 5.1, 2),
            _summary_row("lsun-bedroom", "glead", math.nan, math.nan, math.nan, math.nan, 0),
        ]
    )
    summary.attrs["confidence"] = 0.95
    protocols = {
        ("ffhq256", "stylegan2", "vanilla"): _protocol(),
        ("ffhq256", "stylegan2", "glead"): _protocol(),
        ("lsun-church", "stylegan2", "vanilla"): _protocol(n_gen=10000, n_real=126227),
        ("lsun-church", "stylegan2", "glead"): _protocol(n_real=1000, split="test"),
        ("lsun-bedroom", "stylegan2", "vanilla"): _protocol(
            n_real=3000, backbone="inception-clean"
        ),
        ("lsun-bedroom", "stylegan2", "glead"): _protocol(n_real=50000),
    }
    return match_claims(load_claims(CLAIMS), summary, protocols)


def test_matching_claim_gets_hand_computed_deviation(matched):
    reproduced, _ = matched
    assert reproduced["method"].tolist() == ["vanilla", "glead"]
    first = reproduced.iloc[0]
    assert first[["paper", "table", "dataset", "arch", "metric", "protocol"]].tolist() == [
        "GLeaD",
        "1",
        "ffhq256",
        "stylegan2",
        "FID",
        "fid50k_full",
    ]
    assert first["reported"] == 3.79 and first["ours_mean"] == 4.0 and first["n_seeds"] == 3
    assert first["deviation"] == pytest.approx(0.21)
    assert first["deviation_pct"] == pytest.approx(0.21 / 3.79 * 100)
    assert first["within_ci"] is True  # 3.5 <= 3.79 <= 4.5
    single = reproduced.iloc[1]  # one seed: no CI, so inside-CI is undefined
    assert single["deviation"] == pytest.approx(3.0 - 3.24) and single["within_ci"] is None


def test_not_run_claims_have_precise_reasons(matched):
    _, not_run = matched
    reason = {
        (r.dataset, r.method, r.metric): r.reason for r in not_run.itertuples() if r.metric == "FID"
    }
    assert reason[("LSUN Church", "StyleGAN2", "FID")] == (
        "protocol differs: n_gen ours 10000, claim 50000"
    )
    assert reason[("LSUN Church", "GLeaD", "FID")] == (
        "protocol differs: n_real ours 1000 (test split), claim full; "
        "reference_split ours test, claim train"
    )
    assert reason[("LSUN Bedroom", "StyleGAN2", "FID")] == (
        "protocol differs: fid_mode ours clean, claim legacy-tensorflow; "
        "n_real ours 3000, claim 50000"
    )
    assert reason[("LSUN Bedroom", "GLeaD", "FID")] == "metric fid not measured"
    assert reason[("FFHQ", "GGDR", "FID")] == "GGDR is not implemented in this harness"
    assert "VGG16" in not_run[not_run["metric"] == "precision"]["reason"].iloc[0]
    assert len(not_run) == N_CLAIMS - 2 and not_run["reason"].str.len().min() > 0


def test_missing_runs_and_other_backbones_are_named():
    claims = load_claims(CLAIMS)
    _, not_run = match_claims(claims, pd.DataFrame(), {})
    ffhq = not_run[(not_run["dataset"] == "FFHQ") & (not_run["metric"] == "FID")]
    assert ffhq["reason"].iloc[0] == "no runs of ffhq256/stylegan2/vanilla in this profile"
    summary = pd.DataFrame([_summary_row("ffhq256", "vanilla", 4.0, 0.3, 3.5, 4.5, 3)])
    digits = {("ffhq256", "stylegan2", "vanilla"): _protocol(backbone="digits-cnn")}
    _, not_run = match_claims(claims, summary, digits)
    assert not_run["reason"].iloc[0] == "protocol differs: fid_mode ours digits-cnn, claim " + (
        "legacy-tensorflow"
    )


def test_protocols_from_runs_takes_each_group_protocol():
    runs = pd.DataFrame(
        {
            "dataset": ["d", "d", "e"],
            "arch": ["a", "a", "a"],
            "method": ["m", "m", "m"],
            "backbone": [TF, TF, "inception-clean"],
            "resize": ["legacy_tensorflow", "legacy_tensorflow", "clean"],
            "n_gen": [50000, 50000, 10000],
            "n_real": [70000, 70000, 5000],
            "reference_split": ["train", "train", "test"],
        }
    )
    assert protocols_from_runs(runs) == {
        ("d", "a", "m"): _protocol(),
        ("e", "a", "m"): _protocol(10000, 5000, "test", "inception-clean"),
    }


# --- tables ----------------------------------------------------------------------------


def test_written_tables_hold_every_claim(matched, tmp_path):
    reproduced, not_run = matched
    paths = write_claims_tables(reproduced, not_run, tmp_path)
    assert [p.name for p in paths] == [
        f"claims_{s}.{x}" for s in ("reproduced", "not_run") for x in ("csv", "md", "tex")
    ]
    back = pd.read_csv(paths[0])
    assert back["reported"].tolist() == [3.79, 3.24] and back["ours_mean"].tolist() == [4.0, 3.0]
    assert len(pd.read_csv(paths[3])) == N_CLAIMS - 2
    markdown = paths[1].read_text()
    assert "4.00 ± 0.30 [3.50, 4.50]" in markdown and "+0.21 (+5.5%)" in markdown
    assert "3.00 (single seed)" in markdown and "n/a (no CI)" in markdown
    tex = paths[2].read_text()
    assert r"fid50k\_full" in tex and "fid50k_full" not in tex
    assert r"4.00 $\pm$ 0.30" in tex
    assert r"n\_gen ours 10000" in paths[5].read_text()


def test_empty_reproduced_table_is_written_and_says_so(tmp_path):
    _, not_run = match_claims(load_claims(CLAIMS), pd.DataFrame(), {})
    reproduced, _ = match_claims(load_claims(CLAIMS), pd.DataFrame(), {})
    paths = write_claims_tables(reproduced, not_run, tmp_path)
    assert paths[0].read_text().splitlines() == [
        "paper,table,dataset,arch,method,metric,protocol,reported,ours_mean,ours_std,"
        "ours_ci_low,ours_ci_high,n_seeds,deviation,deviation_pct,within_ci"
    ]
    assert (
        "No claim's protocol can be run by this profile" in paths[1].read_text()
        and "|" not in paths[1].read_text()
    )
    assert "paper & table" in paths[2].read_text()
    assert len(pd.read_csv(paths[3])) == N_CLAIMS
