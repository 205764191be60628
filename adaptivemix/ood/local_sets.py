"""OOD sets read from local copies of the public benchmark folders.

Every builder takes ``(resolution, channels, id_dataset, root, download=False)`` and returns
(N, C, R, R) float32 in [-1, 1]. Images are read with Pillow in sorted file-name (ODIN) or
list (OpenOOD) order, converted to RGB, or to grey (``L``) for one channel, resized so that
the shorter side is R (bilinear with antialiasing) and centre-cropped to R×R, as OpenOOD's
test transform ``Resize(R)`` + ``CenterCrop(R)`` does; the 32×32 ODIN images are only
resized when R ≠ 32. Nothing is downloaded: ``download`` is accepted because the config
fills it in, and a missing copy is refused by the format check before any job starts.

ODIN (Liang et al., ICLR 2018; the downloads are listed in the facebookresearch/odin
README). ``sources.<set name>.root`` is the folder the set's archive was extracted into:

- ``odin-tinyimagenet-crop``: Imagenet.tar.gz -> ``Imagenet/test/*.jpg`` (10,000)
- ``odin-tinyimagenet-resize``: Imagenet_resize.tar.gz ->
  ``Imagenet_resize/Imagenet_resize/*.jpg`` (10,000)
- ``odin-lsun-crop``: LSUN.tar.gz -> ``LSUN/test/*.jpg`` (10,000)
- ``odin-lsun-resize``: LSUN_resize.tar.gz -> ``LSUN_resize/LSUN_resize/*.jpg`` (10,000)
- ``odin-isun``: iSUN.tar.gz -> ``iSUN/iSUN_patches/*.jpeg`` (8,925)

The root may also be the archive's top folder itself (e.g. ``.../Imagenet``) or the image
folder itself. Files ending in .jpg, .jpeg, .png or .bmp (any case) are read; the counts
are not enforced.

OpenOOD v1.5 (Zhang et al. 2023), CIFAR benchmarks. ``sources.openood.root`` holds
``benchmark_imglist/<id>/test_<set>.txt`` and ``images_classic/``; each list line is
``<path relative to images_classic/> <label>`` (the label is ignored). The list is chosen
by the in-distribution dataset (``cifar10`` or ``cifar100``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from adaptivemix.data.cifar import CIFAR10_CLASSES, CIFAR100_CLASSES
from adaptivemix.data.source import LocalFormat
from adaptivemix.errors import ConfigError
from adaptivemix.ood.sets import register_ood_set

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


# ---------------------------------------------------------------------------- image files


def image_files(folder: Path) -> list[Path]:
    """The image files directly inside ``folder``, sorted by name."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def resize_center_crop(x: torch.Tensor, resolution: int) -> torch.Tensor:
    """(C, H, W) -> (C, R, R): shorter side to R (bilinear, antialias), then centre crop."""
    h, w = x.shape[-2:]
    if (h, w) != (resolution, resolution):
        short, long = (h, w) if h <= w else (w, h)
        size_long = max(resolution, int(resolution * long / short))
        size = (resolution, size_long) if h <= w else (size_long, resolution)
        x = F.interpolate(
            x.unsqueeze(0), size=size, mode="bilinear", align_corners=False, antialias=True
        )[0]
        top = round((size[0] - resolution) / 2)
        left = round((size[1] - resolution) / 2)
        x = x[:, top : top + resolution, left : left + resolution]
    return x.clamp(-1.0, 1.0).contiguous()


def load_image(path: Path, channels: int, resolution: int) -> torch.Tensor:
    """One image file -> (C, R, R) float32 in [-1, 1] (RGB, or grey for one channel)."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, not {channels!r}")
    with Image.open(path) as image:
        pixels = np.array(image.convert("L" if channels == 1 else "RGB"), dtype=np.uint8)
    x = torch.from_numpy(pixels.reshape(pixels.shape[0], pixels.shape[1], channels))
    x = x.permute(2, 0, 1).to(torch.float32).div_(127.5).sub_(1.0)
    return resize_center_crop(x, resolution)


def load_images(paths: Sequence[Path], channels: int, resolution: int) -> torch.Tensor:
    """Image files -> (N, C, R, R) float32 in [-1, 1], in the given order."""
    out = torch.empty((len(paths), channels, resolution, resolution), dtype=torch.float32)
    for i, path in enumerate(paths):
        out[i] = load_image(path, channels, resolution)
    return out


# --------------------------------------------------------------------------------- ODIN


@dataclass(frozen=True)
class OdinSet:
    name: str
    archive: str  # the file of the ODIN README's download link
    folder: str  # where the archive puts its images, relative to where it was extracted
    family: str
    size: int  # images in the published archive (documentation; not enforced)

    def candidates(self, root: Path) -> list[Path]:
        """Folders that may hold the images: root/<top>/<inner>, root/<inner>, root."""
        top, inner = self.folder.split("/")
        return [root / top / inner, root / inner, root]

    def image_folder(self, root: Path) -> Path | None:
        return next((f for f in self.candidates(root) if image_files(f)), None)

    def find_missing(self, root: Path) -> list[str]:
        if not root.is_dir():
            return [f"{root} (no such folder)"]
        if self.image_folder(root) is None:
            return [f"{self.folder}/*.jpg (no {'/'.join(IMAGE_SUFFIXES)} images found)"]
        return []

    def describe(self) -> str:
        return (
            f"{self.archive} extracted into the root: {self.folder}/<{self.size} images, "
            f"32x32 .jpg/.jpeg/.png>"
        )


ODIN_SETS = (
    OdinSet("odin-tinyimagenet-crop", "Imagenet.tar.gz", "Imagenet/test", "tinyimagenet", 10_000),
    OdinSet(
        "odin-tinyimagenet-resize",
        "Imagenet_resize.tar.gz",
        "Imagenet_resize/Imagenet_resize",
        "tinyimagenet",
        10_000,
    ),
    OdinSet("odin-lsun-crop", "LSUN.tar.gz", "LSUN/test", "lsun", 10_000),
    OdinSet("odin-lsun-resize", "LSUN_resize.tar.gz", "LSUN_resize/LSUN_resize", "lsun", 10_000),
    OdinSet("odin-isun", "iSUN.tar.gz", "iSUN/iSUN_patches", "isun", 8_925),
)


def read_odin(odin: OdinSet, resolution: int, channels: int, root: str | Path) -> torch.Tensor:
    """Every image of an ODIN set under ``root``, sorted by file name."""
    root = Path(root)
    folder = odin.image_folder(root)
    if folder is None:
        missing = ", ".join(odin.find_missing(root))
        expected = f"a folder in the format {odin.describe()} (missing: {missing})"
        raise ConfigError(f"sources.{odin.name}.root", str(root), expected)
    return load_images(image_files(folder), channels, resolution)


def odin_format(odin: OdinSet) -> LocalFormat:
    return LocalFormat(odin.describe(), odin.find_missing)


def _register_odin(odin: OdinSet) -> Callable[..., torch.Tensor]:
    @register_ood_set(
        odin.name, family=odin.family, classes=(), group="far", protocol="odin",
        local=odin_format(odin), source_key=odin.name,
    )  # fmt: skip
    def build(
        resolution: int, channels: int, id_dataset: str, root: str | Path, download: bool = False
    ) -> torch.Tensor:
        return read_odin(odin, resolution, channels, root)

    build.__doc__ = f"The ODIN set {odin.folder} ({odin.archive}) under ``root``."
    return build


for _odin in ODIN_SETS:
    _register_odin(_odin)


# ------------------------------------------------------------------------------ OpenOOD

OPENOOD_KEY = "openood"
OPENOOD_PROTOCOL = "openood-v1.5"
OPENOOD_IDS = ("cifar10", "cifar100")
LIST_DIR, IMAGE_DIR = "benchmark_imglist", "images_classic"


@dataclass(frozen=True)
class OpenOodSet:
    short: str  # the name in OpenOOD's list files: test_<short>.txt
    group: str
    id_datasets: tuple[str, ...]
    family: str
    classes: tuple[str, ...]

    @property
    def name(self) -> str:
        return f"openood-{self.short}"

    def list_file(self, id_dataset: str) -> str:
        return f"{LIST_DIR}/{id_dataset}/test_{self.short}.txt"

    def find_missing(self, root: Path) -> list[str]:
        """The image folder and at least one of the set's list files must exist."""
        if not root.is_dir():
            return [f"{root} (no such folder)"]
        missing = [] if (root / IMAGE_DIR).is_dir() else [f"{IMAGE_DIR}/"]
        lists = [self.list_file(i) for i in self.id_datasets]
        if not any((root / f).is_file() for f in lists):
            missing.append(" or ".join(lists))
        return missing

    def describe(self) -> str:
        return (
            f"OpenOOD v1.5's {LIST_DIR}/<id>/test_<set>.txt lists (lines '<path> <label>', "
            f"paths relative to {IMAGE_DIR}/) and {IMAGE_DIR}/; {self.name} needs "
            f"{' or '.join(self.list_file(i) for i in self.id_datasets)}"
        )


_BOTH = OPENOOD_IDS
OPENOOD_SETS = (
    OpenOodSet("cifar10", "near", ("cifar100",), "cifar10", CIFAR10_CLASSES),
    OpenOodSet("cifar100", "near", ("cifar10",), "cifar100", CIFAR100_CLASSES),
    OpenOodSet("tin", "near", _BOTH, "openood-tin", ()),
    OpenOodSet("mnist", "far", _BOTH, "openood-mnist", ()),
    OpenOodSet("svhn", "far", _BOTH, "openood-svhn", ()),
    OpenOodSet("texture", "far", _BOTH, "openood-texture", ()),
    OpenOodSet("places365", "far", _BOTH, "openood-places365", ()),
)


def read_image_list(path: Path) -> list[str]:
    """The image paths of an OpenOOD list: the text before the first space of each line."""
    lines = path.read_text().splitlines()
    return [line.strip().split(" ", 1)[0] for line in lines if line.strip()]


def read_openood(
    oset: OpenOodSet, resolution: int, channels: int, id_dataset: str, root: str | Path
) -> torch.Tensor:
    """Every image of ``oset``'s list for ``id_dataset``, in list order."""
    key = f"sources.{OPENOOD_KEY}.root"
    if id_dataset not in oset.id_datasets:
        raise ConfigError(
            f"ood.sets.{id_dataset}", oset.name,
            f"an OOD set defined for '{id_dataset}' ('{oset.name}' is for {oset.id_datasets})",
        )  # fmt: skip
    root = Path(root)
    list_path = root / oset.list_file(id_dataset)
    if not list_path.is_file():
        raise ConfigError(
            key, str(root),
            f"the list file {list_path} ({oset.list_file(id_dataset)} of OpenOOD v1.5, "
            f"for in-distribution '{id_dataset}')",
        )  # fmt: skip
    names = read_image_list(list_path)
    paths = [root / IMAGE_DIR / name for name in names]
    missing = [name for name, p in zip(names, paths, strict=True) if not p.is_file()]
    if not names or missing:
        shown = ", ".join(missing[:3]) + (" ..." if len(missing) > 3 else "")
        problem = f"missing: {shown}" if missing else "the list is empty"
        raise ConfigError(
            key, str(root),
            f"every image of {list_path} under {root / IMAGE_DIR} ({problem})",
        )  # fmt: skip
    return load_images(paths, channels, resolution)


def _register_openood(oset: OpenOodSet) -> Callable[..., torch.Tensor]:
    @register_ood_set(
        oset.name, family=oset.family, classes=oset.classes, group=oset.group,
        protocol=OPENOOD_PROTOCOL, local=LocalFormat(oset.describe(), oset.find_missing),
        source_key=OPENOOD_KEY, id_datasets=oset.id_datasets,
    )  # fmt: skip
    def build(
        resolution: int, channels: int, id_dataset: str, root: str | Path, download: bool = False
    ) -> torch.Tensor:
        return read_openood(oset, resolution, channels, id_dataset, root)

    build.__doc__ = f"OpenOOD v1.5's {oset.short} test images for a CIFAR model, from ``root``."
    return build


for _oset in OPENOOD_SETS:
    _register_openood(_oset)
