"""The sample-grid layout against torchvision's make_grid, which it replaces."""

from __future__ import annotations

import pytest
import torch
from torchvision.utils import make_grid

from adaptivemix.gan.outputs import image_grid


@pytest.mark.parametrize(
    ("shape", "per_row", "padding", "pad_value"),
    [((64, 1, 16, 16), 8, 1, 1.0), ((10, 3, 8, 5), 4, 2, 0.0), ((3, 3, 4, 4), 8, 0, 0.5)],
)
def test_image_grid_equals_torchvision_make_grid(shape, per_row, padding, pad_value):
    images = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    ours = image_grid(images, per_row=per_row, padding=padding, pad_value=pad_value)
    theirs = make_grid(images, nrow=per_row, padding=padding, pad_value=pad_value)
    assert ours.shape == theirs.shape
    assert torch.equal(ours, theirs)


def test_image_grid_places_each_image_by_hand():
    """Two rows of two 1×1 images with one pixel of padding: a 5×5 picture."""
    images = torch.tensor([1.0, 2.0, 3.0]).view(3, 1, 1, 1)
    grid = image_grid(images, per_row=2, padding=1, pad_value=0.0)
    assert grid.shape == (3, 5, 5)
    assert grid[0, 1, 1] == 1 and grid[0, 1, 3] == 2 and grid[0, 3, 1] == 3
    assert grid[0].sum() == 6  # padding and the empty fourth cell stay at pad_value
