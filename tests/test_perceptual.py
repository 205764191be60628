"""Perceptual distances (GLeaD's reconstruction measure) against independent references.

LPIPS is checked against a hand computation written here from the semantics of the official
``lpips`` code (richzhang/PerceptualSimilarity, ``LPIPS.forward``): scaling layer, AlexNet's
five ReLU outputs, unit norm across channels (+1e-10), squared difference, the package's v0.1
1×1 weights, spatial mean, sum over layers. The AlexNet weights are random, written in
torchvision's file format; nothing is downloaded (the network is cut off while it is built).
"""

from __future__ import annotations

import copy
import socket
from pathlib import Path

import lpips
import pytest
import torch
import torchvision

from adaptivemix.config import load_workflow_config
from adaptivemix.errors import ConfigError
from adaptivemix.gan.methods import RunEnv, build_method
from adaptivemix.metrics.lpips_alexnet import MIN_SIDE, build_lpips
from adaptivemix.metrics.perceptual import (
    PERCEPTUAL_DISTANCES,
    build_perceptual,
    check_perceptual_name,
    install_weights,
    missing_perceptual_files,
    weights_of_variant,
)  # fmt: skip
from adaptivemix.preflight import perceptual_problems
from adaptivemix.provenance import sha256_file
from tests.helpers import smoke_config

KEY = "gan.method_options.glead.perceptual"
SHIFT = torch.tensor([-0.030, -0.088, -0.188], dtype=torch.float64).view(1, 3, 1, 1)
SCALE = torch.tensor([0.458, 0.448, 0.450], dtype=torch.float64).view(1, 3, 1, 1)
RELU_OUTPUTS = (1, 4, 7, 9, 11)  # the five ReLUs of torchvision's alexnet.features


def random_alexnet(seed: int = 0) -> torchvision.models.AlexNet:
    """torchvision's AlexNet with He-scaled random weights from an explicit generator."""
    gen = torch.Generator().manual_seed(seed)
    net = torchvision.models.alexnet(weights=None)
    with torch.no_grad():
        for p in net.features.parameters():
            fan_in = p[0].numel() if p.ndim > 1 else 1
            scale = (2.0 / fan_in) ** 0.5 if p.ndim > 1 else 0.05
            p.copy_(torch.randn(p.shape, generator=gen) * scale)
    return net.eval()


@pytest.fixture(scope="module")
def alexnet():
    return random_alexnet()


@pytest.fixture(scope="module")
def trunk_file(alexnet, tmp_path_factory):
    """The convolutions only, as ``features.*`` keys of torchvision's state_dict."""
    path = tmp_path_factory.mktemp("alexnet") / "features.pth"
    torch.save({f"features.{k}": v for k, v in alexnet.features.state_dict().items()}, path)
    return path, sha256_file(path)


def files_env(path, sha256, device="cpu") -> RunEnv:
    return RunEnv(
        device=device, perceptual_files={"lpips": {"weights": str(path), "sha256": sha256}}
    )


@pytest.fixture(scope="module")
def distance(trunk_file):
    return build_perceptual("lpips", files_env(*trunk_file), KEY)


def reference_lpips(alexnet, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """LPIPS by hand, in float64, from the published semantics."""
    layers = copy.deepcopy(alexnet.features).double()
    calibration = Path(lpips.__file__).parent / "weights/v0.1/alex.pth"
    lins = torch.load(calibration, map_location="cpu", weights_only=True)
    weights = [lins[f"lin{k}.model.1.weight"].double().flatten() for k in range(5)]

    def taps(x):
        x, out = (x - SHIFT) / SCALE, []
        for i, layer in enumerate(layers[:12]):
            x = layer(x)
            if i in RELU_OUTPUTS:
                out.append(x)
        return out

    total = torch.zeros(a.shape[0], dtype=torch.float64)
    for fa, fb, w in zip(taps(a), taps(b), weights, strict=True):
        na = fa / (fa.square().sum(1, keepdim=True).sqrt() + 1e-10)
        nb = fb / (fb.square().sum(1, keepdim=True).sqrt() + 1e-10)
        total = total + ((na - nb).square() * w.view(1, -1, 1, 1)).sum(1).mean((1, 2))
    return total


def images(seed: int, n: int = 3, channels: int = 3, side: int = 64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(n, channels, side, side, generator=gen) * 2 - 1


# --- the registry --------------------------------------------------------------------------


def test_registry_offers_lpips_and_pixel():
    assert PERCEPTUAL_DISTANCES.names() == ["lpips", "pixel"]


def test_pixel_distance_is_per_sample_mean_squared_error():
    a = torch.tensor([[[[0.0, 1.0], [2.0, 3.0]]], [[[1.0, 1.0], [1.0, 1.0]]]])
    b = torch.zeros_like(a)
    distance = build_perceptual("pixel", RunEnv(), "key")(a, b)
    torch.testing.assert_close(distance, torch.tensor([(0 + 1 + 4 + 9) / 4, 1.0]))


@pytest.mark.parametrize("name", ["backbone", "digits-cnn", "inception-legacy-tensorflow"])
def test_the_fid_network_is_refused_saying_why(name):
    for check in (check_perceptual_name, lambda n, k: build_perceptual(n, RunEnv(), k)):
        with pytest.raises(ConfigError, match="leak into training") as err:
            check(name, KEY)
        assert err.value.key == KEY and err.value.value == name
        assert "['lpips', 'pixel']" in err.value.expected


def test_unknown_distance_names_key_and_choices():
    with pytest.raises(ConfigError, match=r"'lpips-vgg'.*'lpips', 'pixel'"):
        build_perceptual("lpips-vgg", RunEnv(), KEY)


def test_a_method_names_its_distances_through_its_perceptual_option():
    assert build_method("glead", {"perceptual": "pixel"}).perceptual_distances() == {
        "perceptual": "pixel"
    }
    assert build_method("vanilla").perceptual_distances() == {}
    assert weights_of_variant("glead", {"glead": {"perceptual": "lpips"}}) == ["lpips"]
    assert weights_of_variant("glead+ada", {"glead": {"perceptual": "pixel"}}) == []


# --- LPIPS against the hand reference ------------------------------------------------------


def test_lpips_matches_the_hand_reference_in_value_and_gradient(distance, alexnet):
    a = images(1).requires_grad_(True)
    b = images(2).requires_grad_(True)
    values = distance(a, b)
    values.sum().backward()
    a64 = a.detach().double().requires_grad_(True)
    b64 = b.detach().double().requires_grad_(True)
    expected = reference_lpips(alexnet, a64, b64)
    expected.sum().backward()
    assert values.shape == (3,) and expected.min() > 0.01  # a non-trivial distance
    torch.testing.assert_close(values.double(), expected.detach(), rtol=0, atol=1e-5)
    for ours, ref in ((a.grad, a64.grad), (b.grad, b64.grad)):
        scale = float(ref.abs().max())
        assert scale > 0
        torch.testing.assert_close(ours.double() / scale, ref / scale, rtol=0, atol=1e-5)
    assert distance(a, a).abs().max() < 1e-6


def test_lpips_is_frozen_in_eval_mode(distance):
    distance.model.train()  # a caller switching modes must not turn the dropout on
    a = images(3).requires_grad_(True)
    first, second = distance(a, images(4)), distance(a, images(4))
    torch.testing.assert_close(first, second, rtol=0, atol=0)
    first.sum().backward()
    assert not distance.model.training
    assert all(not p.requires_grad and p.grad is None for p in distance.model.parameters())


def test_one_channel_images_are_measured_as_gray_rgb(distance):
    a, b = images(5, channels=1), images(6, channels=1)
    expected = distance(a.repeat(1, 3, 1, 1), b.repeat(1, 3, 1, 1))
    torch.testing.assert_close(distance(a, b), expected, rtol=0, atol=0)
    with pytest.raises(ValueError, match="1- or 3-channel"):
        distance(images(5, channels=2), images(6, channels=2))


def test_min_side_is_where_alexnet_stops_measuring(trunk_file):
    model, _ = build_lpips(*trunk_file)
    assert model(images(7, 1, side=MIN_SIDE), images(8, 1, side=MIN_SIDE)).shape == (1, 1, 1, 1)
    with pytest.raises(RuntimeError):
        model(images(7, 1, side=MIN_SIDE - 1), images(8, 1, side=MIN_SIDE - 1))


def test_describe_records_trunk_calibration_and_package(distance, trunk_file):
    calibration = Path(lpips.__file__).parent / "weights/v0.1/alex.pth"
    assert distance.describe() == {
        "name": "lpips",
        "net": "alex",
        "version": "0.1",
        "trunk_sha256": trunk_file[1],
        "calibration_sha256": sha256_file(calibration),
        "lpips_package": "0.1.4",
    }


# --- local weights only --------------------------------------------------------------------


def test_the_full_torchvision_file_loads_and_nothing_is_downloaded(
    alexnet, trunk_file, distance, tmp_path, monkeypatch
):
    """The exact torchvision file (features and classifier) loads with the classifier ignored,
    while any network use raises and torch.hub's folder stays empty."""
    full = torchvision.models.alexnet(weights=None).state_dict()
    keys = set(full)
    full.update({f"features.{k}": v for k, v in alexnet.features.state_dict().items()})
    assert set(full) == keys and any(k.startswith("classifier.") for k in keys)
    path = tmp_path / "alexnet-owt-test.pth"
    torch.save(full, path)

    def no_network(*args, **kwargs):
        raise AssertionError("network use")

    hub = tmp_path / "hub"
    monkeypatch.setattr(torch.hub, "_hub_dir", str(hub))
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    full_distance = build_perceptual("lpips", files_env(path, sha256_file(path)), KEY)
    a, b = images(9), images(10)
    torch.testing.assert_close(full_distance(a, b), distance(a, b), rtol=0, atol=0)
    assert not hub.exists() or not any(hub.rglob("*"))


def test_a_wrong_or_missing_sha256_is_refused(trunk_file):
    path, found = trunk_file
    wrong = "0" * 64
    with pytest.raises(ConfigError, match=found) as err:
        build_perceptual("lpips", files_env(path, wrong), KEY)
    assert err.value.key == "perceptual.lpips.sha256" and err.value.value == wrong
    with pytest.raises(ConfigError, match="7be5be79") as err:
        build_perceptual("lpips", files_env(path, None), KEY)
    assert err.value.key == "perceptual.lpips.sha256"


def test_a_missing_or_foreign_weights_file_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"alexnet-owt-7be5be79\.pth") as err:
        build_perceptual("lpips", RunEnv(), KEY)
    assert err.value.key == "perceptual.lpips.weights"
    with pytest.raises(ConfigError, match="file not found"):
        build_perceptual("lpips", files_env(tmp_path / "absent.pth", "0" * 64), KEY)
    foreign = tmp_path / "vgg.pth"
    torch.save({"model.conv.weight": torch.zeros(1)}, foreign)
    with pytest.raises(ConfigError, match=r"'model\.conv\.weight'"):
        build_perceptual("lpips", files_env(foreign, sha256_file(foreign)), KEY)


def test_the_workflow_copy_is_verified_first(trunk_file, tmp_path):
    path, found = trunk_file
    out = tmp_path / "copy" / "weights.pt"
    with pytest.raises(ConfigError, match=r"perceptual\.lpips\.sha256"):
        install_weights("lpips", {"weights": str(path), "sha256": "1" * 64}, str(out))
    assert not out.exists()
    install_weights("lpips", {"weights": str(path), "sha256": found}, str(out))
    assert sha256_file(out) == found


# --- through the config validator and the start-up check -----------------------------------

SMOKE = smoke_config()


def glead_config(perceptual: str, resolution: int = 32, files: dict | None = None) -> dict:
    config = copy.deepcopy(SMOKE) | {"ood": {"sets": {}}}
    config["data"] = {"datasets": ["digits"], "resolution": resolution}
    config["gan"] |= {"methods": ["vanilla", "glead"],
                      "method_options": {"glead": {"perceptual": perceptual}}}  # fmt: skip
    if files is not None:
        config["perceptual"] = {"lpips": files}
    return config


@pytest.mark.parametrize("name", ["backbone", "digits-cnn"])
def test_the_validator_refuses_the_fid_network(name):
    with pytest.raises(ConfigError, match="leak into training") as err:
        load_workflow_config(glead_config(name, files={"weights": "/w.pth"}))
    assert err.value.key == KEY and err.value.value == name


def test_the_validator_refuses_lpips_without_weights_or_below_its_min_side():
    with pytest.raises(ConfigError, match=r"alexnet-owt-7be5be79\.pth") as err:
        load_workflow_config(glead_config("lpips"))
    assert err.value.key == "perceptual.lpips.weights" and KEY in err.value.expected
    with pytest.raises(ConfigError, match="side ≥ 31") as err:
        load_workflow_config(glead_config("lpips", resolution=16, files={"weights": "/w.pth"}))
    assert err.value.key == KEY and "'pixel'" in err.value.expected
    config = load_workflow_config(glead_config("lpips", files={"weights": "/w.pth"}))
    assert config["perceptual"]["lpips"] == {"weights": "/w.pth"}
    assert load_workflow_config(glead_config("pixel"))["perceptual"] == {"lpips": {}}


def test_the_start_up_check_names_a_missing_file_or_hash(trunk_file, tmp_path):
    path, found = trunk_file
    ok = load_workflow_config(glead_config("lpips", files={"weights": str(path), "sha256": found}))
    experiments = [ok["gan"] | {"datasets": ["digits"], "resolution": 32}]
    assert perceptual_problems(ok, experiments) == []
    (line,) = missing_perceptual_files(["lpips", "lpips"], {"lpips": {"weights": str(path)}})
    assert "perceptual.lpips.sha256" in line and "7be5be79" in line
    absent = {"lpips": {"weights": str(tmp_path / "a.pth"), "sha256": found}}
    (line,) = missing_perceptual_files(["lpips"], absent)
    assert "perceptual.lpips.weights" in line and "a.pth" in line
    assert missing_perceptual_files([], {}) == []
