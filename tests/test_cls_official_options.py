"""The official code's training settings as options: fixed input statistics
(``classification/config.py``) and a fresh SGD momentum every epoch (``train.py`` builds a
new optimiser in each ``train_clean``)."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from adaptivemix.classify.config import ClsRunConfig, cls_run_config
from adaptivemix.classify.methods import build_cls_method
from adaptivemix.classify.trainer import build_state, train_epoch
from adaptivemix.data.base import ImageDataset

CIFAR10 = {"mean": [0.4914, 0.4822, 0.4465], "std": [0.2023, 0.1994, 0.2010]}


def workflow_config(**classify) -> dict:
    values = dict(
        datasets=["cifar10"], resolution=32, arch="wrn-official", depth=10, widen=1,
        head="orthogonal", method_options={}, epochs=2, batch_size=8, lr=0.1, momentum=0.9,
        weight_decay=5e-4, milestones=[0.5], lr_gamma=0.2, crop_padding=0, hflip=False,
        eval_batch_size=50,
    )  # fmt: skip
    return {"device": "cpu", "classify": values | classify}


def dataset() -> ImageDataset:
    gen = torch.Generator().manual_seed(0)
    images = {s: torch.rand(24, 3, 8, 8, generator=gen) * 2 - 1 for s in ("train", "val", "test")}
    labels = {s: torch.randint(3, (24,), generator=gen) for s in images}
    return ImageDataset("cifar10", images, labels, 3)


def test_input_stats_are_taken_per_dataset_and_round_trip():
    config = workflow_config(input_stats={"cifar10": CIFAR10})
    cfg = cls_run_config(config, "cifar10", "erm", 0)
    assert cfg.input_mean == tuple(CIFAR10["mean"]) and cfg.input_std == tuple(CIFAR10["std"])
    assert ClsRunConfig.from_dict(cfg.to_dict()) == cfg
    state = build_state(cfg, dataset())
    torch.testing.assert_close(state.model.std.flatten(), torch.tensor(CIFAR10["std"]))
    assert state.build_args["mean"] == CIFAR10["mean"]
    other = cls_run_config(workflow_config(), "cifar10", "erm", 0)  # no entry: own statistics
    assert other.input_mean is None
    assert build_state(other, dataset()).build_args["std"] != CIFAR10["std"]


@pytest.mark.parametrize("reset", [True, False])
def test_momentum_reset_equals_a_new_optimiser_each_epoch(reset):
    config = workflow_config(reset_momentum_each_epoch=reset)
    cfg = cls_run_config(config, "cifar10", "erm", 0)
    data = dataset()
    x, y = (data.images["train"] + 1) / 2, data.labels["train"]
    ours, ref = build_state(cfg, data), build_state(cfg, data)
    method = build_cls_method("erm")
    kept = dataclasses.replace(cfg, reset_momentum_each_epoch=False)
    for _ in range(2):
        train_epoch(ours, method, x, y, 3, cfg)
        if reset:  # what train.py does: a new SGD at the start of every epoch
            params = [p for p in ref.model.parameters() if p.requires_grad]
            ref.optimizer = torch.optim.SGD(params, lr=0.1, momentum=0.9, weight_decay=5e-4)
        train_epoch(ref, method, x, y, 3, kept)
    for (name, p), q in zip(ours.model.named_parameters(), ref.model.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7, msg=name)


def test_momentum_reset_changes_the_second_epoch():
    data = dataset()
    x, y = (data.images["train"] + 1) / 2, data.labels["train"]
    weights = []
    for reset in (True, False):
        cfg = cls_run_config(workflow_config(reset_momentum_each_epoch=reset), "cifar10", "erm", 0)
        state = build_state(cfg, data)
        for _ in range(2):
            train_epoch(state, build_cls_method("erm"), x, y, 3, cfg)
        weights.append(state.model.stem.weight.detach())
    assert not torch.allclose(weights[0], weights[1])
