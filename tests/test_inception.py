"""The Inception backbones with a real TorchScript file of the official network's call convention.

The official ``inception-2015-12-05.pt`` cannot be downloaded here, so a tiny scripted module
with the same interface as clean-fid uses it stands in: ``net(x, return_features=True)`` on
0..255 images of any size (legacy_tensorflow, resizing inside) and ``net.layers((x-128)/128)``
on 299×299 images (clean). Expected features are computed in the test from the eager tiny
module on inputs prepared here with PIL directly.
"""

from __future__ import annotations

import hashlib
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from cleanfid.downloads_helper import inception_url
from PIL import Image
from torch import nn

from adaptivemix.data.base import ImageDataset
from adaptivemix.errors import ConfigError
from adaptivemix.metrics import BACKBONES
from adaptivemix.metrics.fid import (
    compute_reference_stats,
    evaluate_images,
    metric_label,
    protocol,
)
from adaptivemix.metrics.inception import (
    INCEPTION_URL,
    missing_backbone_files,
    verify_weights,
)

URL = "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/inception-2015-12-05.pt"
PUBLISHED_SHA256 = "f58cb9b6ec323ed63459aa4fb441fe750cfe39fafad6da5cb504a16f19e958f4"
MODES = {"inception-clean": "clean", "inception-legacy-tensorflow": "legacy_tensorflow"}


class TinyLayers(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 6, kernel_size=7, stride=5)
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(torch.tanh(self.conv(x)))  # (B, 6, 1, 1) like Inception's pool3


class TinyInception(nn.Module):
    def __init__(self):
        super().__init__()
        self.layers = TinyLayers()

    def forward(self, x: torch.Tensor, return_features: bool = False) -> torch.Tensor:
        x = F.interpolate(x, size=(37, 37), mode="bilinear", align_corners=False)
        features = self.layers((x - 128) / 128).flatten(1)
        if return_features:
            return features
        return features.sum(1, keepdim=True)  # stands in for the logits


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """(eager module, path of its TorchScript file, the file's sha256)."""
    module = TinyInception().eval()
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    path = tmp_path_factory.mktemp("weights") / "inception.pt"
    with warnings.catch_warnings():  # TorchScript is deprecated; the official file still is one
        warnings.simplefilter("ignore", FutureWarning)
        torch.jit.script(module).save(str(path))
    return module, path, hashlib.sha256(path.read_bytes()).hexdigest()


def random_pixels(n: int, channels: int, seed: int, size=(11, 13)) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (n, channels, *size), generator=gen, dtype=torch.uint8)


def expected_features(module: nn.Module, mode: str, pixels: torch.Tensor) -> torch.Tensor:
    """The tiny network on uint8 RGB pixels prepared here, per clean-fid mode."""
    x = pixels.to(torch.float64)
    with torch.no_grad():
        if mode == "legacy_tensorflow":
            return module(x.float(), return_features=True)
        resized = [
            [
                np.asarray(
                    Image.fromarray(ch.numpy().astype(np.float32)).resize((299, 299), Image.BICUBIC)
                ).clip(0, 255)
                for ch in img
            ]
            for img in pixels
        ]
        batch = torch.tensor(np.array(resized), dtype=torch.float32)
        return module.layers((batch - 128) / 128).flatten(1)


def test_url_is_clean_fids():
    assert INCEPTION_URL == URL == inception_url


def test_missing_file_says_which_key_and_where_to_get_it(tmp_path):
    missing = tmp_path / "inception-2015-12-05.pt"
    for path in (missing, None):
        with pytest.raises(ConfigError) as err:
            verify_weights(path)
        message = str(err.value)
        assert "backbone.weights" in message and URL in message
        assert "nothing is downloaded" in message
    with pytest.raises(ConfigError, match=r"backbone\.weights"):
        BACKBONES.get("inception-clean")(missing, "cpu")
    assert list(tmp_path.iterdir()) == []  # nothing fetched or written


def test_wrong_checksum_names_file_both_hashes_and_key(tiny):
    _, path, sha = tiny
    for expected in ("0" * 64, None):  # None: the published hash of the real file
        with pytest.raises(ConfigError) as err:
            verify_weights(path, expected)
        message = str(err.value)
        assert str(path) in message and sha in message and "backbone.sha256" in message
        assert (expected or PUBLISHED_SHA256) in message
    for name in MODES:
        with pytest.raises(ConfigError, match=r"backbone\.sha256"):
            BACKBONES.get(name)(path, "cpu", "1" * 64)
    assert verify_weights(path, sha) == sha
    assert verify_weights(path, sha.upper()) == sha


def test_missing_backbone_files_lines(tiny, tmp_path):
    _, path, sha = tiny
    ok = {"name": "inception-clean", "weights": str(path), "sha256": sha}
    assert missing_backbone_files(ok) == []
    (line,) = missing_backbone_files({**ok, "weights": str(tmp_path / "absent.pt")})
    assert "backbone.weights" in line and URL in line
    (line,) = missing_backbone_files({"name": "inception-legacy-tensorflow", "weights": str(path)})
    assert "backbone.sha256" in line and PUBLISHED_SHA256 in line
    assert missing_backbone_files({"name": "digits-cnn"}) == []


@pytest.mark.parametrize("name", sorted(MODES))
def test_features_follow_clean_fid_per_mode(tiny, name):
    module, path, sha = tiny
    backbone = BACKBONES.get(name)(path, "cpu", sha)
    assert (backbone.name, backbone.protocol, backbone.weights_sha256) == (name, MODES[name], sha)
    assert backbone.feature_dim == 6
    pixels = random_pixels(5, 3, seed=1)
    expected = expected_features(module, MODES[name], pixels).double().numpy()
    as_float = pixels.float() / 127.5 - 1  # the project's [-1, 1] images of these pixels
    np.testing.assert_allclose(backbone.features(as_float), expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(backbone.features(pixels), expected, rtol=1e-5, atol=1e-6)
    # batching does not change the features
    np.testing.assert_allclose(backbone.features(pixels, batch_size=2), expected, atol=1e-6)


@pytest.mark.parametrize("name", sorted(MODES))
def test_grayscale_is_repeated_to_rgb(tiny, name):
    module, path, sha = tiny
    backbone = BACKBONES.get(name)(path, "cpu", sha)
    gray = random_pixels(3, 1, seed=2)
    expected = expected_features(module, MODES[name], gray.repeat(1, 3, 1, 1)).double().numpy()
    np.testing.assert_allclose(backbone.features(gray), expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="2 channels"):
        backbone.features(random_pixels(2, 2, seed=3))


def test_not_differentiable(tiny):
    _, path, sha = tiny
    backbone = BACKBONES.get("inception-clean")(path, "cpu", sha)
    with pytest.raises(ValueError, match="not differentiable"):
        backbone.embed(torch.zeros(1, 3, 8, 8, requires_grad=True))


def test_fid_of_a_set_against_itself_through_clean_fid(tiny):
    _, path, sha = tiny
    backbone = BACKBONES.get("inception-clean")(path, "cpu", sha)
    train = random_pixels(12, 3, seed=4)
    splits = {"train": train, "val": train[:2], "test": train[:2]}
    labels = {s: torch.zeros(len(x), dtype=torch.int64) for s, x in splits.items()}
    dataset = ImageDataset("toy", splits, labels, num_classes=1)  # uint8 images
    reference = compute_reference_stats(dataset, "train", backbone)
    assert reference.meta["protocol"] == "clean" and reference.meta["n_real"] == 12
    same = evaluate_images(train.float() / 127.5 - 1, backbone, reference, seed=0, with_pr=True)
    assert abs(same["fid"]) < 1e-6
    assert (same["precision"], same["recall"]) == (1.0, 1.0)
    other = evaluate_images(random_pixels(12, 3, seed=5), backbone, reference, seed=0)
    assert other["fid"] > 1e-3 and set(other) == {"fid", "kid"}
    record = protocol(backbone, reference, n_gen=12, pr_k=3)
    assert record["resize"] == "clean" and record["pr_k"] == 3 and record["n_real"] == 12
    assert metric_label(record) == "fid12_full[clean]"
