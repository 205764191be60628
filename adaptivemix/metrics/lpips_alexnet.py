"""LPIPS with its AlexNet trunk and v0.1 linear calibration, built from local files only.

Zhang, Isola, Efros, Shechtman, Wang, "The Unreasonable Effectiveness of Deep Features as a
Perceptual Metric", CVPR 2018, arXiv 1801.03924. The pinned ``lpips`` package (0.1.4, from
github.com/richzhang/PerceptualSimilarity) does the computation: our code only builds
``lpips.LPIPS(net="alex", version="0.1")`` and loads its weights, then calls its ``forward``.

What the package computes (its ``lpips/lpips.py``, ``LPIPS.forward``): both images, in
[-1, 1], pass a fixed per-channel scaling layer (shift −0.030, −0.088, −0.188; scale 0.458,
0.448, 0.450) and AlexNet's convolutions; the outputs of its five ReLUs are each divided by
their L2 norm across channels (plus 1e-10); the squared difference of the two images' maps is
weighted per channel by the calibrated 1×1 layer of that depth, averaged over space, and the
five layers' values are summed: one number per image pair.

Built so that nothing is downloaded:

- trunk: the package builds torchvision's AlexNet without weights (``pnet_rand=True``); its
  convolutions are then loaded from the configured file ``perceptual.lpips.weights``, checked
  against ``perceptual.lpips.sha256`` first. The file is in the format of torchvision's
  ``alexnet-owt-7be5be79.pth`` (a state_dict): its ``features.*`` tensors are used, its
  ``classifier.*`` tensors (the fully connected head, which LPIPS does not use) are ignored,
  any other key is refused;
- calibration: the package's own ``weights/v0.1/alex.pth`` (in its wheel), loaded by path;
  its sha256 is recorded with the trunk's;
- frozen: eval mode (the calibration layers' dropout off) and no parameter requires grad, on
  the run's device; the distance stays differentiable in both images.

Our choices: a 1-channel image is repeated to 3 channels (a gray image read as RGB), other
channel counts than 1 and 3 are refused. Images are measured at their own size, as upstream
GLeaD measures its 256² reconstructions; AlexNet's stride-4 first convolution and two 3×3/2
poolings need a side of at least :data:`MIN_SIDE` pixels, so smaller runs are refused when the
config is validated.
"""

from __future__ import annotations

import importlib.metadata
import shutil
import warnings
from pathlib import Path

import torch

from adaptivemix.errors import ConfigError
from adaptivemix.io import atomic_write
from adaptivemix.metrics.backbones import checked_sha256
from adaptivemix.provenance import sha256_file

#: The weights file's key in the config and the file it expects.
WEIGHTS_KEY = "perceptual.lpips.weights"
SHA256_KEY = "perceptual.lpips.sha256"
TRUNK_FILE = "alexnet-owt-7be5be79.pth"
TRUNK_URL = f"https://download.pytorch.org/models/{TRUNK_FILE}"
#: The file name carries the first 8 hex digits of the file's sha256 (torchvision's naming rule).
TRUNK_SHA256_PREFIX = "7be5be79"
#: Smallest image side AlexNet's trunk measures: conv 11/4 (pad 2) gives ⌊(s − 7)/4⌋ + 1,
#: each 3×3/2 pooling ⌊(s − 3)/2⌋ + 1; the second pooling needs 3 pixels, hence s ≥ 31.
MIN_SIDE = 31
NET, VERSION = "alex", "0.1"


def calibration_file() -> Path:
    """The package's v0.1 AlexNet calibration weights, inside the installed ``lpips`` package."""
    import lpips

    return Path(lpips.__file__).parent / "weights" / f"v{VERSION}" / f"{NET}.pth"


def verify_trunk(path: str | Path | None, sha256: str | None) -> str:
    """Check the local AlexNet weights file against ``sha256``; return the file's hash.

    A missing path or file, or no expected hash, raises one :class:`ConfigError` naming the
    key to set; a different hash raises one naming both hashes. Nothing is downloaded.
    """
    if not path or not Path(path).is_file():
        raise ConfigError(
            WEIGHTS_KEY,
            str(path) if path else None,
            f"the path of a local copy of torchvision's AlexNet ImageNet weights {TRUNK_FILE} "
            f"(file not found; LPIPS's trunk). Download it from {TRUNK_URL} and set "
            f"{WEIGHTS_KEY} to its path; nothing is downloaded automatically",
        )
    if not sha256:
        raise ConfigError(
            SHA256_KEY,
            None,
            f"the sha256 of '{path}' (64 hex digits, e.g. from `sha256sum`; torchvision's "
            f"{TRUNK_FILE} has one starting with {TRUNK_SHA256_PREFIX})",
        )
    return checked_sha256(path, sha256, SHA256_KEY)


def trunk_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The ``features.<i>.<param>`` tensors of a torchvision AlexNet state_dict, keyed
    ``<i>.<param>``; ``classifier.*`` is dropped, any other key refused."""
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ConfigError(WEIGHTS_KEY, str(path), f"a state_dict file like {TRUNK_FILE}")
    unknown = sorted(k for k in state if not k.startswith(("features.", "classifier.")))
    if unknown:
        expected = f"torchvision's AlexNet state_dict ({TRUNK_FILE}); it has key {unknown[0]!r}"
        raise ConfigError(WEIGHTS_KEY, str(path), expected)
    return {k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")}


def _load_trunk(net: torch.nn.Module, features: dict[str, torch.Tensor], path) -> None:
    """Copy ``features`` into the package's sliced AlexNet (slice<k>.<i> holds features.<i>)."""
    where = {i: name for name, part in net.named_children() for i, _ in part.named_children()}
    mapped = {}
    for key, value in features.items():
        index = key.split(".", 1)[0]
        if index not in where:
            expected = f"torchvision's AlexNet state_dict; it has no layer 'features.{index}'"
            raise ConfigError(WEIGHTS_KEY, str(path), expected)
        mapped[f"{where[index]}.{key}"] = value
    try:
        net.load_state_dict(mapped, strict=True)
    except RuntimeError as err:
        expected = f"torchvision's AlexNet convolutions ({TRUNK_FILE}): {err}"
        raise ConfigError(WEIGHTS_KEY, str(path), expected) from None


def _load_calibration(model: torch.nn.Module) -> None:
    state = torch.load(calibration_file(), map_location="cpu", weights_only=True)
    loaded = model.load_state_dict(state, strict=False)
    lin_keys = {k for k in model.state_dict() if k.startswith("lin") and not k.startswith("lins")}
    if loaded.unexpected_keys or lin_keys - set(state):
        raise RuntimeError(f"lpips package's {calibration_file()} does not match LPIPS-{NET}")


def build_lpips(weights: str | Path, sha256: str | None, device: str = "cpu"):
    """``lpips.LPIPS`` (AlexNet, v0.1) with the local trunk; (module, trunk sha256)."""
    import lpips

    found = verify_trunk(weights, sha256)
    with warnings.catch_warnings():  # the package still passes torchvision's old `pretrained`
        warnings.filterwarnings("ignore", message=".*deprecated since 0.13", category=UserWarning)
        model = lpips.LPIPS(net=NET, version=VERSION, pretrained=False, pnet_rand=True,
                            verbose=False)  # fmt: skip
    _load_trunk(model.net, trunk_state(weights), weights)
    _load_calibration(model)
    model.requires_grad_(False)
    return model.eval().to(device), found


def lpips_version() -> str:
    return importlib.metadata.version("lpips")


def install_trunk(source: str | Path, sha256: str | None, out: str | Path) -> str:
    """Verify ``source`` (``perceptual.lpips.weights``) and copy it to ``out`` atomically."""
    found = verify_trunk(source, sha256)
    with open(source, "rb") as data:
        atomic_write(out, lambda f: shutil.copyfileobj(data, f))
    return found


def calibration_sha256() -> str:
    return sha256_file(calibration_file())
