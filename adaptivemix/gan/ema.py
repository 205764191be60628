"""G's exponential moving average, with the semantics of timm 1.0's ``ModelEmaV3``.

Written here instead of imported: ``import timm`` pulls ``torchvision.models`` and
``torch._dynamo`` (seconds of start-up in every training job, for a dozen lines of
arithmetic). Semantics kept (``tests/test_ema.py`` checks them bit-for-bit against timm's
``ModelEmaV3`` on the same updates): the average is a deep copy of the model in eval mode;
``update(model, step)`` uses decay 0 (a plain copy) while ``step <= 1`` and ``decay`` after
that; floating-point parameters and buffers are interpolated in place with one
``torch._foreach_lerp_``, every other entry of the state dict (e.g. BatchNorm's counters) is
copied. The average lives in ``self.module``, so checkpoints store its state dict as before.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class ModelEma(nn.Module):
    """``ema = ModelEma(G, decay=0.999)``; after each optimiser step ``ema.update(G, step)``."""

    def __init__(self, model: nn.Module, decay: float):
        super().__init__()
        self.module = copy.deepcopy(model).eval()
        self.decay = decay

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        weight = 1.0 if step <= 1 else 1.0 - self.decay
        averaged, current = [], []
        pairs = zip(self.module.state_dict().values(), model.state_dict().values(), strict=True)
        for ema_value, value in pairs:
            if ema_value.is_floating_point():
                averaged.append(ema_value)
                current.append(value)
            else:
                ema_value.copy_(value)
        if averaged:
            torch._foreach_lerp_(averaged, current, weight=weight)
