"""Image sets stored as a folder of image files or a stylegan2-ada-style zip archive.

Format followed: the output of NVIDIA's stylegan2-ada-pytorch ``dataset_tool.py`` and what
its ``training/dataset.py`` (``ImageFolderDataset``) reads: PNG files (``00000/img00000000.png``
...) in a zip, or any folder tree of images; an optional ``dataset.json`` at the top holds
``{"labels": [["00000/img00000000.png", 6], ...]}`` or ``{"labels": null}``. As upstream,
the images are every file with an image extension (we take ``.png``, ``.jpg``, ``.jpeg``,
any case), in sorted order of their relative path with ``/`` separators; other files are
ignored. Our interpretation, stricter than upstream: labels must be non-negative integers
(class indices; upstream also allows vectors) and name exactly the images present.

Nothing is resized or converted: every image must have the configured size and channel
count (RGB for 3 channels, L for 1), else one :class:`ConfigError` names the file or archive
entry, what it is and what is expected (resizing is the user's job, e.g. with
``dataset_tool.py --width=256 --height=256``). Zip members are read in memory, never
extracted; an entry with an absolute path or a ``..`` component is refused all the same, as
is a corrupt entry (bad CRC, broken compressed data) or image (e.g. a truncated PNG; this
relies on Pillow's default ``ImageFile.LOAD_TRUNCATED_IMAGES = False``). JPEG pixels depend
on the libjpeg build; PNG pixels are exact.

Checksums (the dataset's provenance): a zip is hashed as a file (sha256 of its bytes); a
folder as the sha256 over its images and ``dataset.json`` in sorted relative-path order, each
contributing its path (UTF-8), a NUL byte, its size as 8 bytes big-endian, then its bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import zipfile
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from adaptivemix.errors import ConfigError
from adaptivemix.provenance import sha256_bytes, sha256_file

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg")
LABELS_FILE = "dataset.json"
MODES = {1: "L", 3: "RGB"}  # channels -> the Pillow mode an image must have
FOLDER_HASH_RULE = "per file in sorted order: path (UTF-8), NUL, size (8 bytes BE), bytes"
RESIZE_HINT = (
    "images are never resized here; resize the set beforehand, e.g. with stylegan2-ada-pytorch's "
    "dataset_tool.py --width={r} --height={r}"
)


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_EXTENSIONS)


def unsafe_entry(name: str) -> bool:
    """True for a zip entry name that would land outside the target folder if extracted."""
    parts = re.split(r"[/\\]", name)
    return name.startswith(("/", "\\")) or bool(re.match(r"^[A-Za-z]:", name)) or ".." in parts


@dataclass(frozen=True)
class ImageSource:
    """A folder or zip of images: the sorted image names and how to read each one's bytes."""

    kind: str  # "zip" | "folder"
    path: Path
    key: str  # the config key errors name, e.g. "sources.ffhq256.root"
    names: tuple[str, ...]  # image paths relative to the top, "/"-separated, sorted
    has_labels_file: bool

    def where(self, name: str) -> str:
        return f"{self.path}:{name}" if self.kind == "zip" else str(self.path / name)

    def fail(self, name: str | None, expected: str) -> ConfigError:
        return ConfigError(self.key, self.where(name) if name else str(self.path), expected)

    def read(self, name: str) -> bytes:
        if self.kind == "folder":
            try:
                return (self.path / name).read_bytes()
            except OSError as err:
                raise self.fail(name, f"a readable file ({err})") from err
        try:
            with zipfile.ZipFile(self.path) as archive:
                return archive.read(name)
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError) as err:
            raise self.fail(name, f"an intact archive entry (reading it failed: {err})") from err

    def read_many(self, names: list[str]):
        """Yield (name, bytes) in order; a zip is opened once."""
        if self.kind == "folder":
            yield from ((n, self.read(n)) for n in names)
            return
        with zipfile.ZipFile(self.path) as archive:
            for name in names:
                try:
                    data = archive.read(name)
                except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError) as err:
                    expected = f"an intact archive entry (reading it failed: {err})"
                    raise self.fail(name, expected) from err
                yield name, data

    def sha256(self) -> str:
        """The checksum recorded in the provenance (see the module docstring)."""
        if self.kind == "zip":
            return sha256_file(self.path)
        files = sorted([*self.names, *([LABELS_FILE] if self.has_labels_file else [])])
        return files_sha256(self.read_many(files))


def files_sha256(files: Iterable[tuple[str, bytes]]) -> str:
    """sha256 of (name, bytes) pairs, given in sorted name order, by :data:`FOLDER_HASH_RULE`."""
    digest = hashlib.sha256()
    for name, data in files:
        digest.update(name.encode("utf-8") + b"\0" + len(data).to_bytes(8, "big"))
        digest.update(data)
    return digest.hexdigest()


def open_zip(path: Path, key: str) -> ImageSource:
    """List a zip's images; refuse a file that is not a zip or holds an unsafe entry name."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = [i.filename for i in archive.infolist() if not i.is_dir()]
    except (zipfile.BadZipFile, OSError) as err:
        raise ConfigError(key, str(path), f"a readable zip archive ({err})") from err
    for name in entries:
        if unsafe_entry(name):
            raise ConfigError(
                key,
                f"{path}:{name}",
                "archive entries with relative paths inside the archive (this one is absolute "
                "or has a '..' component and would land outside its folder if extracted)",
            )
    names = tuple(sorted(n for n in entries if is_image_name(n)))
    return _checked(ImageSource("zip", path, key, names, LABELS_FILE in entries))


def open_folder(path: Path, key: str) -> ImageSource:
    """List the images anywhere below ``path``."""
    found = []
    for top, _dirs, files in os.walk(path):
        rel = Path(top).relative_to(path)
        found += [(rel / f).as_posix() for f in files]
    names = tuple(sorted(n for n in found if is_image_name(n)))
    return _checked(ImageSource("folder", path, key, names, (path / LABELS_FILE).is_file()))


def _checked(source: ImageSource) -> ImageSource:
    if not source.names:
        raise source.fail(None, f"a {source.kind} holding images ({', '.join(IMAGE_EXTENSIONS)})")
    return source


def open_source(path: Path, key: str) -> ImageSource:
    return open_zip(path, key) if path.is_file() else open_folder(path, key)


CORRUPT = (OSError, SyntaxError, ValueError, EOFError, zlib.error, Image.DecompressionBombError)


def decode_image(
    source: ImageSource, name: str, data: bytes, resolution: int, channels: int
) -> np.ndarray:
    """One image's bytes -> (C, R, R) uint8, refusing any other size or mode, or a corrupt file."""
    image = _opened(source, name, io.BytesIO(data), resolution, channels)
    try:
        image.load()
    except CORRUPT as err:
        raise source.fail(name, f"an intact image file (decoding failed: {err})") from err
    pixels = np.asarray(image, dtype=np.uint8)
    return pixels[None] if channels == 1 else pixels.transpose(2, 0, 1)


def check_headers(source: ImageSource, resolution: int, channels: int) -> None:
    """Every image's header (its size and mode) without decoding its pixels: the start-up
    check's part of :func:`read_images`. A zip is opened once and each entry read only as
    far as Pillow needs (a few hundred bytes of a PNG)."""
    if source.kind == "folder":
        for name in source.names:
            try:
                with open(source.path / name, "rb") as handle:
                    _opened(source, name, handle, resolution, channels)
            except OSError as err:
                raise source.fail(name, f"a readable file ({err})") from err
        return
    with zipfile.ZipFile(source.path) as archive:
        for name in source.names:
            try:
                with archive.open(name) as handle:
                    _opened(source, name, handle, resolution, channels)
            except (zipfile.BadZipFile, zlib.error, EOFError, OSError, RuntimeError) as err:
                expected = f"an intact archive entry (reading it failed: {err})"
                raise source.fail(name, expected) from err


def _opened(source: ImageSource, name: str, handle, resolution: int, channels: int) -> Image.Image:
    """The image opened lazily (header only), refusing any other size or mode."""
    try:
        image = Image.open(handle)
    except CORRUPT as err:
        raise source.fail(name, f"a readable PNG or JPEG image ({err})") from err
    if image.size != (resolution, resolution):
        w, h = image.size
        raise source.fail(
            name,
            f"an image of {resolution}×{resolution} pixels, but it is {w}×{h}; "
            + RESIZE_HINT.format(r=resolution),
        )
    mode = MODES[channels]
    if image.mode != mode:
        raise source.fail(
            name,
            f"a {channels}-channel image (Pillow mode {mode}), but its mode is {image.mode}; "
            "images are never converted here; convert the set beforehand",
        )
    return image


def read_images(
    source: ImageSource, names: list[str], resolution: int, channels: int
) -> torch.Tensor:
    """The named images as one (N, C, R, R) uint8 tensor, filled in place."""
    out = torch.empty((len(names), channels, resolution, resolution), dtype=torch.uint8)
    view = out.numpy()
    for i, (name, data) in enumerate(source.read_many(names)):
        view[i] = decode_image(source, name, data, resolution, channels)
    return out


def read_labels(source: ImageSource) -> dict[str, int] | None:
    """``dataset.json``'s labels by image name, or None (no file, or ``"labels": null``)."""
    if not source.has_labels_file:
        return None
    expected = (
        'JSON {"labels": null} or {"labels": [[image name, class index >= 0], ...]} naming '
        "every image once"
    )
    try:
        labels = json.loads(source.read(LABELS_FILE)).get("labels")
    except (ValueError, AttributeError) as err:
        raise source.fail(LABELS_FILE, f"{expected} ({err})") from err
    if labels is None:
        return None
    if not isinstance(labels, list):
        raise source.fail(LABELS_FILE, expected)
    table: dict[str, int] = {}
    for entry in labels:
        ok = isinstance(entry, list) and len(entry) == 2 and isinstance(entry[0], str)
        if not ok or type(entry[1]) is not int or entry[1] < 0 or entry[0] in table:
            raise source.fail(LABELS_FILE, f"{expected}; bad entry {entry!r}")
        table[entry[0].replace("\\", "/")] = entry[1]
    return table


def labels_for(source: ImageSource, names: list[str]) -> tuple[torch.Tensor, int, str]:
    """(labels of ``names``, number of classes, where they came from)."""
    table = read_labels(source)
    if table is None:
        return torch.zeros(len(names), dtype=torch.int64), 1, "none"
    unknown = sorted(set(table) - set(source.names))
    missing = [n for n in source.names if n not in table]
    if unknown or missing:
        what = f"labels for images it does not hold: {unknown[:3]}" if unknown else ""
        what = what or f"no label for {missing[:3]}"
        raise source.fail(LABELS_FILE, f"a label for every image and only for those ({what})")
    labels = torch.tensor([table[n] for n in names], dtype=torch.int64)
    return labels, max(table.values()) + 1, LABELS_FILE


def subset_indices(n: int, size: int, seed: int) -> torch.Tensor:
    """``size`` of ``range(n)`` without replacement, sorted: the first ``size`` of a
    ``torch.randperm(n)`` drawn by a generator seeded with ``seed``."""
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=generator)[:size].sort().values


def indices_sha256(indices: torch.Tensor) -> str:
    """sha256 of the indices as 8-byte little-endian integers."""
    return sha256_bytes(indices.numpy().astype("<i8").tobytes())
