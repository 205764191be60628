"""The classifier trainer: augmentation, schedule, validation selection, resume, divergence."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from adaptivemix.classify.config import ClsRunConfig
from adaptivemix.classify.trainer import (
    accuracy,
    augment_batch,
    load_classifier,
    to_pixels,
    train_classifier,
)  # fmt: skip
from adaptivemix.data.base import ImageDataset
from adaptivemix.io import load_torch, read_json, read_jsonl


def tiny_cls_config(**overrides) -> ClsRunConfig:
    values = dict(
        dataset="digits", resolution=16, arch="wrn", depth=10, widen=1, head="linear",
        method="erm", method_options={}, seed=0, epochs=3, batch_size=64, lr=0.05,
        momentum=0.9, weight_decay=5e-4, milestones=(0.34, 0.67), lr_gamma=0.2,
        crop_padding=1, hflip=False, eval_batch_size=200,
    )  # fmt: skip
    values.update(overrides)
    return ClsRunConfig(**values)


@pytest.fixture(scope="module")
def small_digits(digits16) -> ImageDataset:
    """Digits with a 320-image training split: epochs of 5 batches, real data."""
    images = dict(digits16.images, train=digits16.images["train"][:320])
    labels = dict(digits16.labels, train=digits16.labels["train"][:320])
    return ImageDataset("digits", images, labels, 10)


def train(tmp_path, dataset, name="run", callbacks=(), **overrides):
    cfg = tiny_cls_config(**overrides)
    summary = train_classifier(cfg, dataset, tmp_path / name, tmp_path / f"{name}-state", callbacks)
    return cfg, summary


def test_augment_batch_crops_padded_images_at_drawn_offsets():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4)
    cfg = tiny_cls_config(crop_padding=1, hflip=True)
    out = augment_batch(x, cfg, torch.Generator().manual_seed(3))
    gen = torch.Generator().manual_seed(3)  # the same draws, in the same order, by hand
    dy = torch.randint(0, 3, (2,), generator=gen).tolist()
    dx = torch.randint(0, 3, (2,), generator=gen).tolist()
    flip = (torch.rand(2, generator=gen) < 0.5).tolist()
    for i in range(2):
        padded = torch.zeros(1, 6, 6)
        padded[:, 1:5, 1:5] = x[i]
        expected = padded[:, dy[i] : dy[i] + 4, dx[i] : dx[i] + 4]
        expected = expected.flip(-1) if flip[i] else expected
        assert torch.equal(out[i], expected)


def test_no_augmentation_leaves_batch_untouched():
    x = torch.rand(3, 1, 5, 5)
    out = augment_batch(x, tiny_cls_config(crop_padding=0), torch.Generator().manual_seed(0))
    assert torch.equal(out, x)


def test_schedule_logs_and_validation_selection(tmp_path, small_digits):
    cfg, summary = train(tmp_path, small_digits)
    log = read_jsonl(tmp_path / "run/log.jsonl")
    # milestones 0.34, 0.67 of 3 epochs -> after epochs 1 and 2: lr 0.05, 0.01, 0.002
    assert [row["lr"] for row in log] == pytest.approx([0.05, 0.01, 0.002])
    assert [row["epoch"] for row in log] == [1, 2, 3]
    assert all(row["step"] == 5 * row["epoch"] for row in log)  # 320 // 64 batches per epoch
    val = [row["val_acc"] for row in log]
    assert summary["best_val_acc"] == max(val)
    assert summary["best_epoch"] == val.index(max(val)) + 1  # earliest epoch on ties
    model, loaded_cfg = load_classifier(tmp_path / "run/model.pt")
    x_val, y_val = small_digits.split("val")
    assert loaded_cfg == cfg
    assert accuracy(model, to_pixels(x_val), y_val, 50) == summary["best_val_acc"]
    assert summary["status"] == "ok" and read_json(tmp_path / "run/train.json") == summary


def test_test_split_never_steers_training_or_validation_selection(tmp_path, small_digits):
    """Test accuracy is only recorded (selection_bias): other test labels change nothing else."""
    labels = dict(small_digits.labels, test=(small_digits.labels["test"] + 1) % 10)
    relabelled = ImageDataset("digits", small_digits.images, labels, 10)
    _, clean = train(tmp_path, small_digits, "clean", epochs=2)
    _, summary = train(tmp_path, relabelled, "relabelled", epochs=2)
    assert summary["status"] == "ok" and summary["best_val_acc"] == clean["best_val_acc"]
    assert summary["best_epoch"] == clean["best_epoch"]
    a, b = (load_torch(tmp_path / f"{n}/model.pt")["weights"] for n in ("clean", "relabelled"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    test = [e["test_acc"] for e in summary["evaluations"]]
    assert test != [e["test_acc"] for e in clean["evaluations"]]


def test_same_seed_same_weights_other_seed_differs(tmp_path, small_digits):
    train(tmp_path, small_digits, "a", epochs=1)
    train(tmp_path, small_digits, "b", epochs=1)
    train(tmp_path, small_digits, "c", epochs=1, seed=1)
    a, b, c = (load_torch(tmp_path / f"{n}/model.pt")["weights"] for n in "abc")
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


class InterruptedRunError(Exception):
    pass


def test_resume_after_interruption_equals_uninterrupted(tmp_path, small_digits):
    _, full = train(tmp_path, small_digits, "full")

    def stop_after_first(epoch: int) -> None:
        if epoch == 1:
            raise InterruptedRunError

    with pytest.raises(InterruptedRunError):
        train(tmp_path, small_digits, "cut", callbacks=[stop_after_first])
    _, resumed = train(tmp_path, small_digits, "cut")
    assert resumed["resumed_from_epoch"] == 1
    a, b = (load_torch(tmp_path / f"{n}/model.pt")["weights"] for n in ("full", "cut"))
    assert all(torch.equal(a[k], b[k]) for k in a)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "time_s"} for r in rows]  # noqa: E731
    assert strip(read_jsonl(tmp_path / "cut/log.jsonl")) == strip(
        read_jsonl(tmp_path / "full/log.jsonl")
    )
    assert resumed["best_val_acc"] == full["best_val_acc"]


def test_checkpoint_of_another_config_is_not_resumed(tmp_path, small_digits):
    train(tmp_path, small_digits, "x", epochs=1)
    _, summary = train(tmp_path, small_digits, "x", epochs=1, lr=0.01)
    assert summary["resumed_from_epoch"] is None


def test_non_finite_loss_stops_with_status_diverged(tmp_path, small_digits):
    images = dict(small_digits.images, train=small_digits.images["train"] * float("nan"))
    broken = ImageDataset("digits", images, small_digits.labels, 10)
    _, summary = train(tmp_path, broken, epochs=2)
    assert summary["status"] == "diverged" and summary["diverged_at_epoch"] == 1
    assert read_jsonl(tmp_path / "run/log.jsonl")[-1] == {"epoch": 1, "status": "diverged"}


def test_config_round_trip():
    cfg = tiny_cls_config()
    assert ClsRunConfig.from_dict(cfg.to_dict()) == cfg
    assert cfg.arch_name == "wrn-10-1"
    with pytest.raises(ValueError, match="colour"):
        ClsRunConfig.from_dict(dataclasses.asdict(cfg) | {"colour": 1})
