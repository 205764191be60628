"""The paper's GAN datasets, read from local copies: FFHQ 256 (all 70,000 images, and a
5,000-image subset), AFHQ-Cat, LSUN Church and LSUN Bedroom, plus CIFAR-10 for GANs.

Layout under ``sources.<name>.root`` (R = the configured resolution), first found wins:

- ``<stem>-RxR.zip``: the output of stylegan2-ada-pytorch's ``dataset_tool.py`` (PNG files,
  optional ``dataset.json``); stems ``ffhq``, ``afhq-cat``, ``lsun-church``, ``lsun-bedroom``;
- ``<stem>-RxR/``: a folder of images (e.g. that zip extracted; ``dataset.json`` on top);
- AFHQ only: ``train/cat/`` as distributed by StarGAN v2 (Choi et al. 2020; 512 px JPEGs,
  so at R=256 it must be resized into one of the forms above first).

LSUN comes as LMDB; convert it with ``dataset_tool.py --transform=center-crop --width=R
--height=R``. Counts (recorded, not enforced, so tiny test copies read the same way): FFHQ
70,000 (Karras et al. 2019); AFHQ-Cat 5,153 training images (the AdaptiveMix paper); LSUN
Church outdoor 126,227 training images (Yu et al. 2015); LSUN Bedroom as converted. Memory:
the whole set is held as uint8, 196,608 bytes per RGB image at 256 px: FFHQ 13.8 GB, Church
24.8 GB; the full Bedroom train set (about 3 million images) would not fit, so convert a
subset (``dataset_tool.py --max-images=N``). Decoding takes about 1.6 ms per 256 px PNG.

Splits: GAN metrics (``fid50k_full``) use every training image, so all images are ``train``
and ``val``/``test`` are empty; full sets keep the sorted file-name order. ``ffhq256-5k``
holds 5,000 images drawn without replacement by a ``torch.Generator`` seeded with
``subset_seed`` (source option, default 0), then sorted (``images.subset_indices``); the
provenance records the seed and the sha256 of the indices. Images are uint8. Labels come from
``dataset.json`` when it gives them (``num_classes`` = largest label + 1); otherwise every
image has label 0, the registered single class.

``cifar10-gan`` reads ``sources.cifar10`` (same layout as ``cifar10``) but, as GAN papers on
CIFAR-10 do, trains on all 50,000 official training images (no validation hold-out) at 32 px,
uint8; ``test`` is the official 10,000-image test batch, kept for test-split metrics.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from adaptivemix.data.base import SPLITS, ImageDataset, register_dataset
from adaptivemix.data.cifar import CIFAR10, CIFAR10_CLASSES, IMAGE_SIZE, read_cifar
from adaptivemix.data.images import (
    FOLDER_HASH_RULE,
    check_headers,
    files_sha256,
    indices_sha256,
    labels_for,
    open_source,
    read_images,
    subset_indices,
)
from adaptivemix.data.source import LocalFormat
from adaptivemix.errors import ConfigError
from adaptivemix.provenance import sha256_file

DEFAULT_SUBSET_SEED = 0  # fixed: changing it changes which 5,000 FFHQ images ffhq256-5k holds


@dataclass(frozen=True)
class GanSet:
    """One registered GAN dataset and where its files are."""

    name: str  # registered name, also its ``sources`` key
    stem: str  # file stem: <stem>-RxR.zip or <stem>-RxR/
    classes: tuple[str, ...]  # the single class of an unlabelled set
    subset: int | None = None  # draw this many images (None: all)
    extra_folders: tuple[str, ...] = ()  # other accepted folders, any resolution
    channels: int = 3

    def candidates(self, resolution: int) -> list[str]:
        base = f"{self.stem}-{resolution}x{resolution}"
        return [f"{base}.zip", f"{base}/", *(f"{f}/" for f in self.extra_folders)]

    def describe(self) -> str:
        forms = " or ".join(f"'{c}'" for c in self.candidates(0)).replace("0x0", "RxR")
        return f"{forms} inside the configured root (R = the resolution; see gan_sets.py)"

    def find_missing_at(self, root: Path, resolution: int) -> list[str]:
        if not root.is_dir():
            return [f"{root} (no such folder)"]
        if any(_exists(root, c) for c in self.candidates(resolution)):
            return []
        return [" or ".join(self.candidates(resolution))]

    def find_missing(self, root: Path) -> list[str]:
        """As :meth:`find_missing_at` but accepting a zip or folder at any resolution."""
        if not root.is_dir():
            return [f"{root} (no such folder)"]
        extra = any(_exists(root, f"{f}/") for f in self.extra_folders)
        if extra or any(root.glob(f"{self.stem}-*x*")):
            return []
        return [" or ".join(self.candidates(0)).replace("0x0", "RxR")]

    def verify(self, root: Path, resolution: int | None) -> None:
        """The start-up check of a present copy at ``resolution``: the zip's entry names (none
        leaving its folder), ``dataset.json`` and every image's header (size and mode), not
        the pixels (decoding, and a zip entry's CRC, are left to the job reading it)."""
        if resolution is None:
            return  # any resolution: which file the job will read is not known yet
        source = open_source(self.locate(root, resolution), f"sources.{self.name}.root")
        n = len(source.names)
        if self.subset is not None and n < self.subset:
            raise source.fail(None, f"at least {self.subset} images to draw from (found {n})")
        labels_for(source, list(source.names))
        check_headers(source, resolution, self.channels)

    def local_format(self) -> LocalFormat:
        return LocalFormat(
            self.describe(), self.find_missing, self.find_missing_at, False, self.verify
        )

    def locate(self, root: Path, resolution: int) -> Path:
        missing = self.find_missing_at(root, resolution)
        if missing:
            found = sorted(p.name for p in root.glob(f"{self.stem}-*")) if root.is_dir() else []
            also = f"; found {found}" if found else ""
            expected = f"a folder in the format {self.describe()} (missing: {missing[0]}{also})"
            raise ConfigError(f"sources.{self.name}.root", str(root), expected)
        first = next(c for c in self.candidates(resolution) if _exists(root, c))
        return root / first.rstrip("/")


def _exists(root: Path, candidate: str) -> bool:
    path = root / candidate.rstrip("/")
    return path.is_dir() if candidate.endswith("/") else path.is_file()


def _check_resolution(resolution) -> None:
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
        raise ConfigError("data.resolution", resolution, "a positive integer")


def _options(gs: GanSet, options: dict) -> int | None:
    """The subset seed from the source options; any other option is refused."""
    allowed = {"subset_seed"} if gs.subset else set()
    for option, value in options.items():
        if option not in allowed:
            choices = ", ".join(sorted({"root", "download", *allowed}))
            raise ConfigError(f"sources.{gs.name}.{option}", value, f"one of the keys {choices}")
    if not gs.subset:
        return None
    seed = options.get("subset_seed", DEFAULT_SUBSET_SEED)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"sources.{gs.name}.subset_seed", seed, "a non-negative integer")
    return seed


def empty_splits(train: torch.Tensor, labels: torch.Tensor) -> tuple[dict, dict]:
    """``train`` holds everything; ``val``/``test`` are empty tensors of the same shape."""
    images = {s: train if s == "train" else train[:0].clone() for s in SPLITS}
    ys = {s: labels if s == "train" else labels[:0].clone() for s in SPLITS}
    return images, ys


def build_gan_set(
    gs: GanSet, resolution: int, root: str | Path, download: bool = False, **options
) -> ImageDataset:
    _check_resolution(resolution)
    seed = _options(gs, options)
    if download:
        raise ConfigError(f"sources.{gs.name}.download", True, "false (no download exists)")
    path = gs.locate(Path(root), resolution)
    source = open_source(path, f"sources.{gs.name}.root")
    n = len(source.names)
    if gs.subset is not None and n < gs.subset:
        raise source.fail(None, f"at least {gs.subset} images to draw the subset from (found {n})")
    index = torch.arange(n) if seed is None else subset_indices(n, gs.subset, seed)
    names = [source.names[i] for i in index.tolist()]
    labels, num_classes, label_origin = labels_for(source, names)
    train = read_images(source, names, resolution, gs.channels)
    provenance = {
        "source": source.kind,
        "file": path.name,
        "sha256": source.sha256(),
        "sha256_of": "the zip file" if source.kind == "zip" else FOLDER_HASH_RULE,
        "labels": label_origin,
        "images_found": n,
        "images_used": len(names),
        "subset_seed": seed,
        "indices_sha256": indices_sha256(index),
    }
    images, ys = empty_splits(train, labels)
    return ImageDataset(gs.name, images, ys, num_classes, provenance)


GAN_SETS = (
    GanSet("ffhq256", "ffhq", ("face",)),
    GanSet("ffhq256-5k", "ffhq", ("face",), subset=5000),
    GanSet("afhq-cat", "afhq-cat", ("cat",), extra_folders=("train/cat",)),
    GanSet("lsun-church", "lsun-church", ("church",)),
    GanSet("lsun-bedroom", "lsun-bedroom", ("bedroom",)),
)


def _register(gs: GanSet) -> None:
    @register_dataset(gs.name, family=gs.stem, classes=gs.classes, local=gs.local_format())
    def build(resolution: int, root: str | Path, download: bool = False, **options):
        return build_gan_set(gs, resolution, root, download, **options)

    build.__doc__ = f"{gs.name}: all images in ``train``, uint8 (see the module docstring)."


for _gs in GAN_SETS:
    _register(_gs)


# ------------------------------------------------------------------------- CIFAR-10 for GANs


def cifar_sha256(root: Path) -> tuple[str, str, str]:
    """(kind, file, sha256) of what ``read_cifar`` reads: the folder when complete, else the
    archive (the folder's files hashed by the rule of ``images.FOLDER_HASH_RULE``)."""
    folder = root / CIFAR10.folder
    if all((folder / f).is_file() for f in CIFAR10.files):
        files = ((name, (folder / name).read_bytes()) for name in sorted(CIFAR10.files))
        return "folder", CIFAR10.folder, files_sha256(files)
    return "tar.gz", CIFAR10.archive, sha256_file(root / CIFAR10.archive)


@register_dataset(
    "cifar10-gan",
    family="cifar10",
    classes=CIFAR10_CLASSES,
    local=CIFAR10.local_format(),
    source_key="cifar10",
)
def build_cifar10_gan(resolution: int, root: str | Path, download: bool = False) -> ImageDataset:
    """CIFAR-10's 50,000 training images as uint8 ``train`` at 32 px; ``val`` empty."""
    if resolution != IMAGE_SIZE:
        raise ConfigError("data.resolution", resolution, f"{IMAGE_SIZE} (CIFAR-10 is 32×32)")
    root = Path(root)
    if download and CIFAR10.find_missing(root):
        from torchvision.datasets.utils import download_url

        download_url(CIFAR10.url, str(root), filename=CIFAR10.archive, md5=CIFAR10.md5)
    stored = read_cifar(root, CIFAR10)
    kind, file, digest = cifar_sha256(root)
    images, labels = {}, {}
    for split, (rows, y) in (("train", stored["train"]), ("test", stored["test"])):
        images[split] = torch.from_numpy(rows.reshape(-1, 3, IMAGE_SIZE, IMAGE_SIZE).copy())
        labels[split] = torch.from_numpy(y.astype(np.int64))
    images["val"], labels["val"] = images["train"][:0].clone(), labels["train"][:0].clone()
    provenance = {
        "source": kind,
        "file": file,
        "sha256": digest,
        "sha256_of": "the archive file" if kind == "tar.gz" else FOLDER_HASH_RULE,
        "labels": "official",
        "images_found": int(images["train"].shape[0]),
        "images_used": int(images["train"].shape[0]),
        "subset_seed": None,
        "indices_sha256": indices_sha256(torch.arange(images["train"].shape[0])),
    }
    return ImageDataset("cifar10-gan", images, labels, len(CIFAR10_CLASSES), provenance)
