"""D's feature-space shrinkage: the measure, the probe, its place in training/evaluation and
the projection figure. Expected values are worked out by hand or by a second computation."""

from __future__ import annotations

import math
import shutil

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from sklearn.decomposition import PCA

from adaptivemix.config import GanRunConfig
from adaptivemix.data import save_prepared
from adaptivemix.data.base import as_float_images
from adaptivemix.gan.run import D_FEATURES_FILE, run_evaluation, run_training, save_d_features
from adaptivemix.io import read_json, read_jsonl, write_json
from adaptivemix.metrics.backbones import BACKBONE_TRAINERS, BACKBONES
from adaptivemix.metrics.fid import compute_reference_stats
from adaptivemix.metrics.shrinkage import DEFAULT_PROBE_SIZE, FeatureProbe, feature_spread
from adaptivemix.models import build_models
from adaptivemix.report.collect import collect_curves
from adaptivemix.report.shrinkage import projection_figure
from tests.helpers import tiny_run_config

PROBE_SCALARS = {
    "spread_vs_noise", "noise_separation", "feature_spread", "spread_real", "spread_fake",
    "feature_separation",
}  # fmt: skip
# a barely trained G's near-constant samples leave backbone features dead: singular covariance
SINGULAR = pytest.mark.filterwarnings("ignore:Matrix is singular")


# ---- the measure -------------------------------------------------------------------------


def test_hand_computed_example():
    # reals at distance 1 around (3, 4), fakes at the origin: spread 1, separation 5
    real = np.array([[4.0, 4.0], [2.0, 4.0], [3.0, 5.0], [3.0, 3.0]])
    fake = np.array([[-2.0, 0.0], [2.0, 0.0]])  # centroid (0, 0), each at distance 2
    got = feature_spread(real, fake)
    assert got["spread_real"] == pytest.approx(1.0, abs=1e-15)
    assert got["spread_fake"] == pytest.approx(2.0, abs=1e-15)
    assert got["separation"] == pytest.approx(5.0, abs=1e-15)
    assert got["feature_spread"] == pytest.approx(0.2, abs=1e-15)


def test_per_sample_maps_are_flattened_and_match_a_loop():
    gen = np.random.default_rng(3)
    real, fake = gen.normal(size=(7, 2, 3, 3)), gen.normal(1.0, 2.0, size=(5, 2, 3, 3))
    r, f = [list(a.reshape(len(a), -1)) for a in (real, fake)]
    c_r = [sum(v[k] for v in r) / len(r) for k in range(18)]
    c_f = [sum(v[k] for v in f) / len(f) for k in range(18)]
    dist = lambda a, b: math.sqrt(sum((x - y) ** 2 for x, y in zip(a, b, strict=True)))  # noqa: E731
    spread = sum(dist(v, c_r) for v in r) / len(r)
    sep = dist(c_r, c_f)
    got = feature_spread(torch.from_numpy(real).float(), torch.from_numpy(fake).float())
    assert got["spread_real"] == pytest.approx(spread, rel=1e-6)
    assert got["separation"] == pytest.approx(sep, rel=1e-6)
    assert got["feature_spread"] == pytest.approx(spread / sep, rel=1e-6)


def test_scale_and_translation_do_not_change_the_ratio():
    gen = np.random.default_rng(0)
    real, fake = gen.normal(size=(50, 6)), gen.normal(0.5, 1.0, size=(40, 6))
    shift = gen.normal(size=6) * 100
    base = feature_spread(real, fake)
    moved = feature_spread(real * 7.5 + shift, fake * 7.5 + shift)
    assert moved["feature_spread"] == pytest.approx(base["feature_spread"], rel=1e-10)
    assert moved["spread_real"] == pytest.approx(7.5 * base["spread_real"], rel=1e-10)
    assert moved["separation"] == pytest.approx(7.5 * base["separation"], rel=1e-10)


def test_coinciding_centroids_give_inf_and_bad_input_is_refused():
    real = np.array([[1.0, 0.0], [-1.0, 0.0]])
    fake = np.array([[0.0, 1.0], [0.0, -1.0]])
    assert feature_spread(real, fake)["feature_spread"] == math.inf
    assert math.isnan(feature_spread(np.zeros((2, 2)), np.zeros((3, 2)))["feature_spread"])
    with pytest.raises(ValueError, match="differ in size: 2 vs 3"):
        feature_spread(real, np.zeros((2, 3)))
    with pytest.raises(ValueError, match="fake: need at least one sample"):
        feature_spread(real, np.zeros((0, 2)))


# ---- the probe ---------------------------------------------------------------------------


def _nets(seed: int = 0):
    return build_models("dcgan", 16, 1, 16, 8, 8, seed)


def test_probe_is_fixed_and_leaves_rng_and_modes_alone(digits16):
    images = (digits16.images["train"] * 127.5 + 127.5).round().to(torch.uint8)
    G, D = _nets()
    D.train()
    G.eval()
    size = math.prod(D.feature_shape)
    a = FeatureProbe(images, z_dim=16, seed=5, n_real=40, n_fake=30, batch_size=7)
    b = FeatureProbe(images, z_dim=16, seed=6, n_real=40, n_fake=30, batch_size=256)
    assert torch.equal(a.indices, b.indices)  # the same reals whatever the run's seed
    assert len(set(a.indices.tolist())) == 40 and int(a.indices.max()) < images.shape[0]
    assert not torch.equal(a.z, b.z)
    torch.manual_seed(123)
    rng = torch.get_rng_state()
    scalars, feats = a.measure(D, G)
    again, feats_again = a.measure(D, G)
    assert torch.equal(torch.get_rng_state(), rng)
    assert D.training and not G.training
    assert scalars == again and set(scalars) == PROBE_SCALARS
    assert np.array_equal(feats["real"], feats_again["real"])
    with torch.no_grad():  # a second computation: the uint8 subset, converted, in eval mode
        expected = D.eval().features(as_float_images(images[a.indices])).flatten(1)
        expected_fake = D.features(G(a.z)).flatten(1)
    assert feats["real"].shape == (40, size) and feats["fake"].shape == (30, size)
    assert np.allclose(feats["real"], expected.numpy(), atol=1e-6)
    assert np.allclose(feats["fake"], expected_fake.numpy(), atol=1e-6)
    assert scalars["feature_spread"] == pytest.approx(
        feature_spread(expected, expected_fake)["feature_spread"], rel=1e-5
    )
    # spread_vs_noise, by hand: uniform noise in [-1, 1] from the fixed noise seed, the same
    # for every run seed, and no G involved
    assert torch.equal(a.noise, b.noise)
    noise = torch.rand(40, *images.shape[1:], generator=torch.Generator().manual_seed(20_230_619))
    assert torch.equal(a.noise, noise * 2 - 1)
    with torch.no_grad():
        f_noise = D.features(noise * 2 - 1).flatten(1).double()
    real64 = expected.double()
    centre = real64.mean(0)
    by_hand = (real64 - centre).norm(dim=1).mean() / (centre - f_noise.mean(0)).norm()
    assert scalars["spread_vs_noise"] == pytest.approx(float(by_hand), rel=1e-5)
    G2, _ = _nets(seed=3)  # another G: spread_vs_noise unchanged, feature_spread not
    other, _ = a.measure(D.train(), G2)
    assert other["spread_vs_noise"] == scalars["spread_vs_noise"]
    assert other["feature_spread"] != scalars["feature_spread"]


def test_probe_takes_all_images_when_fewer_and_refuses_bad_sizes(digits16):
    images = digits16.images["train"][:10]
    assert FeatureProbe(images, 16, 0, n_real=512).indices.tolist() == list(range(10))
    with pytest.raises(ValueError, match="n_fake: 0"):
        FeatureProbe(images, 16, 0, n_fake=0)


# ---- training and evaluation -------------------------------------------------------------


@pytest.fixture(scope="module")
def inputs(tmp_path_factory, digits16):
    """Dataset file, a briefly trained digits-cnn and its reference statistics."""
    root = tmp_path_factory.mktemp("inputs")
    save_prepared(digits16, root / "data.pt")
    trainer = BACKBONE_TRAINERS.get("digits-cnn")
    trainer(digits16, 0, steps=2, batch_size=16, out_path=root / "w.pt")
    backbone = BACKBONES.get("digits-cnn")(root / "w.pt", "cpu")
    compute_reference_stats(digits16, "train", backbone).save(root / "ref.npz")
    return root


def _train(inputs, run_dir, state_dir, cfg):
    return run_training(
        cfg, inputs / "data.pt", "digits-cnn", inputs / "w.pt", inputs / "ref.npz",
        run_dir, state_dir,
    )  # fmt: skip


def _evaluate(inputs, run_dir):
    return run_evaluation(run_dir, "digits-cnn", inputs / "w.pt", inputs / "ref.npz", 64, "cpu")


@SINGULAR
def test_training_logs_and_saves_d_features(tmp_path, inputs, digits16):
    cfg = tiny_run_config(eval_samples=32)
    _train(inputs, tmp_path / "run", tmp_path / "state", cfg)
    evals = [r for r in read_jsonl(tmp_path / "run/log.jsonl") if "fid" in r]
    assert [r["step"] for r in evals] == [6, 12]
    assert all(set(r) >= PROBE_SCALARS and r["feature_spread"] > 0 for r in evals)
    with np.load(tmp_path / "run" / D_FEATURES_FILE) as data:
        saved = {k: data[k] for k in data.files}
    n_real, size = min(512, digits16.images["train"].shape[0]), math.prod(_nets()[1].feature_shape)
    assert saved["real"].shape == (n_real, size) and saved["fake"].shape == (512, size)
    assert saved["real"].dtype == np.float32
    recomputed = feature_spread(saved["real"], saved["fake"])["feature_spread"]
    assert float(saved["feature_spread"]) == pytest.approx(recomputed, rel=1e-5)
    # the file holds the final networks: the last evaluation measured the same ones
    assert float(saved["feature_spread"]) == evals[-1]["feature_spread"]

    record = _evaluate(inputs, tmp_path / "run")
    assert record["metrics"]["feature_spread"] == float(saved["feature_spread"])
    curves = collect_curves([tmp_path / "run/metrics.json"])
    spread_steps = curves.loc[curves["metric"] == "feature_spread", "step"].tolist()
    assert spread_steps == [6, 12]

    # a run resumed from its last checkpoint trains no step but still saves the features
    _train(inputs, tmp_path / "again", tmp_path / "state", cfg)
    assert read_json(tmp_path / "again/train.json")["resumed_from_step"] == 12
    with np.load(tmp_path / "again" / D_FEATURES_FILE) as data:
        assert np.array_equal(data["real"], saved["real"])
        assert np.array_equal(data["fake"], saved["fake"])


@SINGULAR
def test_probe_samples_sets_the_images_measured(tmp_path, inputs):
    cfg = tiny_run_config(steps=2, eval_every=2, probe_samples=20)
    _train(inputs, tmp_path / "run", tmp_path / "state", cfg)
    with np.load(tmp_path / "run" / D_FEATURES_FILE) as data:
        assert data["real"].shape[0] == data["fake"].shape[0] == 20
        assert (int(data["n_real"]), int(data["n_fake"])) == (20, 20)


def test_the_default_probe_size_is_the_same_everywhere(repo_root):
    schema = yaml.safe_load((repo_root / "workflow/schemas/config.schema.yaml").read_text())
    in_schema = schema["properties"]["gan"]["properties"]["probe_samples"]["default"]
    in_run_config = GanRunConfig.__dataclass_fields__["probe_samples"].default
    assert in_schema == in_run_config == DEFAULT_PROBE_SIZE == 512


@SINGULAR
def test_evaluation_of_diverged_and_old_runs(tmp_path, inputs):
    run_dir = tmp_path / "run"
    _train(inputs, run_dir, tmp_path / "state", tiny_run_config(steps=2, eval_samples=16))
    summary = read_json(run_dir / "train.json")
    write_json(run_dir / "train.json", summary | {"status": "diverged", "diverged_at_step": 3})
    assert _evaluate(inputs, run_dir)["metrics"]["feature_spread"] is None
    old = tmp_path / "old"
    shutil.copytree(run_dir, old)
    (old / D_FEATURES_FILE).unlink()
    write_json(old / "train.json", summary)
    assert "feature_spread" not in _evaluate(inputs, old)["metrics"]


# ---- the projection figure ---------------------------------------------------------------


def test_projection_figure_draws_each_runs_own_pca(tmp_path):
    gen = np.random.default_rng(1)
    runs = {}
    for name, width in (("vanilla", 3.0), ("adaptivemix", 0.5)):
        real = gen.normal(0.0, width, size=(30, 10)) * np.linspace(1, 4, 10)
        fake = gen.normal(2.0, 1.0, size=(20, 10))
        scalars = {"feature_spread": 1.5, "spread_real": 1.0}
        save_d_features(
            tmp_path / name / D_FEATURES_FILE, scalars, {"real": real, "fake": fake}, {}
        )
        runs[name] = (tmp_path / name, np.concatenate([real, fake]).astype(np.float32))
    png = projection_figure({k: v[0] for k, v in runs.items()}, tmp_path / "fig/proj.png", "t")
    assert png.exists() and png.with_suffix(".pdf").exists()
    table = pd.read_csv(png.with_suffix(".csv"))
    assert table.groupby("panel", sort=False)["kind"].value_counts().to_dict() == {
        ("vanilla", "real"): 30, ("vanilla", "fake"): 20,
        ("adaptivemix", "real"): 30, ("adaptivemix", "fake"): 20,
    }  # fmt: skip
    for name, (_, features) in runs.items():
        ours = table.loc[table["panel"] == name, ["pc1", "pc2"]].to_numpy()
        theirs = PCA(n_components=2).fit_transform(features.astype(np.float64))
        for k in range(2):
            sign = np.sign(ours[:, k] @ theirs[:, k])
            assert np.allclose(ours[:, k], sign * theirs[:, k], atol=1e-5)
