"""Checkpoint selection of the classifier trainer: ours (validation) or upstream's (test).

``classify.selection`` names the protocol:

- ``val`` (default, every profile): evaluate at the end of every epoch, keep the weights
  with the best *validation* accuracy, earliest evaluation on ties. The test split plays no
  part in the choice.
- ``test`` (**optimistic**): the official AdaptiveMix classification code
  (WentianZhang-ML/AdaptiveMix, ``classification/train.py``, ``train_clean``, commit
  163e5d5): after every optimiser step whose in-epoch batch index is a multiple of 30
  (``batch_idx % 30 == 0``, so also right after each epoch's first step) it measures
  accuracy on the full *test* split and keeps a list of the five best values
  (``acc_list``, initialised to zeros). A value strictly above the list's minimum replaces
  it; the list is re-sorted (descending) and the weights are saved as
  ``TOP_<rank>_Net.pth``, rank = first position of the value in the sorted list. Files are
  never renamed when ranks shift, so only ``TOP_1`` is reliably the best: it holds the
  *latest* evaluation that reached the running maximum (a tie with the current best
  overwrites it) unless all five slots already hold that value. The reported model is
  taken to be ``TOP_1`` (interpretation: the code does not say which file the paper's
  numbers come from). :class:`UpstreamTopK` replays that bookkeeping exactly; only the
  ``TOP_1`` weights are kept (nothing uses the other four), the other slots are recorded.

Whichever protocol selects, both splits are measured at every evaluation, so every run
records the test accuracy at its validation-selected point and the best test accuracy seen:
their difference is the optimism of choosing on the test split (report table
``selection_bias``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

#: The official code evaluates on the test split when the in-epoch batch index is a
#: multiple of this (classification/train.py, ``if batch_idx % 30 == 0``).
UPSTREAM_EVAL_EVERY = 30
#: ...and keeps this many best accuracies (``acc_list = [0,0,0,0,0]``).
UPSTREAM_KEEP = 5

SELECTIONS = ("val", "test")
SELECTION_LABELS = {
    "val": "best validation accuracy (earliest evaluation on ties), once per epoch",
    "test": (
        "OPTIMISTIC: best test accuracy, upstream protocol (test split every "
        f"{UPSTREAM_EVAL_EVERY} iterations, top {UPSTREAM_KEEP} kept, TOP_1 reported)"
    ),
}


@dataclass(frozen=True)
class Evaluation:
    """One evaluation: where in training (epoch counted from 1, optimiser steps done) and
    the accuracies (fractions) of the weights at that point."""

    epoch: int
    step: int
    val_acc: float
    test_acc: float

    def to_dict(self) -> dict:
        return asdict(self)


def evaluates_after(selection: str, batch_index: int, n_batches: int) -> bool:
    """Whether the trainer evaluates after the step of in-epoch batch ``batch_index``."""
    if selection == "test":
        return batch_index % UPSTREAM_EVAL_EVERY == 0
    return batch_index == n_batches - 1  # ours: at the end of every epoch


def val_selected(evaluations: Sequence[Evaluation]) -> int | None:
    """Index of the best validation accuracy, earliest on ties (None: no evaluation)."""
    best = None
    for i, e in enumerate(evaluations):
        if best is None or e.val_acc > evaluations[best].val_acc:
            best = i
    return best


def best_test(evaluations: Sequence[Evaluation]) -> int | None:
    """Index of the best test accuracy seen, earliest on ties (None: no evaluation)."""
    best = None
    for i, e in enumerate(evaluations):
        if best is None or e.test_acc > evaluations[best].test_acc:
            best = i
    return best


class UpstreamTopK:
    """The official ``acc_list`` bookkeeping, replayed: which evaluation each
    ``TOP_<k>_Net.pth`` file would hold (``slots``: rank -> evaluation index)."""

    def __init__(self, state: dict | None = None):
        state = state or {"accs": [0.0] * UPSTREAM_KEEP, "slots": {}}
        self.accs = [float(a) for a in state["accs"]]
        self.slots = {int(k): int(v) for k, v in state["slots"].items()}

    def offer(self, acc: float, index: int) -> int | None:
        """The rank of the file ``acc`` is saved under (1-based), or None (not saved)."""
        if not acc > min(self.accs):
            return None
        self.accs[self.accs.index(min(self.accs))] = acc
        self.accs = sorted(self.accs, reverse=True)
        rank = self.accs.index(acc) + 1
        self.slots[rank] = index
        return rank

    def state_dict(self) -> dict:
        return {"accs": list(self.accs), "slots": {str(k): v for k, v in self.slots.items()}}


class ValSplitSelector:
    """Ours: an evaluation is chosen when its validation accuracy beats every earlier one."""

    def __init__(self, state: dict | None = None):
        self.best = float(state["best"]) if state else -1.0
        self.slots: dict[int, int] = {}

    def offer(self, evaluation: Evaluation, index: int) -> bool:
        if evaluation.val_acc > self.best:
            self.best = evaluation.val_acc
            return True
        return False

    def state_dict(self) -> dict:
        return {"best": self.best}


class TestSplitSelector:
    """Upstream's: an evaluation is chosen when it is written to ``TOP_1_Net.pth``."""

    __test__ = False  # not a pytest class despite its name

    def __init__(self, state: dict | None = None):
        self.top = UpstreamTopK(state)
        self.slots = self.top.slots

    def offer(self, evaluation: Evaluation, index: int) -> bool:
        return self.top.offer(evaluation.test_acc, index) == 1

    def state_dict(self) -> dict:
        return self.top.state_dict()


SELECTORS = {"val": ValSplitSelector, "test": TestSplitSelector}


def build_selector(selection: str, state: dict | None = None):
    """The selector of ``classify.selection`` (validated by the schema), fresh or resumed."""
    return SELECTORS[selection](state)


def selection_record(
    selection: str, evaluations: Sequence[Evaluation], selected: int | None, slots: dict
) -> dict:
    """What ``train.json`` and ``metrics.json`` say about the choice (accuracies as
    fractions): the selected evaluation, the validation-selected one, the best test
    accuracy seen and ``test_optimism`` = best test − test at the validation choice."""

    def at(i: int | None) -> dict | None:
        return None if i is None else evaluations[i].to_dict()

    by_val, by_test = val_selected(evaluations), best_test(evaluations)
    optimism = None
    if by_val is not None:
        optimism = evaluations[by_test].test_acc - evaluations[by_val].test_acc
    return {
        "protocol": selection,
        "optimistic": selection == "test",
        "label": SELECTION_LABELS[selection],
        "n_evaluations": len(evaluations),
        "selected": at(selected),
        "val_selected": at(by_val),
        "best_test": at(by_test),
        "test_optimism": optimism,
        "upstream_slots": {f"TOP_{k}": at(i) for k, i in sorted(slots.items())},
    }
