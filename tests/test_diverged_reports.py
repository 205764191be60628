"""A method, dataset or seed whose runs all diverged is a row that says so, never a crash.

Issue 16, item 2: runs that diverged (a GAN at ``lr_g = lr_d = 1e30``, a classifier at
``lr = 1000``) wrote ``status: diverged`` as promised, then the aggregation failed on them
(a truncated SVD of NaN features; a ROC figure with no rows) and the DAG stopped with no
tables. Here every table and figure function gets all-diverged input, then both
aggregations get it end to end from run files written by hand in the trainers' format
(null metrics, NaN features, ``val_acc`` -1 for a classifier with no selection, ``ood.json``
without ROC); the last test drives the real Snakemake DAG with a method of each track that
diverges beside a healthy one. Expected cells and counts are worked out by hand.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from adaptivemix.io import write_json
from adaptivemix.report.aggregate import aggregate_gan
from adaptivemix.report.bars import bar_figure
from adaptivemix.report.claims import _unmeasured
from adaptivemix.report.classify import aggregate_classify
from adaptivemix.report.collect import collect_runs
from adaptivemix.report.figures import plot_metric_curves, sample_grid_figure
from adaptivemix.report.layouts import generation_layout, paired_layout
from adaptivemix.report.selection_bias import selection_bias_table
from adaptivemix.report.shrinkage import pca_2d, projection_figure
from adaptivemix.report.tables import format_shown, summary_table
from tests.helpers import copy_project, smoke_config

PROTOCOL = {"backbone": "digits-cnn", "resize": "native", "n_gen": 300, "n_real": 1257,
            "reference_split": "train"}  # fmt: skip


# --- run files in the trainers' format ---------------------------------------------------


def gan_run(root: Path, dataset: str, method: str, seed: int, fid: float | None) -> Path:
    """A GAN run folder; ``fid`` None: diverged at step 30 (null metrics, NaN features, log
    up to step 20 with one evaluation at step 10), else finished at step 40."""
    run_dir = root / "runs/gan" / dataset / "dcgan" / method / f"seed{seed}"
    run_dir.mkdir(parents=True)
    ok = fid is not None
    metrics = {"fid": fid, "kid": 0.01 if ok else None, "feature_spread": 0.5 if ok else None,
               "spread_vs_noise": 0.2 if ok else None}  # fmt: skip
    write_json(run_dir / "metrics.json", {
        "task": "gan", "dataset": dataset, "arch": "dcgan", "method": method, "seed": seed,
        "status": "ok" if ok else "diverged", "diverged_at_step": None if ok else 30,
        "steps": 40 if ok else 29, "train_seconds": 1.0, "metrics": metrics,
        "protocol": PROTOCOL, "protocol_fingerprint": "fp",
    })  # fmt: skip
    log = [{"step": 10, "fid": 50.0 + seed, "feature_spread": 0.7, "spread_vs_noise": 0.3},
           {"step": 20, "d_loss": 1.0}]  # fmt: skip
    log += (
        [{"step": 40, "fid": fid, "feature_spread": 0.5, "spread_vs_noise": 0.2}]
        if ok
        else [{"step": 30, "status": "diverged"}]
    )
    (run_dir / "log.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    rng = np.random.default_rng(seed)
    real, fake = rng.normal(size=(2, 8, 4))
    if not ok:  # a D whose weights blew up gives NaN features
        real, fake = np.full_like(real, np.nan), np.full_like(fake, np.nan)
    np.savez(run_dir / "d_features.npz", real=real, fake=fake,
             feature_spread=np.float64(0.5 if ok else np.nan),
             spread_vs_noise=np.float64(0.2 if ok else np.nan))  # fmt: skip
    pixels = rng.integers(0, 256, (16, 16), dtype=np.uint8)
    Image.fromarray(pixels).save(run_dir / "samples.png")
    return run_dir / "metrics.json"


def cls_run(root: Path, dataset: str, method: str, seed: int, acc: float | None) -> list[Path]:
    """metrics.json and ood.json of a classifier run; ``acc`` None: diverged at epoch 1
    (null accuracies, ``val_acc`` -1 as the trainer records no selection, no ROC)."""
    run_dir = root / "runs/classify" / dataset / "wrn-10-1" / method / f"seed{seed}"
    run_dir.mkdir(parents=True)
    ok = acc is not None
    status = "ok" if ok else "diverged"
    accs = {"clean_acc": acc, "fgsm_acc": acc / 2 if ok else None, "val_acc": acc if ok else -1}
    chosen = {"epoch": 1, "step": 10, "val_acc": acc, "test_acc": acc} if ok else None
    selection = {"protocol": "val", "optimistic": False, "n_evaluations": int(ok),
                 "val_selected": chosen, "best_test": chosen,
                 "test_optimism": 0.0 if ok else None}  # fmt: skip
    head = {"dataset": dataset, "arch": "wrn-10-1", "method": method, "seed": seed,
            "status": status}  # fmt: skip
    metrics = write_json(run_dir / "metrics.json", head | {
        "task": "classify", "diverged_at_step": None if ok else 1, "steps": 10,
        "train_seconds": 1.0, "metrics": accs, "selection": selection,
        "protocol": {"label": "test split"}, "protocol_fingerprint": "acc",
    })  # fmt: skip
    value = (lambda v: v) if ok else (lambda v: None)
    results = [{
        "detector": "msp", "ood_set": "noise", "protocol_fingerprint": "noise",
        "protocol": {"label": "noise", "benchmark": "embedded", "group": "far"},
        "metrics": {m: value(0.9) for m in ("auroc", "fpr95", "tnr95", "detection_acc",
                                            "aupr_in", "aupr_out")},
        "roc_tpr": [0.0, 0.8, 1.0] if ok else None,
    }]  # fmt: skip
    ood = write_json(run_dir / "ood.json", head | {
        "task": "ood", "roc_fpr_grid": [0.0, 0.5, 1.0], "results": results,
    })  # fmt: skip
    return [metrics, ood]


# --- tables -------------------------------------------------------------------------------


@pytest.fixture
def gan_runs(tmp_path) -> list[Path]:
    """digits: vanilla finished (fid 10, 12), blowup diverged on both seeds; letters: every
    run diverged."""
    paths = [gan_run(tmp_path, "digits", "vanilla", s, 10.0 + 2 * s) for s in (0, 1)]
    paths += [gan_run(tmp_path, "digits", "blowup", s, None) for s in (0, 1)]
    paths += [gan_run(tmp_path, "letters", m, 0, None) for m in ("vanilla", "blowup")]
    return paths


def test_summary_counts_diverged_and_shows_diverged(gan_runs) -> None:
    table = summary_table(collect_runs(gan_runs)).set_index(["dataset", "method"])
    assert table.loc[("digits", "blowup"), ["n_seeds", "n_diverged"]].tolist() == [0, 2]
    assert table.loc[("digits", "vanilla"), ["n_seeds", "n_diverged"]].tolist() == [2, 0]
    assert math.isnan(table.loc[("digits", "blowup"), "fid_mean"])
    shown = format_shown(summary_table(collect_runs(gan_runs))).set_index(["dataset", "method"])
    fid = next(c for c in shown.columns if c.startswith("fid"))
    assert shown.loc[("digits", "blowup"), fid] == "diverged"
    assert shown.loc[("letters", "vanilla"), fid] == "diverged"
    assert shown.loc[("digits", "vanilla"), fid].startswith("11.00 ± 1.41")


def test_a_diverged_runs_recorded_values_are_never_read(tmp_path) -> None:
    paths = cls_run(tmp_path, "d", "erm", 0, None)[:1]
    assert math.isnan(collect_runs(paths).loc[0, "val_acc"])  # recorded -1


def test_generation_layout_marks_diverged_groups(gan_runs) -> None:
    summary = summary_table(collect_runs(gan_runs))
    data, shown, markdown = generation_layout(summary)
    rows = shown.set_index("method")
    assert rows.loc["blowup", "fid digits"] == "diverged"
    assert rows.loc["vanilla", "fid letters"] == "diverged"  # a dataset where all diverged
    assert rows.loc["vanilla", "fid digits"] == "11.00 ± 1.41"
    letters = data[(data["dataset"] == "letters") & (data["metric"] == "fid")]
    assert letters["method"].tolist() == ["vanilla", "blowup"] and letters["mean"].isna().all()
    assert "diverged: no seed finished" in markdown


def test_generation_layout_when_every_run_diverged(tmp_path) -> None:
    paths = [gan_run(tmp_path, "digits", m, 0, None) for m in ("vanilla", "blowup")]
    _, shown, _ = generation_layout(summary_table(collect_runs(paths)))
    assert shown["fid digits"].tolist() == ["diverged", "diverged"]


def test_paired_cells_say_which_side_diverged(gan_runs, tmp_path) -> None:
    runs = collect_runs(gan_runs)
    data, shown, _ = paired_layout(runs, ["fid", "kid"], "vanilla")
    cells = shown.set_index("dataset")["fid diff ↓"]
    assert cells["digits"] == "no pair: method diverged"
    assert cells["letters"] == "no pair: both diverged"  # no finished run there at all
    assert (data["n_pairs"] == 0).all()
    # the baseline diverged on every seed, the method finished
    more = [gan_run(tmp_path / "b", "digits", "vanilla", 0, None)]
    more += [gan_run(tmp_path / "b", "digits", "mix", 0, 9.0)]
    _, shown, _ = paired_layout(collect_runs(more), ["fid"], "vanilla")
    assert shown["fid diff ↓"].tolist() == ["no pair: baseline diverged"]


def test_selection_bias_shows_diverged(tmp_path) -> None:
    paths = [cls_run(tmp_path, "d", "erm", 0, 0.9)[0], cls_run(tmp_path, "d", "blowup", 0, None)[0]]
    selection_bias_table(paths, tmp_path / "selection_bias")
    data = pd.read_csv(tmp_path / "selection_bias.csv")
    summary = data[data["row"] == "mean over seeds"].set_index("method")
    assert summary.loc["blowup", ["n_seeds", "n_diverged"]].tolist() == [0, 1]
    md = (tmp_path / "selection_bias.md").read_text()
    per_method = md.split("### Per method")[1].split("### Per run")[0]
    blowup = next(line for line in per_method.splitlines() if "| blowup" in line)
    assert blowup.count("| diverged") == 3
    per_run = next(line for line in md.split("### Per run")[1].splitlines() if "blowup" in line)
    assert "not recorded" not in per_run and "| diverged" in per_run


def test_claim_of_a_diverged_method_says_so() -> None:
    claim = {"metric": "FID", "task": "generation"}
    diverged = {"fid_mean": math.nan, "n_seeds": 0, "n_diverged": 2}
    assert _unmeasured(claim, diverged) == "every run diverged (2 seeds), no finished seed"
    assert _unmeasured(claim, {"fid_mean": math.nan, "n_seeds": 0}) == "metric fid not measured"


# --- figures ------------------------------------------------------------------------------


def test_pca_refuses_non_finite_features() -> None:
    x = np.ones((4, 3))
    x[1, 2] = np.nan
    with pytest.raises(ValueError, match="finite"):
        pca_2d(x)


def test_projection_skips_nan_features_with_a_note(gan_runs, tmp_path, capsys) -> None:
    digits = tmp_path / "runs/gan/digits/dcgan"
    runs = {"vanilla": digits / "vanilla/seed0", "blowup": digits / "blowup/seed0"}
    png = projection_figure(runs, tmp_path / "fig/p.png", "t")
    assert set(pd.read_csv(png.with_suffix(".csv"))["panel"]) == {"vanilla"}
    assert "no panel: blowup" in capsys.readouterr().err
    only_nan = projection_figure({"blowup": runs["blowup"]}, tmp_path / "fig/q.png", "t")
    assert only_nan.is_file() and only_nan.with_suffix(".pdf").is_file()
    assert pd.read_csv(only_nan.with_suffix(".csv")).empty


def test_empty_curves_and_samples_become_a_page_with_the_note(tmp_path, capsys) -> None:
    empty = pd.DataFrame(columns=["task", "dataset", "arch", "method", "seed", "step",
                                  "metric", "value"])  # fmt: skip
    png = plot_metric_curves(empty, "fid", tmp_path / "c.png", "FID", note="diverged: x")
    assert png.is_file() and png.with_suffix(".pdf").is_file()
    assert pd.read_csv(png.with_suffix(".csv")).empty
    grid = sample_grid_figure({}, tmp_path / "s.png", "samples", note="diverged: x")
    assert grid.is_file()
    assert capsys.readouterr().err.count("diverged: x") == 2
    with pytest.raises(ValueError, match="no sample images"):
        sample_grid_figure({}, tmp_path / "s2.png", "samples")  # nothing and no reason


def test_bars_leave_out_diverged_methods_with_a_note(gan_runs, tmp_path, capsys) -> None:
    summary = summary_table(collect_runs(gan_runs))
    png = bar_figure(summary, "fid", tmp_path / "bars.png", "FID")
    drawn = pd.read_csv(png.with_suffix(".csv"))
    assert drawn[["dataset", "method"]].values.tolist() == [["digits", "vanilla"]]
    err = capsys.readouterr().err
    assert "no bar: digits/blowup, letters/vanilla, letters/blowup" in err
    nothing = summary[summary["dataset"] == "letters"]
    png = bar_figure(nothing, "fid", tmp_path / "none.png", "FID")
    assert png.is_file() and pd.read_csv(png.with_suffix(".csv")).empty


# --- whole aggregations -------------------------------------------------------------------


def test_aggregate_gan_writes_every_file_with_diverged_rows(gan_runs, tmp_path, capsys) -> None:
    tables, figures = tmp_path / "tables", tmp_path / "figures"
    written = aggregate_gan(gan_runs, tables, figures, ["vanilla", "blowup"])
    names = ("gan_digits", "gan_letters", "gan_summary", "generation", "gan_paired", "fid_trend")
    assert {p.name for p in written["tables"]} == {f"{n}.{x}" for n in names
                                                    for x in ("csv", "md", "tex")}  # fmt: skip
    expected = {"bars_fid.png"} | {f"samples_{d}.png" for d in ("digits", "letters")}
    for prefix in ("fid_curve", "shrinkage_curve", "shrinkage_projection"):
        expected |= {f"{prefix}_{d}.png" for d in ("digits", "letters")}
    assert expected <= {p.name for p in written["figures"]}
    assert all(p.is_file() for p in [*written["tables"], *written["figures"]])
    digits = pd.read_csv(tables / "gan_digits.csv").set_index("method")
    assert digits.loc["blowup", ["n_seeds", "n_diverged"]].tolist() == [0, 2]
    assert "| diverged" in (tables / "gan_letters.md").read_text()
    panels = pd.read_csv(figures / "shrinkage_projection_digits.csv")
    assert set(panels["panel"]) == {"vanilla (seed 0)"}  # NaN features never reach an SVD
    curve = pd.read_csv(figures / "fid_curve_digits.csv")
    assert curve[curve["method"] == "blowup"]["step"].tolist() == [10]  # up to divergence
    err = capsys.readouterr().err
    assert "samples_digits.png: diverged on every seed, no panel: blowup" in err
    assert "shrinkage_projection_letters.png: diverged on every seed" in err
    assert not list(tmp_path.glob(".*staging*"))


def test_aggregate_classify_with_a_diverged_method_and_dataset(tmp_path, capsys) -> None:
    paths = cls_run(tmp_path, "digits-0to5", "erm", 0, 0.9)
    paths += cls_run(tmp_path, "digits-0to5", "blowup", 0, None)
    paths += cls_run(tmp_path, "letters", "erm", 0, None)
    metrics, ood = paths[0::2], paths[1::2]
    tables, figures = tmp_path / "tables", tmp_path / "figures"
    written = aggregate_classify(metrics, ood, tables, figures, ["erm", "blowup"])
    names = {p.name for p in written}
    for stem in ("classify_digits-0to5", "classify_letters", "classify_summary",
                 "classify_paired", "selection_bias", "ood_digits-0to5", "ood_letters",
                 "ood_paired_digits-0to5", "ood_paired_letters"):  # fmt: skip
        assert {f"{stem}.{x}" for x in ("csv", "md", "tex")} <= names, stem
    assert {"bars_clean_acc.png", "roc_digits-0to5.png", "roc_letters.png"} <= names
    summary = pd.read_csv(tables / "classify_summary.csv").set_index(["dataset", "method"])
    assert summary.loc[("digits-0to5", "blowup"), ["n_seeds", "n_diverged"]].tolist() == [0, 1]
    assert summary.loc[("digits-0to5", "erm"), "clean_acc_mean"] == pytest.approx(90.0)
    assert "| diverged" in (tables / "classify_letters.md").read_text()
    paired = (tables / "classify_paired.md").read_text()
    assert "no pair: method diverged" in paired
    ood_table = pd.read_csv(tables / "ood_digits-0to5.csv").set_index("method")
    assert ood_table.loc["blowup", ["n_seeds", "n_diverged"]].tolist() == [0, 1]
    assert "| diverged" in (tables / "ood_letters.md").read_text()
    roc = pd.read_csv(figures / "roc_digits-0to5.csv")
    assert set(roc["method"]) == {"erm"}
    assert pd.read_csv(figures / "roc_letters.csv").empty
    err = capsys.readouterr().err
    assert "roc_digits-0to5.png: diverged on every seed, not drawn: blowup" in err
    assert "bars_clean_acc.png: diverged on every seed, no bar: digits-0to5/blowup" in err


def test_every_classifier_run_diverged(tmp_path) -> None:
    paths = cls_run(tmp_path, "digits-0to5", "erm", 0, None)
    paths += cls_run(tmp_path, "digits-0to5", "blowup", 0, None)
    written = aggregate_classify(paths[0::2], paths[1::2], tmp_path / "t", tmp_path / "f")
    assert {"bars_clean_acc.png", "classify_paired.md"} <= {p.name for p in written}
    assert pd.read_csv(tmp_path / "f/bars_clean_acc.csv").empty
    shown = (tmp_path / "t/classify_summary.md").read_text()
    assert shown.count("| diverged") == 2 * 3  # two methods, clean/fgsm/val accuracy each


def test_a_failed_aggregation_writes_nothing(gan_runs, tmp_path, monkeypatch) -> None:
    """Tables already written are not published when a later figure fails."""
    import adaptivemix.report.aggregate as aggregate

    def broken(*args, **kwargs):
        raise RuntimeError("figure failed")

    monkeypatch.setattr(aggregate, "bar_figure", broken)
    with pytest.raises(RuntimeError, match="figure failed"):
        aggregate_gan(gan_runs, tmp_path / "tables", tmp_path / "figures")
    assert not (tmp_path / "tables").exists() and not (tmp_path / "figures").exists()
    assert not list(tmp_path.glob(".*staging*"))


# --- the real DAG -------------------------------------------------------------------------

# Test-only methods, dropped into a copy of the project as a baseline file: each diverges as
# the runs did, beside a healthy method of its track.
DIVERGING_PLUGIN = '''\
"""Test-only methods that diverge (tests/test_diverged_reports.py)."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from adaptivemix.classify.methods import CLS_METHODS, ClsMethod
from adaptivemix.gan.methods import METHODS, GanMethod


@dataclass(frozen=True)
class BlowupOptions:
    after: int = 12  # D updates before D's weights turn NaN


@METHODS.register("blowup")
class Blowup(GanMethod):
    """Vanilla whose D weights turn NaN after ``after`` D updates, as a huge lr makes them."""

    Options = BlowupOptions

    def __init__(self, options=None):
        super().__init__(options)
        self.calls = 0

    def d_loss(self, ctx):
        self.calls += 1
        if self.calls > self.options.after:
            with torch.no_grad():
                for p in ctx.D.parameters():
                    p.fill_(float("nan"))
        return super().d_loss(ctx)


@CLS_METHODS.register("blowup")
class ClsBlowup(ClsMethod):
    """ERM with a NaN loss: diverges in its first epoch, as lr 1000 does."""

    def loss(self, model, batch):
        loss, logs = super().loss(model, batch)
        return loss * float("nan"), logs
'''


@pytest.fixture(scope="module")
def diverging_project(tmp_path_factory, repo_root):
    copy = tmp_path_factory.mktemp("project")
    copy_project(repo_root, copy)
    (copy / "baselines/diverging.py").write_text(DIVERGING_PLUGIN)
    config = smoke_config()
    config["profile"] = "diverged"
    config["data"]["datasets"] = ["digits"]
    config["gan"].update(methods=["vanilla", "blowup"], seeds=[0, 1], steps=20, eval_every=10,
                         checkpoint_every=10)  # fmt: skip
    config["gan"]["method_options"] = {"blowup": {"after": 12}}  # diverges at step 13
    config["classify"].update(methods=["erm", "blowup"], seeds=[0], epochs=1)
    config["classify"]["attacks"] = {"fgsm": {"eps": 0.1}}
    config["ood"] = {"sets": {"digits-0to5": ["noise"]}, "detectors": ["msp"]}
    (copy / "diverged.yaml").write_text(yaml.safe_dump(config))
    return copy


def snakemake(cwd: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "snakemake", "--configfile", "diverged.yaml", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=cwd)


@pytest.mark.heavy  # a whole DAG in a copy of the project: the slow tier
def test_dag_reports_a_diverged_method_of_each_track(diverging_project) -> None:
    project = diverging_project
    result = snakemake(project, "--cores", "2")
    assert result.returncode == 0, result.stderr[-4000:]
    out = project / "results/diverged"
    gan = pd.read_csv(out / "tables/gan_digits.csv").set_index("method")
    assert gan.loc["blowup", ["n_seeds", "n_diverged"]].tolist() == [0, 2]
    assert gan.loc["vanilla", ["n_seeds", "n_diverged"]].tolist() == [2, 0]
    assert "| diverged" in (out / "tables/gan_digits.md").read_text()
    assert "no pair: method diverged" in (out / "tables/gan_paired.md").read_text()
    cls = pd.read_csv(out / "tables/classify_digits-0to5.csv").set_index("method")
    assert cls.loc["blowup", ["n_seeds", "n_diverged"]].tolist() == [0, 1]
    assert cls.loc["erm", "n_seeds"] == 1
    assert "| diverged" in (out / "tables/classify_summary.md").read_text()
    for name in ("bars_fid", "fid_curve_digits", "shrinkage_projection_digits", "samples_digits",
                 "bars_clean_acc", "roc_digits-0to5"):  # fmt: skip
        assert (out / f"figures/{name}.png").stat().st_size > 0
    assert set(pd.read_csv(out / "figures/shrinkage_projection_digits.csv")["panel"]) == {
        "vanilla (seed 0)"
    }
    gan_log = (out / "logs/aggregate_gan.log").read_text()
    assert "samples_digits.png: diverged on every seed, no panel: blowup" in gan_log
    assert "shrinkage_projection_digits.png: diverged on every seed, no panel: blowup" in gan_log
    cls_log = (out / "logs/aggregate_classify.log").read_text()
    assert "roc_digits-0to5.png: diverged on every seed, not drawn: blowup" in cls_log
    # every table and figure is a declared output: a failed job leaves none of them stale
    untracked = snakemake(project, "--list-untracked")
    assert untracked.returncode == 0, untracked.stderr[-2000:]
    listed = (untracked.stdout + untracked.stderr).splitlines()
    outputs = ("results/diverged/tables/", "results/diverged/figures/")
    assert [line for line in listed if line.strip().startswith(outputs)] == []
