"""Comparing a fresh results tree with a reference: hand-written trees, hand-picked changes.

Each test changes one thing in a copy of a small tree and checks that exactly that is
reported (file, row, column and both values), or that nothing is when it is within
tolerance. Expected differences are worked out by hand from the numbers written here.
"""

from __future__ import annotations

import json
import platform
import shutil
from pathlib import Path

import pytest

from adaptivemix.provenance import library_versions
from adaptivemix.report.compare import (
    compare_results,
    cpu_model,
    read_reference_record,
    same_machine,
    write_reference_record,
)

GAN_CSV = """task,dataset,arch,method,fid_mean,fid_std,n_seeds,protocol
gan,digits,dcgan,vanilla,15.5,5.0,3,"digits-cnn/native, 5000 gen vs 1257 train"
gan,digits,dcgan,adaptivemix,12.25,,1,"digits-cnn/native, 5000 gen vs 1257 train"
"""
CURVE_CSV = """dataset,arch,method,step,mean,min,max,n_seeds
digits,dcgan,vanilla,75,88.0,53.0,132.0,3
digits,dcgan,vanilla,150,40.0,30.0,50.0,3
"""


def make_tree(root: Path) -> Path:
    for name, text in {
        "tables/gan_digits.csv": GAN_CSV,
        "tables/gan_digits.md": "| table |\n",
        "figures/fid_curve_digits.csv": CURVE_CSV,
        "figures/fid_curve_digits.png": "not really a png",
        "figures/fid_curve_digits.pdf": "not really a pdf",
    }.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


@pytest.fixture
def trees(tmp_path: Path) -> tuple[Path, Path]:
    reference = make_tree(tmp_path / "reference")
    fresh = tmp_path / "fresh"
    shutil.copytree(reference, fresh)
    return reference, fresh


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def test_identical_trees_agree(trees):
    assert compare_results(*trees, rtol=0.0, atol=0.0) == []


def test_cell_beyond_tolerance_is_named(trees):
    reference, fresh = trees
    edit(fresh / "tables/gan_digits.csv", "12.25", "12.5")  # off by 0.25
    # allowed: 1e-9 + 0.01 * 12.25 = 0.1225 < 0.25
    problems = compare_results(reference, fresh, rtol=0.01, atol=1e-9)
    assert len(problems) == 1
    text = problems[0]
    assert text.startswith("tables/gan_digits.csv: row ")
    assert "method=adaptivemix" in text and "column fid_mean" in text
    assert "12.25" in text and "12.5" in text


def test_cell_within_tolerance_agrees(trees):
    reference, fresh = trees
    edit(fresh / "figures/fid_curve_digits.csv", "88.0", "88.00001")  # 1e-5 <= 8.8e-5 + 1e-9
    assert compare_results(reference, fresh, rtol=1e-6, atol=1e-9) == []
    edit(fresh / "tables/gan_digits.csv", "12.25", "12.36")  # 0.11 <= 0.1225
    assert compare_results(reference, fresh, rtol=0.01, atol=1e-9) == []


def test_nan_equals_nan_but_not_a_number(trees):
    reference, fresh = trees
    # the empty fid_std of adaptivemix (one seed) is NaN in both: equal
    assert compare_results(reference, fresh, rtol=0.0, atol=0.0) == []
    edit(fresh / "tables/gan_digits.csv", "12.25,,1", "12.25,0.5,1")
    problems = compare_results(reference, fresh, rtol=0.5, atol=1.0)
    assert len(problems) == 1 and "column fid_std: reference NaN vs fresh 0.5" in problems[0]


def test_missing_and_extra_files_are_named(trees):
    reference, fresh = trees
    (fresh / "figures/fid_curve_digits.png").unlink()
    (fresh / "tables/new_table.csv").write_text("a\n1\n")
    problems = compare_results(reference, fresh, rtol=0.0, atol=0.0)
    assert problems == [
        "figures/fid_curve_digits.png: missing in the fresh run",
        "tables/new_table.csv: not in the reference",
    ]


def test_extra_and_missing_rows_are_named(trees):
    reference, fresh = trees
    curve = fresh / "figures/fid_curve_digits.csv"
    curve.write_text(CURVE_CSV + "digits,dcgan,vanilla,225,30.0,20.0,40.0,3\n")
    edit(fresh / "tables/gan_digits.csv", "gan,digits,dcgan,vanilla,", "gan,digits,dcgan,mixup,")
    problems = compare_results(reference, fresh, rtol=0.0, atol=0.0)
    assert len(problems) == 3
    assert "figures/fid_curve_digits.csv: row (" in problems[0]
    assert "step=225" in problems[0] and problems[0].endswith("not in the reference")
    assert "method=vanilla" in problems[1] and problems[1].endswith("missing in the fresh run")
    assert "method=mixup" in problems[2] and problems[2].endswith("not in the reference")


def test_changed_string_and_columns_are_named(trees):
    reference, fresh = trees
    edit(fresh / "tables/gan_digits.csv", "5000 gen", "1000 gen")
    problems = compare_results(reference, fresh, rtol=1.0, atol=1.0)
    assert len(problems) == 1
    assert "method=vanilla" in problems[0] and "column protocol" in problems[0]
    assert "5000 gen" in problems[0] and "1000 gen" in problems[0]
    edit(fresh / "figures/fid_curve_digits.csv", ",n_seeds\n", ",n_runs\n")
    problems = compare_results(reference, fresh, rtol=1.0, atol=1.0)
    assert "figures/fid_curve_digits.csv: columns missing in the fresh run: ['n_seeds']" in problems
    assert "figures/fid_curve_digits.csv: columns not in the reference: ['n_runs']" in problems


def test_rows_are_matched_by_key_not_position(trees):
    reference, fresh = trees
    lines = CURVE_CSV.splitlines()
    (fresh / "figures/fid_curve_digits.csv").write_text("\n".join([lines[0], *lines[:0:-1]]))
    assert compare_results(reference, fresh, rtol=0.0, atol=0.0) == []


def test_run_dependent_columns_are_ignored(trees):
    reference, fresh = trees
    (reference / "tables/times.csv").write_text("method,train_seconds,x\na,1.0,2\n")
    (fresh / "tables/times.csv").write_text("method,train_seconds,x\na,99.0,2\n")
    assert compare_results(reference, fresh, rtol=0.0, atol=0.0) == []


def test_pictures_are_not_compared_pixel_by_pixel(trees):
    reference, fresh = trees
    (fresh / "figures/fid_curve_digits.png").write_text("other pixels")
    assert compare_results(reference, fresh, rtol=0.0, atol=0.0) == []


def test_empty_reference_and_bad_tolerance_are_refused(tmp_path, trees):
    with pytest.raises(ValueError, match="no files"):
        compare_results(tmp_path / "nothing", trees[1], rtol=0.0, atol=0.0)
    with pytest.raises(ValueError, match="rtol=-1"):
        compare_results(*trees, rtol=-1, atol=0.0)


def test_reference_record_round_trip(tmp_path):
    path = write_reference_record(tmp_path, command=["snakemake", "--cores", "2"])
    record = json.loads(path.read_text())
    assert record["command"] == ["snakemake", "--cores", "2"]
    assert record["python"] == platform.python_version()
    assert record["libraries"]["torch"] == library_versions()["torch"]
    assert record["cpu_model"] and "code_version" in record
    assert read_reference_record(tmp_path) == record
    assert read_reference_record(tmp_path / "none") is None
    assert same_machine(record)
    assert not same_machine({**record, "cpu_model": "Some Other CPU"})
    libraries = {**record["libraries"], "numpy": "0.0.1"}
    assert not same_machine({**record, "libraries": libraries})
    assert not same_machine(None)


def test_cpu_model_matches_proc_cpuinfo():
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.is_file():
        pytest.skip("no /proc/cpuinfo")
    lines = [x for x in cpuinfo.read_text().splitlines() if x.startswith("model name")]
    if lines:
        assert cpu_model() == lines[0].partition(":")[2].strip()


def test_table_without_key_columns_names_rows_by_number(trees):
    """A CSV with none of the key columns (none of its columns names a row) is matched row by row; a
    difference names the row's number."""
    reference, fresh = trees
    (reference / "figures/grid.csv").write_text("u,v\n0.0,0.1\n0.5,0.7\n")
    (fresh / "figures/grid.csv").write_text("u,v\n0.0,0.1\n0.5,0.9\n")
    problems = compare_results(reference, fresh, rtol=0.0, atol=0.01)
    assert len(problems) == 1
    assert problems[0].startswith("figures/grid.csv: row #2 column v: reference 0.7")
    assert "0.9" in problems[0]
