"""clean-fid's Inception network as a feature backbone, in clean-fid's two TorchScript modes.

The network is the TorchScript translation of TensorFlow's ``inception-2015-12-05`` graph that
StyleGAN2-ADA published and clean-fid (0.1.35) loads for its ``clean`` and
``legacy_tensorflow`` modes (``cleanfid.features.build_feature_extractor``). It is read from
a configured local file (``backbone.weights``), checked against a sha256
(``backbone.sha256``), and never downloaded.

How images reach the network follows clean-fid, per mode:

- ``inception-clean`` (protocol ``clean``): each image, as 0..255 pixels (H, W, 3), is resized
  to 299×299 by clean-fid's own resizer (``cleanfid.resize.build_resizer("clean")``: PIL
  bicubic per channel on float32, no re-quantisation), then the network's ``layers`` get
  ``(x − 128) / 128``, as ``cleanfid.inception_torchscript.InceptionV3W.forward`` does without
  ``resize_inside``.
- ``inception-legacy-tensorflow`` (protocol ``legacy_tensorflow``): the 0..255 tensor goes in at
  its own size and the network resizes internally (``base(x, return_features=True)``, clean-fid's
  ``resize_inside=True``), reproducing the numbers of the TensorFlow FID code.

Our interpretation where clean-fid leaves a choice: clean-fid takes generated images in
[0, 255] as they come, and real images as uint8 files. Here every image, real or generated, is
first quantised to uint8 by ``(x·127.5 + 128).clamp(0, 255)`` truncated (the rounding of
StyleGAN2-ADA's ``metric_utils``, which writes generated images as uint8), so generated images
are measured exactly like stored real ones; uint8 data passes through this unchanged. 1-channel
images are repeated to 3 channels, as a grayscale file read with ``convert('RGB')`` would be.

clean-fid's ``InceptionV3W`` itself cannot be reused: it only loads a file named
``inception-2015-12-05.pt`` from a folder (downloading it when absent), without
``map_location``, and fixes the output to 2048 dimensions; we follow its ``forward``.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import torch

from adaptivemix.errors import ConfigError
from adaptivemix.io import atomic_write
from adaptivemix.metrics.backbones import BACKBONES, FeatureBackbone, checked_sha256

WEIGHTS_FILE = "inception-2015-12-05.pt"
#: Where clean-fid 0.1.35 downloads the file (``cleanfid.downloads_helper.inception_url``).
INCEPTION_URL = (
    "https://nvlabs-fi-cdn.nvidia.com/stylegan2-ada-pytorch/pretrained/metrics/"
    "inception-2015-12-05.pt"
)
#: sha256 of that file. Neither NVIDIA nor clean-fid publishes one; this value is stated in
#: crowsonkb/k-diffusion (k_diffusion/evaluation.py, the ``digest`` its downloader checks for
#: this URL) and independently in several other public projects that pin the same file. It is
#: the default of ``backbone.sha256``; setting that key overrides it.
INCEPTION_SHA256 = "f58cb9b6ec323ed63459aa4fb441fe750cfe39fafad6da5cb504a16f19e958f4"
#: backbone name -> clean-fid mode (the protocol string recorded with every metric)
INCEPTION_MODES = {"inception-clean": "clean", "inception-legacy-tensorflow": "legacy_tensorflow"}
#: images per forward pass (clean-fid's default batch size)
BATCH_SIZE = 128
CLEAN_SIZE = 299


def _sha256_key(weights_key: str) -> str:
    """``backbone.weights`` -> ``backbone.sha256``: the sibling key holding the hash."""
    return weights_key.rsplit(".", 1)[0] + ".sha256" if "." in weights_key else "sha256"


def verify_weights(
    path: str | Path | None, expected_sha256: str | None = None, key: str = "backbone.weights"
) -> str:
    """Check the local Inception weights file and return its sha256.

    ``expected_sha256`` None means the published hash :data:`INCEPTION_SHA256`. A missing file
    raises one :class:`ConfigError` naming ``key``, the file and where to get it; a file with
    another hash raises one naming the file, both hashes and the sha256 key. Nothing is
    ever downloaded.
    """
    if not path or not Path(path).is_file():
        raise ConfigError(
            key,
            str(path) if path else None,
            f"the path of an existing local copy of clean-fid's Inception network "
            f"{WEIGHTS_FILE} (file not found). Download it from {INCEPTION_URL} and set {key} "
            "to its path; nothing is downloaded automatically",
        )
    sha_key = _sha256_key(key)
    note = "" if expected_sha256 else f" (default {sha_key}: published sha256 of {WEIGHTS_FILE})"
    return checked_sha256(path, expected_sha256 or INCEPTION_SHA256, sha_key, note)


def missing_backbone_files(backbone_cfg: dict) -> list[str]:
    """Lines for the start-up check: the Inception weights file if missing or not the expected
    one (``backbone.weights``, ``backbone.sha256``); empty when fine or not an Inception
    backbone."""
    if backbone_cfg.get("name") not in INCEPTION_MODES:
        return []
    try:
        verify_weights(backbone_cfg.get("weights"), backbone_cfg.get("sha256"))
    except ConfigError as err:
        return [str(err)]
    return []


def to_pixels(images: torch.Tensor) -> torch.Tensor:
    """[-1, 1] float images -> uint8 pixels by StyleGAN2-ADA's ``(x·127.5 + 128)`` truncation.

    The inverse of ``as_float_images`` (u/127.5 − 1) on uint8 data: u + 0.5 truncates to u.
    """
    return (images * 127.5 + 128).clamp(0, 255).to(torch.uint8)


class InceptionBackbone(FeatureBackbone):
    """The TorchScript Inception network in one clean-fid mode; features of every image.

    Takes 3-channel (RGB) or 1-channel images (repeated to RGB). ``embed`` is not
    differentiable (uint8 quantisation, PIL resize): use it for metrics only.
    """

    def __init__(self, module: torch.nn.Module, name: str, mode: str, sha256: str, device: str):
        if mode not in INCEPTION_MODES.values():
            raise ValueError(f"unknown clean-fid mode {mode!r}; choose one of {INCEPTION_MODES}")
        self.module = module.eval()
        for param in module.parameters():  # ScriptModules have no requires_grad_()
            param.requires_grad_(False)
        self.mode = mode
        # imported here: registering this backbone must not import clean-fid (and requests)
        from cleanfid.resize import build_resizer

        self._resize = build_resizer(mode)  # clean-fid's own resizer for this mode
        super().__init__(name, mode, sha256, 0, device, in_channels=3)
        probe = torch.zeros(1, 3, CLEAN_SIZE, CLEAN_SIZE, device=device)
        with torch.no_grad():
            self.feature_dim = int(self.embed_batch(probe).shape[1])

    def group_count(self, channels: int) -> int:
        if channels not in (1, 3):
            raise ValueError(
                f"backbone '{self.name}' measures 3-channel (RGB) or 1-channel images "
                f"(repeated to RGB); got {channels} channels"
            )
        return 1

    def _as_groups(self, images: torch.Tensor) -> tuple[torch.Tensor, int]:
        if images.ndim != 4:
            raise ValueError(f"expected images of shape (N, C, H, W), got {tuple(images.shape)}")
        self.group_count(images.shape[1])
        return images.expand(-1, 3, -1, -1), 1

    def embed(self, images: torch.Tensor) -> torch.Tensor:
        if images.requires_grad:
            raise ValueError(
                f"backbone '{self.name}' is not differentiable (its input is quantised to "
                "uint8 and resized with PIL, as clean-fid does); use it for metrics only"
            )
        return super().embed(images)

    def features(self, images: torch.Tensor, batch_size: int = BATCH_SIZE) -> np.ndarray:
        return super().features(images, batch_size)

    def embed_batch(self, images: torch.Tensor) -> torch.Tensor:
        """(B, 3, H, W) in [-1, 1] -> (B, feature_dim) pool features, per clean-fid's mode."""
        from cleanfid.inception_torchscript import disable_gpu_fuser_on_pt19

        pixels = to_pixels(images).to(torch.float32)
        with disable_gpu_fuser_on_pt19():
            if self.mode == "legacy_tensorflow":
                out = self.module(pixels, return_features=True)
            else:
                out = self.module.layers((self._clean_resize(pixels) - 128) / 128)
        return out.reshape(images.shape[0], -1).to(torch.float32)

    def _clean_resize(self, pixels: torch.Tensor) -> torch.Tensor:
        """clean-fid's per-image PIL bicubic resize to 299×299 of 0..255 (B, 3, H, W) pixels."""
        arrays = pixels.permute(0, 2, 3, 1).cpu().numpy()  # (B, H, W, 3), the resizer's layout
        resized = np.stack([self._resize(a) for a in arrays]).transpose(0, 3, 1, 2)
        return torch.from_numpy(np.ascontiguousarray(resized)).to(self.device, torch.float32)


#: Written beside a copy the workflow installed: the sha256 it was verified against.
SHA256_SUFFIX = ".sha256"


def installed_sha256(weights_path: str | Path) -> str | None:
    """The hash a workflow-installed copy was verified against (``backbone.sha256``), if any."""
    sidecar = Path(str(weights_path) + SHA256_SUFFIX)
    return sidecar.read_text().strip() if sidecar.exists() else None


def install_weights(source: str | Path, expected_sha256: str | None, out: str | Path) -> str:
    """Verify ``source`` (key ``backbone.weights``), then copy it to ``out`` atomically with
    its verified hash beside it, so later loaders check the copy against the same hash."""
    found = verify_weights(source, expected_sha256)
    with open(source, "rb") as data:
        atomic_write(out, lambda f: shutil.copyfileobj(data, f))
    atomic_write(str(out) + SHA256_SUFFIX, lambda f: f.write(found.encode() + b"\n"))
    return found


def _loader(name: str, mode: str):
    def load(
        weights_path: str | Path, device: str = "cpu", sha256: str | None = None
    ) -> FeatureBackbone:
        found = verify_weights(weights_path, sha256 or installed_sha256(weights_path))
        with warnings.catch_warnings():  # TorchScript is deprecated, yet it is the file's format
            warnings.filterwarnings(
                "ignore", message=".*jit.load.* deprecated", category=FutureWarning
            )
            module = torch.jit.load(str(weights_path), map_location=device)
        return InceptionBackbone(module, name, mode, found, device)

    load.__name__ = f"load_{name.replace('-', '_')}"
    load.__doc__ = (
        f"clean-fid's Inception network in mode '{mode}' from the local TorchScript file "
        "``weights_path`` (sha256 checked, default the published one); never downloads."
    )
    return load


for _name, _mode in INCEPTION_MODES.items():
    BACKBONES.register(_name)(_loader(_name, _mode))
