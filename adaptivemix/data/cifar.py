"""CIFAR-10 and CIFAR-100 (Krizhevsky 2009), read from a local copy of the python version.

Format (https://www.cs.toronto.edu/~kriz/cifar.html, "CIFAR-10 python version"): every
batch file is a pickled dict whose ``b"data"`` is a (n, 3072) uint8 array, one row per
image holding the 1,024 red, then green, then blue values of the 32×32 image in row-major
order, and whose labels are ``b"labels"`` (CIFAR-10) or ``b"fine_labels"`` (CIFAR-100, we
use the 100 fine classes). The meta file names the classes (``b"label_names"`` /
``b"fine_label_names"``).

The configured root (``sources.cifar10.root`` / ``sources.cifar100.root``) holds either
the extracted folder (``cifar-10-batches-py/`` or ``cifar-100-python/``) or the original
archive (``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz``), which is read member by
member in memory; nothing is extracted to disk.

We read the pickles ourselves instead of using ``torchvision.datasets.CIFAR10``: that class
checks the md5 of every full-size file, so a small archive in the real format (what the
tests write) could not be read. The pickles are loaded with an unpickler that only
reconstructs NumPy arrays, so a tampered file cannot run code.

Splits: ``test`` is the official test batch. ``val`` is held out of the official training
images, stratified by class with a constant seed: 10% of each class, i.e. 5,000 of the
50,000 images (500 per CIFAR-10 class, 50 per CIFAR-100 class), and ``train`` is the rest
(45,000). A smaller copy (a test archive) gets the same 10% stratified split, rounded to
whole images as evenly over the classes as possible. Images are float32 in [-1, 1]
(``v / 127.5 - 1``); at a resolution other than 32 they are resized bilinearly with
antialiasing. At 32 px the prepared dataset takes about 700 MB of memory.
"""

from __future__ import annotations

import io
import pickle
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from adaptivemix.data.base import ImageDataset, register_dataset
from adaptivemix.data.source import LocalFormat
from adaptivemix.data.splits import stratified_holdout
from adaptivemix.errors import ConfigError

CIFAR10_CLASSES = (
    "airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck",
)  # fmt: skip
# the 100 fine labels in label order (the official meta file lists them alphabetically)
_CIFAR100_NAMES = """
    apple aquarium_fish baby bear beaver bed bee beetle bicycle bottle bowl boy bridge bus
    butterfly camel can castle caterpillar cattle chair chimpanzee clock cloud cockroach couch
    crab crocodile cup dinosaur dolphin elephant flatfish forest fox girl hamster house
    kangaroo keyboard lamp lawn_mower leopard lion lizard lobster man maple_tree motorcycle
    mountain mouse mushroom oak_tree orange orchid otter palm_tree pear pickup_truck pine_tree
    plain plate poppy porcupine possum rabbit raccoon ray road rocket rose sea seal shark shrew
    skunk skyscraper snail snake spider squirrel streetcar sunflower sweet_pepper table tank
    telephone television tiger tractor train trout tulip turtle wardrobe whale willow_tree wolf
    woman worm
"""
CIFAR100_CLASSES = tuple(_CIFAR100_NAMES.split())

SPLIT_SEED = 20230318  # fixed forever: changing it changes every CIFAR train/val split
VAL_FRACTION = 0.1  # 5,000 of the 50,000 official training images
IMAGE_SIZE = 32
ROW_BYTES = 3 * IMAGE_SIZE * IMAGE_SIZE
MAX_RESOLUTION = 64  # 60,000 float32 RGB images at 64 px already take 2.9 GB


@dataclass(frozen=True)
class CifarLayout:
    """Where one CIFAR version keeps its files and under which pickle keys."""

    name: str  # the registered dataset name, also its ``sources`` key
    folder: str  # the extracted folder inside the root
    archive: str  # the original archive inside the root
    train_files: tuple[str, ...]
    test_file: str
    meta_file: str
    label_key: bytes
    names_key: bytes
    classes: tuple[str, ...]
    url: str
    md5: str  # of the official archive (only used by ``download=True``)

    @property
    def files(self) -> tuple[str, ...]:
        return (*self.train_files, self.test_file, self.meta_file)

    def describe(self) -> str:
        return (
            f"{self.folder}/{{{','.join(self.files)}}} (the extracted python version) "
            f"or the archive {self.archive}, inside the configured root"
        )

    def find_missing(self, root: Path) -> list[str]:
        """[] when ``root`` holds the archive or the complete folder; else what is missing."""
        if not root.is_dir():
            return [f"{root} (no such folder)"]
        if (root / self.archive).is_file():
            return []
        folder = root / self.folder
        if not folder.is_dir():
            return [f"{self.folder}/ (or {self.archive})"]
        return [f"{self.folder}/{f}" for f in self.files if not (folder / f).is_file()]

    def verify(self, root: Path, resolution: int | None = None) -> None:
        """The start-up check of a present copy: read it as a job would (the archive streamed
        to its end, every pickle loaded and checked), without resizing or keeping it."""
        read_cifar(root, self)

    def local_format(self) -> LocalFormat:
        return LocalFormat(self.describe(), self.find_missing, verify=self.verify)


CIFAR10 = CifarLayout(
    name="cifar10",
    folder="cifar-10-batches-py",
    archive="cifar-10-python.tar.gz",
    train_files=tuple(f"data_batch_{i}" for i in range(1, 6)),
    test_file="test_batch",
    meta_file="batches.meta",
    label_key=b"labels",
    names_key=b"label_names",
    classes=CIFAR10_CLASSES,
    url="https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    md5="c58f30108f718f92721af3b95e74349a",
)
CIFAR100 = CifarLayout(
    name="cifar100",
    folder="cifar-100-python",
    archive="cifar-100-python.tar.gz",
    train_files=("train",),
    test_file="test",
    meta_file="meta",
    label_key=b"fine_labels",
    names_key=b"fine_label_names",
    classes=CIFAR100_CLASSES,
    url="https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
    md5="eb9058c3a382ffc7106e4002c42a8d85",
)


class _ArrayUnpickler(pickle.Unpickler):
    """Unpickles plain containers and NumPy arrays only (what the CIFAR files hold)."""

    ALLOWED = frozenset(
        {
            ("_codecs", "encode"),  # bytes in a protocol-2 pickle written by Python 3
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy.core.multiarray", "scalar"),
            ("numpy._core.multiarray", "scalar"),
            ("numpy.core.numeric", "_frombuffer"),
            ("numpy._core.numeric", "_frombuffer"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
        }
    )

    def find_class(self, module: str, name: str):
        if (module, name) not in self.ALLOWED:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name} from a CIFAR file")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):
            # the published files name NumPy 1's module; NumPy 2 warns when it is imported
            module = "numpy._core." + module.removeprefix("numpy.core.")
        return super().find_class(module, name)


def load_pickle(data: bytes) -> dict:
    """A CIFAR pickle (python 2 protocol, byte-string keys) -> its dict."""
    return _ArrayUnpickler(io.BytesIO(data), encoding="bytes").load()


#: What a truncated or corrupt archive or pickle raises while it is read.
UNREADABLE = (tarfile.TarError, EOFError, zlib.error, OSError, pickle.UnpicklingError,
              ValueError, IndexError, KeyError, TypeError, AttributeError)  # fmt: skip


def _load_file(raw: bytes, root: Path, layout: CifarLayout, file: str) -> dict:
    """``load_pickle`` of one of the copy's files; a broken one names the key and the file."""
    try:
        loaded = load_pickle(raw)
    except UNREADABLE as err:
        where = _where(root, layout, file)
        raise ConfigError(
            f"sources.{layout.name}.root", where, f"an intact CIFAR pickle ({type(err).__name__}: "
            f"{err}); the file is truncated or corrupt: fetch {layout.archive} again",
        ) from None  # fmt: skip
    if not isinstance(loaded, dict):
        where = _where(root, layout, file)
        raise ConfigError(f"sources.{layout.name}.root", where, "a pickled dict (CIFAR python)")
    return loaded


def _where(root: Path, layout: CifarLayout, file: str) -> str:
    """The file as the user finds it: in the extracted folder, or an entry of the archive."""
    folder = root / layout.folder
    if all((folder / f).is_file() for f in layout.files):
        return str(folder / file)
    return f"{root / layout.archive}:{layout.folder}/{file}"


def read_files(root: Path, layout: CifarLayout) -> dict[str, bytes]:
    """The raw bytes of every file of ``layout``, from the extracted folder or the archive."""
    folder = root / layout.folder
    if folder.is_dir() and all((folder / f).is_file() for f in layout.files):
        return {f: (folder / f).read_bytes() for f in layout.files}
    archive = root / layout.archive
    if not archive.is_file():
        missing = ", ".join(layout.find_missing(root))
        expected = f"a folder in the format {layout.describe()} (missing: {missing})"
        raise ConfigError(f"sources.{layout.name}.root", str(root), expected)
    found = _read_archive(archive, layout)
    missing = [f"{layout.folder}/{f}" for f in layout.files if f not in found]
    if missing:
        raise ConfigError(
            f"sources.{layout.name}.root",
            str(root),
            f"an archive {layout.archive} holding {', '.join(missing)}",
        )
    return found


def _read_archive(archive: Path, layout: CifarLayout) -> dict[str, bytes]:
    """The layout's files found in the archive, streamed to its end (so a truncated archive
    is refused here, naming it and the last entry read, not met later as a bare EOFError)."""
    wanted = {f"{layout.folder}/{f}": f for f in layout.files}
    found: dict[str, bytes] = {}
    last = "stopped at its start"
    try:
        with tarfile.open(archive, "r:gz") as tar:
            for member in tar:  # sequential: a gzip stream cannot seek back cheaply
                name = member.name.removeprefix("./")
                if member.isfile() and name in wanted:
                    handle = tar.extractfile(member)
                    assert handle is not None  # a regular file member always has a handle
                    found[wanted[name]] = handle.read()
                last = f"stopped after the entry {member.name}"
    except (tarfile.TarError, EOFError, zlib.error, OSError) as err:
        raise ConfigError(
            f"sources.{layout.name}.root", str(archive),
            f"an intact gzip-compressed tar archive (reading {last}: "
            f"{type(err).__name__}: {err}); it is truncated or corrupt: fetch it again "
            f"from {layout.url}",
        ) from None  # fmt: skip
    return found


def _batch(raw: bytes, layout: CifarLayout, file: str, root: Path) -> tuple[np.ndarray, np.ndarray]:
    batch = _load_file(raw, root, layout, file)
    data = np.asarray(batch.get(b"data"))
    labels = np.asarray(batch.get(layout.label_key, []), dtype=np.int64)
    n_classes = len(layout.classes)
    if (
        data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != ROW_BYTES
        or labels.shape != (data.shape[0],)
        or (labels.size and (labels.min() < 0 or labels.max() >= n_classes))
    ):
        raise ConfigError(
            f"sources.{layout.name}.root",
            str(root),
            f"{file} to hold b'data' as (n, {ROW_BYTES}) uint8 rows and n "
            f"{layout.label_key!r} in 0..{n_classes - 1}",
        )
    return data, labels


def read_cifar(root: str | Path, layout: CifarLayout) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """``{"train": (rows, labels), "test": (rows, labels)}`` as stored: uint8 (n, 3072).

    The meta file's class names must be the official ones, in order.
    """
    root = Path(root)
    files = read_files(root, layout)
    meta = _load_file(files.pop(layout.meta_file), root, layout, layout.meta_file)
    names = [n.decode() for n in meta.get(layout.names_key, [])]
    if tuple(names) != layout.classes:
        raise ConfigError(
            f"sources.{layout.name}.root",
            str(root),
            f"{layout.meta_file} to list the {len(layout.classes)} official class names "
            f"under {layout.names_key!r} (got {len(names)} names: {names[:3]} ...)",
        )
    parts = [_batch(files.pop(f), layout, f, root) for f in layout.train_files]  # frees bytes
    train = (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]))
    del parts
    test = _batch(files.pop(layout.test_file), layout, layout.test_file, root)
    return {"train": train, "test": test}


def rows_to_images(rows: np.ndarray) -> torch.Tensor:
    """(n, 3072) uint8 CIFAR rows -> (n, 3, 32, 32) float32 in [-1, 1]: ``v / 127.5 - 1``."""
    x = torch.from_numpy(rows.reshape(-1, 3, IMAGE_SIZE, IMAGE_SIZE)).to(torch.float32)
    return x.div_(127.5).sub_(1.0)


def resize_images(x: torch.Tensor, resolution: int, chunk: int = 2048) -> torch.Tensor:
    """(N, C, H, W) in [-1, 1] -> (N, C, R, R): bilinear with antialias, clamped to [-1, 1]."""
    if x.shape[-2:] == (resolution, resolution):
        return x.contiguous()
    out = torch.empty((x.shape[0], x.shape[1], resolution, resolution), dtype=x.dtype)
    for start in range(0, x.shape[0], chunk):
        part = x[start : start + chunk]
        out[start : start + chunk] = F.interpolate(
            part, size=(resolution, resolution), mode="bilinear", align_corners=False,
            antialias=True,
        ).clamp_(-1.0, 1.0)  # fmt: skip
    return out


def build_cifar(
    layout: CifarLayout, resolution: int, root: str | Path, download: bool = False
) -> ImageDataset:
    if not isinstance(resolution, int) or not 1 <= resolution <= MAX_RESOLUTION:
        raise ConfigError("data.resolution", resolution, f"an integer from 1 to {MAX_RESOLUTION}")
    root = Path(root)
    if download and layout.find_missing(root):
        from torchvision.datasets.utils import download_url

        download_url(layout.url, str(root), filename=layout.archive, md5=layout.md5)
    stored = read_cifar(root, layout)
    train_rows, train_labels = stored["train"]
    kept, held_out = stratified_holdout(train_labels, VAL_FRACTION, SPLIT_SEED)
    chosen = {
        "train": (train_rows[kept], train_labels[kept]),
        "val": (train_rows[held_out], train_labels[held_out]),
        "test": stored["test"],
    }
    del stored, train_rows
    images, labels = {}, {}
    for split, (rows, y) in chosen.items():
        images[split] = resize_images(rows_to_images(rows), resolution)
        labels[split] = torch.from_numpy(y.astype(np.int64))
    return ImageDataset(layout.name, images, labels, num_classes=len(layout.classes))


def _register(layout: CifarLayout) -> Callable[..., ImageDataset]:
    @register_dataset(
        layout.name, family=layout.name, classes=layout.classes, local=layout.local_format()
    )
    def build(resolution: int, root: str | Path, download: bool = False) -> ImageDataset:
        return build_cifar(layout, resolution, root, download)

    build.__doc__ = (
        f"{layout.name} at ``resolution`` px from ``root`` (see the module docstring); "
        f"``download=True`` fetches {layout.archive} into ``root`` when it is missing."
    )
    return build


build_cifar10 = _register(CIFAR10)
build_cifar100 = _register(CIFAR100)
