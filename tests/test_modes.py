"""Mode counting: labels from a classifier backbone per channel, and modes / KL by hand."""

from __future__ import annotations

import math
from collections import Counter

import numpy as np
import pytest
import torch
from torch import nn

from adaptivemix.data import DATASETS
from adaptivemix.gan.outputs import write_run_outputs
from adaptivemix.gan.run import run_evaluation
from adaptivemix.io import read_json
from adaptivemix.metrics import BACKBONES, compute_reference_stats
from adaptivemix.metrics.backbones import ModuleBackbone
from adaptivemix.metrics.digits_cnn import train_digits_cnn
from adaptivemix.metrics.modes import mode_count, mode_labels, mode_metrics
from adaptivemix.models import build_models
from tests.helpers import tiny_run_config

N_GEN = 400  # generated samples per evaluation in these tests


class BrightnessClassifier(nn.Module):
    """A real 10-class module whose prediction we control: class round(4.5·(mean + 1)).

    A channel filled with the value 2d/9 − 1 is therefore classified as digit d.
    """

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return torch.stack([x.mean((1, 2, 3)), x.std((1, 2, 3))], dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        target = 4.5 * (x.mean((1, 2, 3)) + 1.0)
        return -(target[:, None] - torch.arange(10.0)).abs()  # peak at the nearest class


def brightness_backbone(in_channels: int = 1) -> ModuleBackbone:
    return ModuleBackbone(
        BrightnessClassifier(), "bright", "native", "00", 2, "cpu", in_channels, num_classes=10
    )


def images_of(digit_rows: list[list[int]], side: int = 4) -> torch.Tensor:
    """One image per row; channel c is filled with the value classified as digit row[c]."""
    values = torch.tensor(digit_rows, dtype=torch.float32) * 2.0 / 9.0 - 1.0
    return values[:, :, None, None].expand(-1, -1, side, side).contiguous()


# --- mode_metrics ----------------------------------------------------------------------


def test_all_distinct_labels():
    assert mode_metrics(np.arange(7), 7) == {"modes": 7, "kl_modes": pytest.approx(0.0)}
    got = mode_metrics(np.array([3, 17, 999]), 1000)
    assert got["modes"] == 3
    assert got["kl_modes"] == pytest.approx(math.log(1000 / 3))  # 3 × (1/3) log(1000/3)


def test_hand_made_histogram():
    # p = (3/4, 1/4) over 4 modes: 3/4 log(3/4 · 4) + 1/4 log(1/4 · 4) = 0.75 log 3
    got = mode_metrics(np.array([2, 2, 0, 2]), 4)
    assert got["modes"] == 2
    assert got["kl_modes"] == pytest.approx(0.75 * math.log(3.0), rel=1e-12)
    # p = (1/2, 1/4, 1/4) over 8 modes: 1/2 log 4 + 2 · 1/4 log 2 = 1.5 log 2
    got = mode_metrics([5, 5, 1, 7], 8)
    assert (got["modes"], got["kl_modes"]) == (3, pytest.approx(1.5 * math.log(2.0)))


def test_uniform_over_all_modes_and_a_single_mode():
    uniform = mode_metrics(np.tile(np.arange(1000), 3), 1000)
    assert uniform["modes"] == 1000 and abs(uniform["kl_modes"]) < 1e-12
    collapsed = mode_metrics(np.full(50, 421), 1000)
    assert collapsed == {"modes": 1, "kl_modes": pytest.approx(math.log(1000))}


@pytest.mark.parametrize("labels", [[], [0, 10], [-1, 3], [[1, 2]]])
def test_bad_labels_are_refused(labels):
    with pytest.raises(ValueError):
        mode_metrics(np.array(labels, dtype=np.int64), 10)


# --- mode_labels with controlled predictions -------------------------------------------


def test_mode_labels_read_channels_as_digits_red_first():
    rows = [[1, 2, 3], [9, 0, 0], [0, 0, 7], [4, 4, 4]]
    labels = mode_labels(brightness_backbone(), images_of(rows))
    assert labels.dtype == np.int64
    assert labels.tolist() == [123, 900, 7, 444]
    assert mode_labels(brightness_backbone(), images_of([[3, 8]])).tolist() == [38]
    assert mode_labels(brightness_backbone(), images_of([[6]])).tolist() == [6]
    # a 3-channel network sees one group: its own class (mean brightness) is the mode
    assert mode_labels(brightness_backbone(3), images_of([[0, 9, 6]])).tolist() == [5]


def test_mode_count_and_classifierless_backbones():
    backbone = brightness_backbone()
    assert [mode_count(backbone, c) for c in (1, 2, 3)] == [10, 100, 1000]
    assert mode_count(brightness_backbone(3), 3) == 10
    with pytest.raises(ValueError, match="multiple of 3"):
        mode_count(brightness_backbone(3), 4)
    plain = ModuleBackbone(BrightnessClassifier(), "plain", "native", "00", 2, "cpu")
    assert plain.num_classes is None
    with pytest.raises(ValueError, match="no classifier"):
        mode_labels(plain, images_of([[1, 2, 3]]))


# --- with a real digits classifier -----------------------------------------------------


@pytest.fixture(scope="module")
def digits_weights(tmp_path_factory):
    """A digits-cnn trained very briefly on 16 px digits (enough to be far from chance)."""
    path = tmp_path_factory.mktemp("cnn") / "weights.pt"
    train_digits_cnn(DATASETS.get("digits")(16), seed=0, steps=60, out_path=path)
    return path


@pytest.fixture(scope="module")
def stacked16():
    return DATASETS.get("stacked-digits")(16)


def test_mode_labels_with_a_trained_digits_cnn(digits_weights, stacked16):
    backbone = BACKBONES.get("digits-cnn")(digits_weights, "cpu")
    images, labels = stacked16.split("val")
    got = mode_labels(backbone, images[:300], batch_size=64)
    per_channel = [backbone.predict(images[:300, c : c + 1]) for c in range(3)]
    assert got.tolist() == (100 * per_channel[0] + 10 * per_channel[1] + per_channel[2]).tolist()
    # each channel is a real digit, so a trained classifier recovers most true modes
    assert (got == labels[:300].numpy()).mean() > 0.4


def test_one_pass_features_and_groups_equal_the_two_passes(digits_weights, stacked16):
    """The final evaluation's single trunk pass gives exactly the features and per-channel
    classes of the two separate passes, on uint8 and float images alike."""
    backbone = BACKBONES.get("digits-cnn")(digits_weights, "cpu")
    images = stacked16.split("val")[0][:130]
    for batch in (images, ((images.float() / 127.5) - 1.0)):
        feats, groups = backbone.features_and_groups(batch, batch_size=48)
        assert np.array_equal(feats, backbone.features(batch, batch_size=48))
        assert np.array_equal(groups, backbone.predict_groups(batch, batch_size=48))
        assert feats.dtype == np.float64 and groups.dtype == np.int64 and groups.shape == (130, 3)


@pytest.fixture(scope="module")
def stacked_reference(digits_weights, stacked16, tmp_path_factory):
    """Reference statistics of the stacked val split measured by the brief digits-cnn."""
    backbone = BACKBONES.get("digits-cnn")(digits_weights, "cpu")
    ref = compute_reference_stats(stacked16, "val", backbone)
    return ref, ref.save(tmp_path_factory.mktemp("ref") / "ref.npz")


def test_reference_stats_record_real_mode_metrics(digits_weights, stacked16, stacked_reference):
    backbone = BACKBONES.get("digits-cnn")(digits_weights, "cpu")
    ref = stacked_reference[0]
    assert ref.features.shape == (1000, 3 * 64)
    expected_labels = [
        100 * int(r) + 10 * int(g) + int(b)
        for r, g, b in zip(
            *(backbone.predict(stacked16.images["val"][:, c : c + 1]) for c in range(3)),
            strict=True,
        )
    ]
    counts = Counter(expected_labels)
    kl = sum(n / 1000 * math.log(n / 1000 * 1000) for n in counts.values())
    assert ref.meta["n_modes"] == 1000 and ref.meta["real_mode_samples"] == 1000
    assert ref.meta["real_modes"] == len(counts)
    assert ref.meta["real_kl_modes"] == pytest.approx(kl, rel=1e-9)


def _finished_run(tmp_path, status: str = "ok"):
    """A run folder holding a small untrained dcgan generator for stacked digits."""
    cfg = tiny_run_config(dataset="stacked-digits", seed=3)
    G, _ = build_models("dcgan", 16, 3, cfg.z_dim, cfg.g_width, cfg.d_width, seed=3)
    summary = {"status": status, "diverged_at_step": None, "steps": 0, "train_seconds": 0.0}
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    write_run_outputs(run_dir, G, cfg, summary, channels=3)
    return run_dir, G, cfg


@pytest.mark.slow
# an untrained generator's near-constant images leave some features dead: singular covariance
@pytest.mark.filterwarnings("ignore:Matrix is singular")
def test_evaluation_writes_mode_metrics_for_stacked_digits(
    digits_weights, stacked_reference, tmp_path
):
    backbone = BACKBONES.get("digits-cnn")(digits_weights, "cpu")
    run_dir, G, cfg = _finished_run(tmp_path)
    record = run_evaluation(
        run_dir, "digits-cnn", digits_weights, stacked_reference[1], N_GEN, "cpu"
    )
    assert record == read_json(run_dir / "metrics.json")
    metrics = record["metrics"]
    assert set(metrics) == {"fid", "kid", "modes", "kl_modes"}
    assert math.isfinite(metrics["fid"]) and math.isfinite(metrics["kid"])
    assert record["protocol"]["n_modes"] == 1000 and record["protocol"]["n_gen"] == N_GEN
    # recount the same samples (noise seeded by the run's seed) channel by channel
    z = torch.randn(N_GEN, cfg.z_dim, generator=torch.Generator().manual_seed(cfg.seed))
    with torch.no_grad():
        images = G.eval()(z).clamp(-1, 1)
    digits = [backbone.predict(images[:, c : c + 1]) for c in range(3)]
    counts = Counter((100 * digits[0] + 10 * digits[1] + digits[2]).tolist())
    assert metrics["modes"] == len(counts)
    kl = sum(n / N_GEN * math.log(n / N_GEN * 1000) for n in counts.values())
    assert metrics["kl_modes"] == pytest.approx(kl, rel=1e-9)


def test_diverged_run_gets_null_mode_metrics(digits_weights, stacked_reference, tmp_path):
    run_dir, _, _ = _finished_run(tmp_path, status="diverged")
    record = run_evaluation(
        run_dir, "digits-cnn", digits_weights, stacked_reference[1], N_GEN, "cpu"
    )
    assert record["metrics"] == {"fid": None, "kid": None, "modes": None, "kl_modes": None}
    assert record["protocol"]["n_modes"] == 1000
