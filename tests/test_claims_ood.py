"""OOD claims (ODIN, Table 2): their registry keys, their checks, and their match against
the aggregated OOD tables written by the real aggregation from hand-written ``ood.json``
files, with expected cells worked out by hand."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from adaptivemix.io import write_json
from adaptivemix.report.claims import load_claims, load_ood_tables, match_claims
from adaptivemix.report.classify import ood_reports
from adaptivemix.report.reproduction import reproduction_tables
from tests.conftest import REPO_ROOT

CLAIMS = REPO_ROOT / "config" / "claims.csv"
ARCH = "wrn-official-28-10"
ISUN = "CIFAR-10 vs iSUN"


def _ood_run(root: Path, seed: int, rows: dict) -> Path:
    """rows: (detector, OOD set) -> (benchmark, metrics as fractions)."""
    run_dir = root / "runs/classify/cifar10" / ARCH / "erm" / f"seed{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    results = []
    for (detector, name), (benchmark, metrics) in rows.items():
        proto = {"label": f"{benchmark}: far-OOD '{name}'", "benchmark": benchmark,
                 "group": "far"}  # fmt: skip
        results.append({"detector": detector, "ood_set": name, "protocol": proto,
                        "protocol_fingerprint": f"{benchmark}-{name}", "metrics": metrics,
                        "roc_tpr": [0.0, 0.5, 1.0]})  # fmt: skip
    record = {"task": "ood", "dataset": "cifar10", "arch": ARCH, "method": "erm", "seed": seed,
              "status": "ok", "roc_fpr_grid": [0.0, 0.5, 1.0], "results": results}  # fmt: skip
    return write_json(run_dir / "ood.json", record)


def _metrics(auroc, fpr95, det_acc) -> dict:
    return {"auroc": auroc, "fpr95": fpr95, "tnr95": None if fpr95 is None else 1 - fpr95,
            "detection_acc": det_acc, "aupr_in": 0.9, "aupr_out": 0.9}  # fmt: skip


@pytest.fixture(scope="module")
def ood_table(tmp_path_factory) -> Path:
    """ood_cifar10.csv as aggregate-classify writes it: MSP and ODIN on odin-isun (the odin
    benchmark; ODIN's FPR95 undefined in both seeds), MSP and ODIN on odin-lsun-crop under
    another benchmark."""
    root = tmp_path_factory.mktemp("ood")
    lsun = ("openood-v1.5", _metrics(0.9, 0.3, 0.9))
    paths = []
    for seed, auroc, fpr, acc in ((0, 0.92, 0.40, 0.86), (1, 0.93, 0.42, 0.88)):
        rows = {
            ("msp", "odin-isun"): ("odin", _metrics(auroc, fpr, acc)),
            ("odin", "odin-isun"): ("odin", _metrics(0.95, None, 0.9)),
            ("msp", "odin-lsun-crop"): lsun,
            ("odin", "odin-lsun-crop"): lsun,
        }
        paths.append(_ood_run(root, seed, rows))
    ood_reports(paths, root / "tables", root / "figures", ["erm"], "erm")
    return root / "tables" / "ood_cifar10.csv"


def test_registry_holds_odin_table_2_keyed_to_erm_runs():
    claims = load_claims(CLAIMS)
    odin = claims[claims["paper"] == "ODIN"]
    assert len(odin) == 50 and set(odin["task"]) == {"ood"}
    assert set(odin["run_arch"]) == {ARCH} and set(odin["run_method"]) == {"erm"}
    assert set(odin["ood_benchmark"]) == {"odin"} and set(odin["not_runnable"]) == {""}
    assert odin.groupby("run_dataset").size().to_dict() == {"cifar10": 30, "cifar100": 20}
    assert odin.groupby("run_detector").size().to_dict() == {"msp": 25, "odin": 25}
    assert sorted(set(odin["run_ood_set"])) == [
        "odin-isun", "odin-lsun-crop", "odin-lsun-resize", "odin-tinyimagenet-crop",
        "odin-tinyimagenet-resize",
    ]  # fmt: skip
    # one line by hand: CIFAR-10 vs LSUN (resize), ODIN T = 1000, FPR at 95% TPR 17.6 %
    line = odin[(odin["dataset"] == "CIFAR-10 vs LSUN-resize") & (odin["run_detector"] == "odin")]
    line = line[line["metric"] == "FPR95 %"].iloc[0]
    assert line["value"] == 17.6 and line["run_ood_set"] == "odin-lsun-resize"
    others = claims[claims["task"] != "ood"]
    assert (others[["run_detector", "run_ood_set", "ood_benchmark"]] == "").all().all()


def _line(**cells) -> str:
    header = CLAIMS.read_text().splitlines()[0].split(",")
    values = dict.fromkeys(header, "")
    values |= {"paper": "Toy", "table": "1", "task": "ood", "dataset": "d vs o",
               "resolution": "32", "architecture": "a", "method": "m", "metric": "AUROC %",
               "value": "90", "protocol": "p", "n_gen": "unstated", "n_real": "unstated",
               "reference_split": "test", "fid_mode": "unstated", "seeds": "1",
               "run_dataset": "cifar10", "run_arch": ARCH, "run_method": "erm",
               "run_detector": "msp", "run_ood_set": "odin-isun",
               "ood_benchmark": "odin"}  # fmt: skip
    values |= cells
    return ",".join(header) + "\n" + ",".join(values[c] for c in header) + "\n"


@pytest.mark.parametrize(
    ("cells", "column", "expected"),
    [
        ({"run_ood_set": ""}, "run_ood_set", "a non-empty value on an 'ood' claim"),
        ({"metric": "FPR95"}, "metric", "one of ['auroc %', 'fpr95 %'"),
        ({"task": "generation"}, "run_detector", "empty except on an 'ood' claim with run keys"),
        (
            {"run_dataset": "", "run_arch": "", "run_method": ""},
            "run_detector",
            "empty except on an 'ood' claim with run keys",
        ),
    ],
)
def test_bad_ood_cells_are_named(tmp_path, cells, column, expected):
    path = tmp_path / "claims.csv"
    path.write_text(_line(**cells))
    with pytest.raises(ValueError, match=rf"line 2, column '{column}'") as err:
        load_claims(path)
    assert expected in str(err.value)
    good = tmp_path / "good.csv"
    good.write_text(_line())
    assert len(load_claims(good)) == 1


def test_odin_claims_against_aggregated_ood_table(ood_table):
    table = load_ood_tables([ood_table])
    assert set(table["benchmark"]) == {"odin", "openood-v1.5"}
    reproduced, not_run = match_claims(load_claims(CLAIMS), pd.DataFrame(), {}, table)
    # MSP on odin-isun (means over seeds 0 and 1, in %): FPR95 (40 + 42) / 2 = 41.0,
    # detection error 100 - (86 + 88) / 2 = 13.0, AUROC (92 + 93) / 2 = 92.5; ODIN's AUROC 95.
    got = {(r["method"], r["metric"]): r for r in reproduced.to_dict("records")}
    assert sorted(got) == [
        ("erm + msp", "AUROC %"), ("erm + msp", "FPR95 %"), ("erm + msp", "detection error %"),
        ("erm + odin", "AUROC %"), ("erm + odin", "detection error %"),
    ]  # fmt: skip
    assert set(reproduced["dataset"]) == {"cifar10 vs odin-isun"}
    fpr = got[("erm + msp", "FPR95 %")]
    assert fpr["reported"] == 40.6 and fpr["ours_mean"] == pytest.approx(41.0)
    assert fpr["deviation"] == pytest.approx(0.4) and fpr["n_seeds"] == 2
    error = got[("erm + msp", "detection error %")]
    assert error["ours_mean"] == pytest.approx(13.0) and error["deviation"] == pytest.approx(-0.2)
    acc = table[(table["detector"] == "msp") & (table["ood_set"] == "odin-isun")].iloc[0]
    assert error["ours_ci_low"] == pytest.approx(100 - acc["detection_acc_ci_high"])
    assert error["ours_ci_high"] == pytest.approx(100 - acc["detection_acc_ci_low"])
    assert error["ours_std"] == pytest.approx(acc["detection_acc_std"])
    assert got[("erm + msp", "AUROC %")]["deviation"] == pytest.approx(0.0)
    assert got[("erm + odin", "AUROC %")]["ours_mean"] == pytest.approx(95.0)
    reason = {(r.dataset, r.method, r.metric): r.reason for r in not_run.itertuples()}
    assert reason[(ISUN, "ODIN T=1000", "FPR95 %")] == "metric fpr95 not measured"
    assert reason[("CIFAR-10 vs LSUN-crop", "MSP (baseline)", "AUROC %")] == (
        "protocol differs: benchmark ours openood-v1.5, claim odin"
    )
    assert reason[("CIFAR-100 vs iSUN", "MSP (baseline)", "AUROC %")] == (
        "no OOD results of cifar100/wrn-official-28-10/erm with detector msp on odin-isun"
        " in this profile"
    )
    assert len(reproduced) + len(not_run) == len(load_claims(CLAIMS))


def test_reproduction_tables_read_the_ood_tables(ood_table, tmp_path):
    proto = {"label": "p", "split": "test", "n_test": 10000}
    metrics = write_json(tmp_path / "metrics.json", {
        "task": "classify", "dataset": "cifar10", "arch": ARCH, "method": "erm", "seed": 0,
        "status": "ok", "diverged_at_step": None, "steps": 10, "train_seconds": 1.0,
        "metrics": {"clean_acc": 0.96}, "protocol": proto, "protocol_fingerprint": "p",
    })  # fmt: skip
    paths = reproduction_tables([metrics], CLAIMS, tmp_path, [ood_table])
    back = pd.read_csv(paths[0])
    assert len(back) == 5 and set(back["paper"]) == {"ODIN"}
    markdown = paths[1].read_text()
    assert "41.00 ± 1.41" in markdown and "+0.40" in markdown  # sample std of 40, 42
