"""The GAN datasets read from image folders and stylegan2-ada-style zip archives.

Tiny copies are written here in the real formats: Pillow-written PNGs in a zip named and laid
out as stylegan2-ada-pytorch's dataset_tool.py writes it (``00000/img00000000.png``, optional
``dataset.json``), a StarGAN-v2-like AFHQ folder (``train/cat/*.png``), plain folders, and a
CIFAR-10 python copy. Expected pixels are the arrays written; checksums are recomputed here
with hashlib from the bytes on disk.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from adaptivemix.data import DATASETS, as_float_images, load_prepared, save_prepared
from adaptivemix.data.cifar import CIFAR10
from adaptivemix.data.images import subset_indices
from adaptivemix.errors import ConfigError
from tests.test_classify_data import image_row, write_copy

R = 8  # resolution of the tiny copies


def picture(i: int, size: int = R, mode: str = "RGB") -> np.ndarray:
    """A random-looking but reproducible image; pixel (0, 0) of channel 0 holds ``i % 256``."""
    shape = (size, size) if mode == "L" else (size, size, len(mode))
    pixels = np.random.default_rng(1000 + i).integers(0, 256, shape, dtype=np.uint8)
    pixels[(0, 0) if mode == "L" else (0, 0, 0)] = i % 256
    return pixels


def png(pixels: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="PNG")
    return out.getvalue()


def tool_name(i: int) -> str:
    """dataset_tool.py's archive name of image ``i``."""
    return f"{i // 1000:05d}/img{i:08d}.png"


def write_zip(path: Path, files: dict[str, bytes], labels="absent") -> Path:
    """A zip holding ``files`` (in the given order), plus dataset.json unless 'absent'."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
        for name, data in files.items():
            archive.writestr(name, data)
        if labels != "absent":
            archive.writestr("dataset.json", json.dumps({"labels": labels}))
    return path


def sha256_of_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def folder_sha256(folder: Path, names: list[str]) -> str:
    """Second implementation of the documented folder checksum."""
    digest = hashlib.sha256()
    for name in sorted(names):
        data = (folder / name).read_bytes()
        digest.update(name.encode() + b"\x00" + len(data).to_bytes(8, "big") + data)
    return digest.hexdigest()


def chw(pixels: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(pixels).permute(2, 0, 1)


# ------------------------------------------------------------------ zip archives


def test_zip_pixels_order_checksum_and_empty_splits(tmp_path):
    indices = [1500, 3, 999, 1000, 0, 2001]  # written out of order, across sub-folders
    files = {tool_name(i): png(picture(i)) for i in indices}
    zip_path = write_zip(tmp_path / "ffhq-8x8.zip", files, labels=None)
    ds = DATASETS.get("ffhq256")(R, root=str(tmp_path), download=False)
    expected = torch.stack([chw(picture(i)) for i in sorted(indices)])  # sorted names
    assert ds.images["train"].dtype == torch.uint8
    assert torch.equal(ds.images["train"], expected)
    assert torch.equal(ds.labels["train"], torch.zeros(6, dtype=torch.int64))
    assert ds.num_classes == 1 and ds.channels == 3 and ds.resolution == R
    for split in ("val", "test"):
        assert ds.images[split].shape == (0, 3, R, R) and ds.labels[split].shape == (0,)
    prov = ds.provenance
    assert prov["source"] == "zip" and prov["file"] == "ffhq-8x8.zip"
    assert prov["sha256"] == sha256_of_file(zip_path)
    assert prov["images_found"] == prov["images_used"] == 6 and prov["labels"] == "none"
    assert prov["indices_sha256"] == hashlib.sha256(np.arange(6, dtype="<i8").tobytes()).hexdigest()
    assert prov["subset_seed"] is None


def test_zip_labels_come_from_dataset_json(tmp_path):
    files = {tool_name(i): png(picture(i)) for i in range(5)}
    given = [[tool_name(i), [6, 0, 2, 2, 1][i]] for i in (4, 2, 0, 1, 3)]  # any order
    write_zip(tmp_path / "lsun-church-8x8.zip", files, labels=given)
    ds = DATASETS.get("lsun-church")(R, root=str(tmp_path))
    assert ds.labels["train"].tolist() == [6, 0, 2, 2, 1]
    assert ds.num_classes == 7 and ds.provenance["labels"] == "dataset.json"
    plain = tmp_path / "plain"
    write_zip(plain / "lsun-bedroom-8x8.zip", files)  # no dataset.json at all
    bedroom = DATASETS.get("lsun-bedroom")(R, root=str(plain))
    assert bedroom.labels["train"].tolist() == [0] * 5 and bedroom.num_classes == 1
    assert torch.equal(bedroom.images["train"], ds.images["train"])


def test_registrations():
    families = {"ffhq256": "ffhq", "ffhq256-5k": "ffhq", "afhq-cat": "afhq-cat"}
    families |= {"lsun-church": "lsun-church", "lsun-bedroom": "lsun-bedroom"}
    for name, family in families.items():
        spec = DATASETS.get(name)
        assert spec.family == family and len(spec.classes) == 1 and spec.source_key == name
    assert DATASETS.get("cifar10-gan").source_key == "cifar10"


# ------------------------------------------------------------------ folders


def test_afhq_stargan_folder_reads_pngs_in_name_order(tmp_path):
    cat = tmp_path / "afhq" / "train" / "cat"
    cat.mkdir(parents=True)
    names = ["pixabay_cat_10.png", "flickr_cat_2.png", "pixabay_cat_9.PNG"]
    for i, name in enumerate(names):
        (cat / name).write_bytes(png(picture(i)))
    (cat / "notes.txt").write_text("not an image")  # ignored
    (tmp_path / "afhq" / "train" / "dog").mkdir()  # other classes are not read
    ds = DATASETS.get("afhq-cat")(R, root=str(tmp_path / "afhq"))
    order = [1, 0, 2]  # flickr_cat_2 < pixabay_cat_10 < pixabay_cat_9 (string order)
    assert torch.equal(ds.images["train"], torch.stack([chw(picture(i)) for i in order]))
    assert ds.provenance["source"] == "folder" and ds.provenance["file"] == "cat"
    assert ds.provenance["sha256"] == folder_sha256(cat, names)


def test_extracted_folder_with_dataset_json_and_zip_preferred(tmp_path):
    folder = tmp_path / "afhq-cat-8x8"
    for i in range(4):
        (folder / tool_name(i)).parent.mkdir(parents=True, exist_ok=True)
        (folder / tool_name(i)).write_bytes(png(picture(i)))
    labels = [[tool_name(i), i % 2] for i in range(4)]
    (folder / "dataset.json").write_text(json.dumps({"labels": labels}))
    ds = DATASETS.get("afhq-cat")(R, root=str(tmp_path))
    assert ds.labels["train"].tolist() == [0, 1, 0, 1] and ds.num_classes == 2
    listed = [tool_name(i) for i in range(4)] + ["dataset.json"]
    assert ds.provenance["sha256"] == folder_sha256(folder, listed)
    write_zip(tmp_path / "afhq-cat-8x8.zip", {tool_name(9): png(picture(9))})
    from_zip = DATASETS.get("afhq-cat")(R, root=str(tmp_path))  # the zip comes first
    assert torch.equal(from_zip.images["train"], chw(picture(9))[None])


# ------------------------------------------------------------------ the 5k subset


def test_subset_indices_are_a_seeded_sorted_draw_without_replacement():
    a = subset_indices(70_000, 5_000, 0)
    assert a.shape == (5_000,) and torch.equal(a, subset_indices(70_000, 5_000, 0))
    assert torch.equal(a, torch.unique(a)) and int(a.min()) >= 0 and int(a.max()) < 70_000
    assert not torch.equal(a, subset_indices(70_000, 5_000, 1))
    # the documented rule, written out: first 5,000 of a randperm from a seeded generator
    perm = torch.randperm(70_000, generator=torch.Generator().manual_seed(0))
    assert set(a.tolist()) == set(perm[:5_000].tolist())


@pytest.fixture(scope="module")
def ffhq_5k_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ffhq5k")
    small = [np.full((4, 4, 3), 0, np.uint8) for _ in range(5_003)]
    for i, pixels in enumerate(small):  # image i holds i in its first two red pixels
        pixels[0, 0, 0], pixels[0, 1, 0] = i // 256, i % 256
    write_zip(root / "ffhq-4x4.zip", {tool_name(i): png(p) for i, p in enumerate(small)})
    return root


def test_ffhq_5k_subset_is_reproducible_and_recorded(ffhq_5k_root):
    spec = DATASETS.get("ffhq256-5k")
    ds = spec(4, root=str(ffhq_5k_root))
    x = ds.images["train"].to(torch.int64)
    held = (x[:, 0, 0, 0] * 256 + x[:, 0, 0, 1]).tolist()  # which source images were taken
    expected = subset_indices(5_003, 5_000, 0)
    assert held == expected.tolist() and len(set(held)) == 5_000
    prov = ds.provenance
    assert prov["subset_seed"] == 0 and prov["images_found"] == 5_003
    assert prov["images_used"] == 5_000
    raw = np.array(expected.tolist(), dtype="<i8").tobytes()
    assert prov["indices_sha256"] == hashlib.sha256(raw).hexdigest()
    other = spec(4, root=str(ffhq_5k_root), subset_seed=7)
    assert other.provenance["subset_seed"] == 7
    assert other.provenance["indices_sha256"] != prov["indices_sha256"]


def test_ffhq_5k_needs_5000_images(tmp_path):
    write_zip(tmp_path / "ffhq-8x8.zip", {tool_name(i): png(picture(i)) for i in range(3)})
    with pytest.raises(ConfigError, match=r"at least 5000 images .*found 3"):
        DATASETS.get("ffhq256-5k")(R, root=str(tmp_path))
    with pytest.raises(ConfigError, match=r"sources\.ffhq256\.subset_seed.*download, root"):
        DATASETS.get("ffhq256")(R, root=str(tmp_path), subset_seed=1)


# ------------------------------------------------------------------ bad input


def truncated_png() -> bytes:
    data = png(picture(1))
    return data[: len(data) - 30]  # cuts into the image data, drops IEND


def bad_crc_zip(path: Path) -> Path:
    good = png(picture(2))
    write_zip(path, {tool_name(0): png(picture(0)), tool_name(1): good})
    raw = bytearray(path.read_bytes())
    at = raw.index(good) + len(good) // 2
    raw[at] ^= 0xFF
    path.write_bytes(bytes(raw))
    return path


BAD_ENTRIES = {
    "size": (png(picture(5, size=16)), [r"00000/img00000001\.png", "16×16", "8×8", "dataset_tool"]),
    "gray": (png(picture(5, mode="L")), [r"00000/img00000001\.png", "3-channel", "mode is L"]),
    "rgba": (png(picture(5, mode="RGBA")), [r"00000/img00000001\.png", "mode is RGBA"]),
    "truncated": (truncated_png(), [r"00000/img00000001\.png", "intact image|readable"]),
}


@pytest.mark.parametrize("form", ["zip", "folder"])
@pytest.mark.parametrize("case", sorted(BAD_ENTRIES))
def test_bad_images_are_refused_naming_the_file(tmp_path, case, form):
    data, patterns = BAD_ENTRIES[case]
    files = {tool_name(0): png(picture(0)), tool_name(1): data, tool_name(2): png(picture(2))}
    if form == "zip":
        write_zip(tmp_path / "ffhq-8x8.zip", files)
    else:
        for name, blob in files.items():
            (tmp_path / "ffhq-8x8" / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / "ffhq-8x8" / name).write_bytes(blob)
    before = sorted(p for p in tmp_path.rglob("*"))
    with pytest.raises(ConfigError, match=r"sources\.ffhq256\.root") as err:
        DATASETS.get("ffhq256")(R, root=str(tmp_path))
    for pattern in patterns:
        assert re.search(pattern, str(err.value)), (pattern, str(err.value))
    assert sorted(p for p in tmp_path.rglob("*")) == before  # nothing written


def test_bad_crc_entry_is_refused_naming_the_entry(tmp_path):
    bad_crc_zip(tmp_path / "lsun-church-8x8.zip")
    with pytest.raises(ConfigError, match=r"lsun-church-8x8\.zip:00000/img00000001\.png.*CRC"):
        DATASETS.get("lsun-church")(R, root=str(tmp_path))


@pytest.mark.parametrize("entry", ["../escape.png", "00000/../../escape.png", "/abs/img.png"])
def test_entries_leaving_their_folder_are_refused(tmp_path, entry):
    write_zip(tmp_path / "ffhq-8x8.zip", {tool_name(0): png(picture(0)), entry: png(picture(1))})
    with pytest.raises(ConfigError, match="outside its folder") as err:
        DATASETS.get("ffhq256")(R, root=str(tmp_path))
    assert f"ffhq-8x8.zip:{entry}" in str(err.value)


@pytest.mark.parametrize(
    ("labels", "pattern"),
    [
        ([[tool_name(0), 1]], r"no label for \['00000/img00000001\.png'\]"),
        ([[tool_name(0), 1], [tool_name(1), 0], ["gone.png", 2]], "gone.png"),
        ([[tool_name(0), [0.5, 0.5]], [tool_name(1), 0]], r"bad entry .*0\.5"),
        ([[tool_name(0), -1], [tool_name(1), 0]], "bad entry"),
        ({"a": 1}, "class index"),
    ],
)
def test_bad_dataset_json_is_refused(tmp_path, labels, pattern):
    files = {tool_name(i): png(picture(i)) for i in range(2)}
    write_zip(tmp_path / "ffhq-8x8.zip", files, labels=labels)
    with pytest.raises(ConfigError, match=pattern) as err:
        DATASETS.get("ffhq256")(R, root=str(tmp_path))
    assert "ffhq-8x8.zip:dataset.json" in str(err.value)


def test_not_a_zip_and_no_images_are_refused(tmp_path):
    (tmp_path / "ffhq-8x8.zip").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="readable zip archive"):
        DATASETS.get("ffhq256")(R, root=str(tmp_path))
    write_zip(tmp_path / "ffhq-8x8.zip", {"readme.txt": b"hello"})
    with pytest.raises(ConfigError, match=r"ffhq-8x8\.zip'; expected a zip holding images"):
        DATASETS.get("ffhq256")(R, root=str(tmp_path))
    with pytest.raises(ConfigError, match=r"sources\.ffhq256\.download"):
        DATASETS.get("ffhq256")(R, root=str(tmp_path), download=True)


# ------------------------------------------------------------------ config-time check


def test_config_check_lists_the_missing_path_and_format(tmp_path):
    spec = DATASETS.get("ffhq256")
    missing = tmp_path / "nowhere"
    with pytest.raises(ConfigError, match=r"sources\.ffhq256\.root.*no such folder") as err:
        spec.check_source({"ffhq256": {"root": str(missing)}})
    assert str(missing) in str(err.value) and "ffhq-RxR.zip" in str(err.value)
    with pytest.raises(ConfigError, match=r"missing: ffhq-RxR\.zip or ffhq-RxR/"):
        spec.check_source({"ffhq256": {"root": str(tmp_path)}})
    with pytest.raises(ConfigError, match=r"sources\.afhq-cat\.root.*train/cat/"):
        DATASETS.get("afhq-cat").check_source({"afhq-cat": {"root": str(tmp_path)}})
    write_zip(tmp_path / "ffhq-8x8.zip", {tool_name(0): png(picture(0))})
    spec.check_source({"ffhq256": {"root": str(tmp_path)}})  # any resolution
    spec.check_source({"ffhq256": {"root": str(tmp_path)}}, resolution=R)
    with pytest.raises(ConfigError, match=r"missing: ffhq-256x256\.zip or ffhq-256x256/"):
        spec.check_source({"ffhq256": {"root": str(tmp_path)}}, resolution=256)
    with pytest.raises(ConfigError, match=r"ffhq-256x256\.zip.*found \['ffhq-8x8\.zip'\]"):
        spec(256, root=str(tmp_path))
    with pytest.raises(ConfigError, match=r"sources\.ffhq256\.download.*no download"):
        spec.check_source({"ffhq256": {"root": str(tmp_path), "download": True}})


# ------------------------------------------------------------------ prepared file, uint8


def test_uint8_round_trip_through_the_prepared_file(tmp_path):
    files = {tool_name(i): png(picture(i)) for i in range(3)}
    write_zip(tmp_path / "src" / "ffhq-8x8.zip", files, labels=[[n, 2] for n in files])
    ds = DATASETS.get("ffhq256")(R, root=str(tmp_path / "src"))
    back = load_prepared(save_prepared(ds, tmp_path / "out" / "dataset.pt"))
    for split in ("train", "val", "test"):
        assert back.images[split].dtype == torch.uint8
        assert torch.equal(back.images[split], ds.images[split])
        assert torch.equal(back.labels[split], ds.labels[split])
    assert back.provenance == ds.provenance and back.num_classes == 3
    joined = b"".join(
        [ds.images["train"].numpy().tobytes(), np.full(3, 2, "<i8").tobytes()]
    )  # the empty val/test splits add no bytes
    assert back.content_hash() == ds.content_hash() == hashlib.sha256(joined).hexdigest()
    summary = back.summary()
    assert summary["sizes"] == {"train": 3, "val": 0, "test": 0}
    assert summary["dtype"] == "uint8" and summary["provenance"] == ds.provenance
    assert summary["channels"] == 3 and summary["resolution"] == R
    pixels = torch.tensor([[[[0, 255]]]], dtype=torch.uint8)
    assert as_float_images(pixels).tolist() == [[[[-1.0, 1.0]]]]


# ------------------------------------------------------------------ CIFAR-10 for GANs


@pytest.mark.parametrize("form", ["folder", "archive"])
def test_cifar10_gan_keeps_all_training_images_as_uint8(tmp_path, form):
    root = write_copy(tmp_path / "c", CIFAR10, form, 100, 20)
    ds = DATASETS.get("cifar10-gan")(32, root=str(root), download=False)
    expected = torch.stack([torch.from_numpy(image_row(i, i % 10)) for i in range(100)])
    assert ds.images["train"].dtype == torch.uint8
    assert torch.equal(ds.images["train"], expected.reshape(100, 3, 32, 32))
    assert ds.labels["train"].tolist() == [i % 10 for i in range(100)]
    assert ds.images["val"].shape == (0, 3, 32, 32) and ds.images["test"].shape[0] == 20
    assert ds.num_classes == 10
    if form == "archive":
        assert ds.provenance["sha256"] == sha256_of_file(root / CIFAR10.archive)
    else:
        folder = root / CIFAR10.folder
        assert ds.provenance["sha256"] == folder_sha256(folder, list(CIFAR10.files))
    with pytest.raises(ConfigError, match=r"data\.resolution.*32"):
        DATASETS.get("cifar10-gan")(16, root=str(root))
