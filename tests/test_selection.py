"""Checkpoint selection: ours (validation) against upstream's optimistic test-set choice.

Expected choices are traced by hand from the official ``classification/train.py``
(``acc_list`` of five zeros; a value strictly above its minimum replaces it, the list is
re-sorted descending and the weights saved as ``TOP_<first index of the value + 1>``), not
computed with the code under test.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import torch
import yaml

from adaptivemix.classify.selection import (
    SELECTIONS,
    Evaluation,
    TestSplitSelector,
    UpstreamTopK,
    ValSplitSelector,
    best_test,
    evaluates_after,
    selection_record,
    val_selected,
)
from adaptivemix.classify.trainer import accuracy, load_classifier, to_pixels
from adaptivemix.config import load_workflow_config
from adaptivemix.errors import ConfigError
from adaptivemix.io import load_torch, read_jsonl
from tests.test_cls_trainer import InterruptedRunError, small_digits, train  # noqa: F401

ROOT = Path(__file__).parent.parent


def evals(val: list[float], test: list[float]) -> list[Evaluation]:
    return [
        Evaluation(i + 1, 10 * (i + 1), v, t)
        for i, (v, t) in enumerate(zip(val, test, strict=True))
    ]


def chosen(selector, evaluations) -> int | None:
    """The index whose weights a run releases: the last one the selector accepted."""
    picked = None
    for i, e in enumerate(evaluations):
        if selector.offer(e, i):
            picked = i
    return picked


def test_val_and_test_choices_on_a_scripted_sequence():
    run = evals(val=[0.5, 0.8, 0.8, 0.7, 0.6], test=[0.4, 0.6, 0.9, 0.9, 0.7])
    assert val_selected(run) == 1  # 0.8 first reached at index 1: earliest on ties
    assert chosen(ValSplitSelector(), run) == 1
    assert best_test(run) == 2  # value 0.9, earliest index
    # upstream: 0.4 -> TOP_1; 0.6 -> TOP_1; 0.9 -> TOP_1; 0.9 again: above the min (0),
    # sorted [.9, .9, .6, .4, 0], first index of .9 is 0 -> TOP_1 overwritten by index 3;
    # 0.7 -> [.9, .9, .7, .6, .4]: TOP_3.
    assert chosen(TestSplitSelector(), run) == 3
    record = selection_record("val", run, 1, {})
    assert record["val_selected"]["test_acc"] == 0.6 and record["best_test"]["test_acc"] == 0.9
    assert record["test_optimism"] == pytest.approx(0.3)
    assert record["optimistic"] is False and record["selected"]["step"] == 20


def test_upstream_slots_are_replayed_with_their_stale_names():
    top = UpstreamTopK()
    ranks = [top.offer(a, i) for i, a in enumerate([0.5, 0.7, 0.6, 0.2, 0.0])]
    # 0.5 -> TOP_1; 0.7 -> [.7, .5, 0, 0, 0] TOP_1; 0.6 -> [.7, .6, .5, 0, 0] TOP_2;
    # 0.2 -> TOP_4; 0.0 is not above the minimum 0: nothing saved.
    assert ranks == [1, 1, 2, 4, None]
    # TOP_1 holds index 1, TOP_2 index 2; TOP_3 was never written (0.5 moved to rank 3 but
    # its file is still named TOP_1 and was overwritten)
    assert top.slots == {1: 1, 2: 2, 4: 3}
    assert top.accs == [0.7, 0.6, 0.5, 0.2, 0.0]


def test_five_equal_best_values_stop_overwriting_top1():
    top = TestSplitSelector()
    run = evals(val=[0.1] * 6, test=[0.7] * 6)
    # each of the first five 0.7s is above the list's minimum (a 0) and ranks first;
    # the sixth meets a list of five 0.7s: not strictly above, not saved
    assert chosen(top, run) == 4
    assert chosen(ValSplitSelector(), run) == 0


def test_zero_accuracy_is_never_saved_upstream():
    assert chosen(TestSplitSelector(), evals(val=[0.5, 0.6], test=[0.0, 0.0])) is None


def test_evaluation_cadence():
    n = 65
    assert [b for b in range(n) if evaluates_after("test", b, n)] == [0, 30, 60]
    assert [b for b in range(n) if evaluates_after("val", b, n)] == [64]


def test_selection_is_validated_with_key_value_and_choices():
    raw = yaml.safe_load((ROOT / "config/smoke.yaml").read_text())
    assert load_workflow_config(copy.deepcopy(raw))["classify"]["selection"] == "val"
    raw["classify"]["selection"] = "best"
    with pytest.raises(ConfigError) as err:
        load_workflow_config(raw)
    message = str(err.value)
    assert "classify.selection" in message and "'best'" in message and "val" in message
    assert "test" in message


def test_schema_choices_are_the_selectors():
    schema = yaml.safe_load((ROOT / "workflow/schemas/config.schema.yaml").read_text())
    entry = schema["properties"]["classify"]["properties"]["selection"]
    assert tuple(entry["enum"]) == SELECTIONS and entry["default"] == "val"


def test_paper_profile_selects_on_validation():
    raw = yaml.safe_load((ROOT / "config/paper.yaml").read_text())
    assert load_workflow_config(raw)["classify"]["selection"] == "val"


def test_val_run_records_test_accuracy_at_its_choice(tmp_path, small_digits):  # noqa: F811
    _, summary = train(tmp_path, small_digits)
    log = read_jsonl(tmp_path / "run/log.jsonl")
    record = summary["selection"]
    assert [e["step"] for e in summary["evaluations"]] == [5, 10, 15]  # after each epoch
    assert [e["test_acc"] for e in summary["evaluations"]] == [r["test_acc"] for r in log]
    val = [e["val_acc"] for e in summary["evaluations"]]
    test = [e["test_acc"] for e in summary["evaluations"]]
    i = val.index(max(val))
    assert record["val_selected"] == summary["evaluations"][i] == record["selected"]
    assert record["best_test"]["test_acc"] == max(test)
    assert record["test_optimism"] == max(test) - test[i]
    model, _ = load_classifier(tmp_path / "run/model.pt")
    x, y = small_digits.split("test")
    assert accuracy(model, to_pixels(x), y, 37) == test[i]
    assert summary["eval_seconds"]["test"] > 0


def test_test_run_follows_upstream_cadence_and_top1(tmp_path, small_digits):  # noqa: F811
    """320 images in batches of 8: 40 steps per epoch, evaluations after batches 0 and 30."""
    _, summary = train(tmp_path, small_digits, "up", selection="test", batch_size=8, epochs=2)
    steps = [e["step"] for e in summary["evaluations"]]
    assert steps == [1, 31, 41, 71]
    test = [e["test_acc"] for e in summary["evaluations"]]
    # fewer than five evaluations: TOP_1 is the last one at or above every earlier value
    top1 = max(i for i, a in enumerate(test) if a > 0 and a >= max(test[:i], default=0))
    assert summary["selection"]["selected"] == summary["evaluations"][top1]
    assert summary["selection"]["upstream_slots"]["TOP_1"]["step"] == steps[top1]
    assert summary["selection"]["optimistic"] is True
    model, _ = load_classifier(tmp_path / "up/model.pt")
    x, y = small_digits.split("test")
    assert accuracy(model, to_pixels(x), y, 50) == test[top1]
    # evaluating never touches the training stream: same losses as the val-selected run
    train(tmp_path, small_digits, "val", batch_size=8, epochs=2)
    losses = [r["loss"] for r in read_jsonl(tmp_path / "val/log.jsonl")]
    assert [r["loss"] for r in read_jsonl(tmp_path / "up/log.jsonl")] == losses


def test_test_selection_resumes_exactly(tmp_path, small_digits):  # noqa: F811
    options = dict(selection="test", batch_size=8, epochs=2)
    _, full = train(tmp_path, small_digits, "full", **options)

    def stop_after_first(epoch: int) -> None:
        if epoch == 1:
            raise InterruptedRunError

    with pytest.raises(InterruptedRunError):
        train(tmp_path, small_digits, "cut", callbacks=[stop_after_first], **options)
    _, resumed = train(tmp_path, small_digits, "cut", **options)
    assert resumed["resumed_from_epoch"] == 1
    assert resumed["evaluations"] == full["evaluations"]
    assert resumed["selection"] == full["selection"]
    a, b = (load_torch(tmp_path / f"{n}/model.pt")["weights"] for n in ("full", "cut"))
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_test_selection_is_marked_optimistic_in_the_protocol_and_its_fingerprint():
    from adaptivemix.classify.run import accuracy_protocol
    from adaptivemix.metrics.fid import protocol_fingerprint
    from tests.test_fingerprint import tiny_dataset

    attacks = {"fgsm": {"eps": 0.1}}
    ours = accuracy_protocol(tiny_dataset(), attacks)
    upstream = accuracy_protocol(tiny_dataset(), attacks, selection="test")
    assert ours["selection"] == "best validation accuracy" and "OPTIMISTIC" not in ours["label"]
    assert upstream["selection"].startswith("OPTIMISTIC") and "OPTIMISTIC" in upstream["label"]
    assert protocol_fingerprint(ours) != protocol_fingerprint(upstream)
