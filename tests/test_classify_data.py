"""Classification datasets: the digits-0to5 subset and the CIFAR-10/100 python-version readers.

The CIFAR tests write tiny copies in the exact published format (pickled dicts with the real
keys, a meta file, 3,072-byte channel-major rows), as the extracted folder and as the
.tar.gz archive, and check the decoded pixels, labels, class names and splits.
"""

from __future__ import annotations

import io
import os
import pickle
import tarfile
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from adaptivemix.data import DATASETS
from adaptivemix.data.cifar import (
    CIFAR10,
    CIFAR10_CLASSES,
    CIFAR100,
    CIFAR100_CLASSES,
    load_pickle,
)
from adaptivemix.data.digit_subsets import (
    digit_subset,
    register_digit_fraction,
    register_digit_subset,
)
from adaptivemix.data.splits import stratified_holdout
from adaptivemix.errors import ConfigError

# ------------------------------------------------------------------------- digits-0to5


@pytest.mark.parametrize("resolution", [8, 16])
def test_digits_0to5_is_digits_filtered_per_split(resolution):
    full = DATASETS.get("digits")(resolution)
    sub = DATASETS.get("digits-0to5")(resolution)
    assert sub.name == "digits-0to5" and sub.num_classes == 6
    for split in ("train", "val", "test"):
        x, y = sub.split(split)
        keep = full.labels[split] < 6
        assert set(y.tolist()) == set(range(6))
        assert torch.equal(y, full.labels[split][keep])  # labels unchanged
        assert torch.equal(x, full.images[split][keep])
        assert x.shape[1:] == (1, resolution, resolution)


def test_digits_0to5_registry_entry():
    spec = DATASETS.get("digits-0to5")
    assert spec.family == "digits" and spec.classes == tuple("012345")
    assert spec.local is None


def test_digit_subset_relabels_to_positions(digits16):
    sub = digit_subset(digits16, "tmp", "7293")
    for split in ("train", "test"):
        y = digits16.labels[split]
        kept = y[torch.isin(y, torch.tensor([7, 2, 9, 3]))]
        expected = torch.tensor([{7: 0, 2: 1, 9: 2, 3: 3}[int(v)] for v in kept])
        assert torch.equal(sub.labels[split], expected)
    assert sub.num_classes == 4


def test_digits_25pct_keeps_a_stratified_quarter_of_train_only(digits16):
    cut = DATASETS.get("digits-25pct")(16)
    full_train = digits16.images["train"]
    assert cut.images["train"].shape[0] == round(0.25 * full_train.shape[0]) == 314
    for split in ("val", "test"):  # whole
        assert torch.equal(cut.images[split], digits16.images[split])
    # every kept image is a training digit with its label, none twice
    flat = full_train.flatten(1)
    rows = [int((flat == x.flatten()).all(dim=1).nonzero()[0]) for x in cut.images["train"]]
    assert len(set(rows)) == 314
    assert torch.equal(cut.labels["train"], digits16.labels["train"][rows])
    # each class gives floor(n_c / 4) or one more
    full_counts = torch.bincount(digits16.labels["train"], minlength=10)
    counts = torch.bincount(cut.labels["train"], minlength=10)
    assert bool(
        ((counts - full_counts // 4) >= 0).all() and ((counts - full_counts // 4) <= 1).all()
    )
    again = DATASETS.get("digits-25pct")(16)
    assert torch.equal(again.images["train"], cut.images["train"])  # a fixed cut


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.5])
def test_bad_digit_fractions_are_refused(fraction):
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        register_digit_fraction("never-registered", fraction)
    assert "never-registered" not in DATASETS


@pytest.mark.parametrize("classes", ["", "01a", "001"])
def test_bad_digit_subsets_are_refused(classes):
    with pytest.raises(ValueError, match="distinct digits"):
        register_digit_subset("never-registered", classes)
    assert "never-registered" not in DATASETS


# ------------------------------------------------------------------- tiny CIFAR copies


def image_row(index: int, label: int) -> np.ndarray:
    """A 3,072-byte CIFAR row with a recognisable picture.

    Red is ``8·x`` (varies along a row), green ``8·y`` (down the columns), blue the label;
    red at (0, 0) and (0, 1) encodes ``index`` so that every image can be identified.
    """
    y, x = np.mgrid[0:32, 0:32]
    planes = np.stack([8 * x, 8 * y, np.full((32, 32), label)]).astype(np.uint8)
    planes[0, 0, 0], planes[0, 0, 1] = index // 256, index % 256
    return planes.reshape(-1)  # channel-major: 1,024 red, 1,024 green, 1,024 blue


def decode_index(images: torch.Tensor) -> np.ndarray:
    raw = torch.round((images[:, 0, 0, :2] + 1.0) * 127.5).to(torch.int64).numpy()
    return raw[:, 0] * 256 + raw[:, 1]


def batch(indices: range, labels: list[int], label_key: bytes, name: bytes) -> dict:
    return {
        b"batch_label": name,
        label_key: labels,
        b"data": np.stack([image_row(i, lab) for i, lab in zip(indices, labels, strict=True)]),
        b"filenames": [f"img_{i}.png".encode() for i in indices],
    }


def cifar_files(layout, n_train: int, n_test: int) -> dict[str, bytes]:
    """Pickled files of a tiny copy; training image ``i`` has label ``i % classes``."""
    k = len(layout.classes)
    names = layout.classes
    files: dict[str, bytes] = {}
    per_file = n_train // len(layout.train_files)
    for j, f in enumerate(layout.train_files):
        idx = range(j * per_file, (j + 1) * per_file)
        obj = batch(idx, [i % k for i in idx], layout.label_key, b"training batch")
        if layout is CIFAR100:
            obj[b"coarse_labels"] = [0] * per_file
        files[f] = pickle.dumps(obj, protocol=2)
    test_idx = range(10_000, 10_000 + n_test)
    test = batch(test_idx, [(i * 7) % k for i in range(n_test)], layout.label_key, b"test")
    test[b"data"][1] = 51  # one uniform image: -0.6 at every pixel and resolution
    files[layout.test_file] = pickle.dumps(test, protocol=2)
    meta = {layout.names_key: [n.encode() for n in names], b"num_vis": 3072}
    if layout is CIFAR100:
        meta[b"coarse_label_names"] = [b"superclass"] * 20
    files[layout.meta_file] = pickle.dumps(meta, protocol=2)
    return files


def write_copy(root: Path, layout, form: str, n_train: int, n_test: int) -> Path:
    files = cifar_files(layout, n_train, n_test)
    root.mkdir(parents=True, exist_ok=True)
    if form == "folder":
        folder = root / layout.folder
        folder.mkdir()
        for name, data in files.items():
            (folder / name).write_bytes(data)
        (folder / "readme.html").write_text("<html></html>")
    else:
        with tarfile.open(root / layout.archive, "w:gz") as tar:
            extra = {"readme.html": b"<html></html>"}
            for name, data in {**extra, **files}.items():
                info = tarfile.TarInfo(f"{layout.folder}/{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return root


SIZES = {"cifar10": (100, 20), "cifar100": (300, 100)}  # training / test images
LAYOUTS = {"cifar10": CIFAR10, "cifar100": CIFAR100}


@pytest.fixture(scope="module")
def copies(tmp_path_factory) -> dict[tuple[str, str], Path]:
    out = {}
    for name, layout in LAYOUTS.items():
        for form in ("folder", "archive"):
            root = tmp_path_factory.mktemp(f"{name}-{form}")
            out[name, form] = write_copy(root, layout, form, *SIZES[name])
    return out


@pytest.mark.parametrize("form", ["folder", "archive"])
@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_reader_decodes_the_python_format(copies, name, form):
    layout = LAYOUTS[name]
    ds = DATASETS.get(name)(32, root=str(copies[name, form]))
    n_train, n_test = SIZES[name]
    k = len(layout.classes)
    assert ds.name == name and ds.num_classes == k and ds.channels == 3
    n_val = n_train // 10
    assert ds.summary()["sizes"] == {"train": n_train - n_val, "val": n_val, "test": n_test}
    for split in ("train", "val", "test"):
        x = ds.images[split]
        assert x.dtype == torch.float32 and x.shape[1:] == (3, 32, 32)
        assert x.min() >= -1.0 and x.max() <= 1.0
        assert ds.labels[split].dtype == torch.int64
    # exact pixels of a known image: red 8x, green 8y, blue = label, after v / 127.5 - 1
    y, xx = np.mgrid[0:32, 0:32]
    first = ds.images["test"][0]
    expect_red = torch.from_numpy((8 * xx).astype(np.float32) / np.float32(127.5) - 1)
    expect_green = torch.from_numpy((8 * y).astype(np.float32) / np.float32(127.5) - 1)
    assert torch.equal(first[0, 1:], expect_red[1:]) and torch.equal(first[1], expect_green)
    assert torch.all(first[2] == np.float32(0) / np.float32(127.5) - 1)  # label 0: -1
    assert torch.all(ds.images["test"][1] == np.float32(51) / np.float32(127.5) - 1)
    assert ds.labels["test"].tolist() == [(i * 7) % k for i in range(n_test)]
    # train and val partition the training images; every label belongs to its image
    ids = {s: decode_index(ds.images[s]) for s in ("train", "val")}
    assert not set(ids["train"]) & set(ids["val"])
    assert sorted([*ids["train"], *ids["val"]]) == list(range(n_train))
    for s in ("train", "val"):
        assert ds.labels[s].tolist() == (ids[s] % k).tolist()
        blue = torch.round((ds.images[s][:, 2, 5, 5] + 1) * 127.5).to(torch.int64)
        assert torch.equal(blue, ds.labels[s])
    # stratified: no class gives more than its share (rounded up) to val
    assert np.bincount(ds.labels["val"].numpy(), minlength=k).max() == 1


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_folder_and_archive_give_the_same_data_every_time(copies, name):
    build = DATASETS.get(name)
    a = build(32, root=str(copies[name, "folder"]))
    b = build(32, root=str(copies[name, "archive"]), download=False)
    c = build(32, root=str(copies[name, "folder"]))
    assert a.content_hash() == b.content_hash() == c.content_hash()


def test_resolution_other_than_32_is_resized_with_antialias(copies):
    ds = DATASETS.get("cifar10")(16, root=str(copies["cifar10", "folder"]))
    assert ds.images["train"].shape[1:] == (3, 16, 16)
    assert ds.images["test"].min() >= -1.0 and ds.images["test"].max() <= 1.0
    uniform = ds.images["test"][1]
    assert torch.allclose(uniform, torch.full_like(uniform, 51 / 127.5 - 1), atol=1e-6)
    full = DATASETS.get("cifar10")(32, root=str(copies["cifar10", "folder"]))
    # a red ramp 0, 8, 16, ... averaged over 2x2 blocks: 4, 20, ... (antialiased, not sampled)
    ramp = torch.round((ds.images["test"][0, 0, 8, 1:15] + 1) * 127.5)  # away from the edges
    assert torch.equal(ramp, torch.arange(1, 15, dtype=torch.float32) * 16 + 4)
    assert torch.equal(full.labels["test"], ds.labels["test"])
    with pytest.raises(ConfigError, match=r"data\.resolution"):
        DATASETS.get("cifar10")(0, root=str(copies["cifar10", "folder"]))


def test_registry_entries_name_the_official_classes():
    c10, c100 = DATASETS.get("cifar10"), DATASETS.get("cifar100")
    assert (c10.family, c100.family) == ("cifar10", "cifar100")
    assert c10.classes == CIFAR10_CLASSES and c10.classes[0] == "airplane"
    assert c10.classes[-1] == "truck" and len(c10.classes) == 10
    assert len(c100.classes) == 100 and len(set(c100.classes)) == 100
    assert list(c100.classes) == sorted(c100.classes)  # the meta file's alphabetical order
    assert c100.classes == CIFAR100_CLASSES and "aquarium_fish" in c100.classes
    assert (c10.source_key, c100.source_key) == ("cifar10", "cifar100")


@pytest.mark.parametrize(("k", "per_class", "held"), [(10, 5000, 500), (100, 500, 50)])
def test_full_size_validation_split_is_5000_stratified(k, per_class, held):
    labels = np.tile(np.arange(k), per_class)  # 50,000 labels as in the official train set
    kept, held_out = stratified_holdout(labels, 0.1, 20230318)
    assert len(held_out) == 5000 and len(kept) == 45_000
    assert np.all(np.bincount(labels[held_out], minlength=k) == held)
    assert not np.intersect1d(kept, held_out).size
    again = stratified_holdout(labels, 0.1, 20230318)
    assert np.array_equal(again[1], held_out)


def test_small_copies_hold_out_ten_percent():
    labels = np.repeat(np.arange(7), [3, 3, 3, 3, 3, 3, 12])
    kept, held_out = stratified_holdout(labels, 0.1, 1)
    assert len(held_out) == 3 and len(kept) == 27  # round(0.1 * 30)
    assert 6 in labels[held_out]  # the big class has the largest remainder (0.2)


# ------------------------------------------------------------------ errors and formats


def test_local_format_check_names_the_key_path_and_format(tmp_path, copies):
    spec = DATASETS.get("cifar10")
    with pytest.raises(ConfigError, match=r"sources\.cifar10\.root.*cifar-10-batches-py"):
        spec.check_source({})
    missing = tmp_path / "nowhere"
    with pytest.raises(ConfigError, match="no such folder") as err:
        spec.check_source({"cifar10": {"root": str(missing)}})
    assert str(missing) in str(err.value) and "cifar-10-python.tar.gz" in str(err.value)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ConfigError, match=r"cifar-10-batches-py/ \(or cifar-10-python\.tar\.gz\)"):
        spec.check_source({"cifar10": {"root": str(empty)}})
    for form in ("folder", "archive"):
        spec.check_source({"cifar10": {"root": str(copies["cifar10", form])}})
    DATASETS.get("cifar100").check_source(
        {"cifar100": {"root": str(copies["cifar100", "archive"])}}
    )


def test_incomplete_folder_is_refused_with_the_missing_files(tmp_path):
    root = write_copy(tmp_path / "c", CIFAR10, "folder", 50, 10)
    os.remove(root / "cifar-10-batches-py" / "data_batch_3")
    os.remove(root / "cifar-10-batches-py" / "batches.meta")
    spec = DATASETS.get("cifar10")
    for attempt in (
        lambda: spec.check_source({"cifar10": {"root": str(root)}}),
        lambda: spec(32, root=str(root)),
    ):
        with pytest.raises(ConfigError) as err:
            attempt()
        message = str(err.value)
        assert "sources.cifar10.root" in message and str(root) in message
        assert "data_batch_3" in message and "batches.meta" in message
        assert "data_batch_1" not in message.split("missing")[1]


def test_archive_without_a_member_is_refused_when_read(tmp_path):
    root = tmp_path / "c100"
    root.mkdir()
    files = cifar_files(CIFAR100, 100, 10)
    with tarfile.open(root / CIFAR100.archive, "w:gz") as tar:
        for name in ("train", "meta"):  # no test file
            info = tarfile.TarInfo(f"cifar-100-python/{name}")
            info.size = len(files[name])
            tar.addfile(info, io.BytesIO(files[name]))
    with pytest.raises(ConfigError, match=r"sources\.cifar100\.root.*cifar-100-python/test"):
        DATASETS.get("cifar100")(32, root=str(root))


def test_meta_with_other_class_names_is_refused(tmp_path):
    root = write_copy(tmp_path / "c", CIFAR10, "folder", 50, 10)
    meta = {b"label_names": [f"class{i}".encode() for i in range(10)]}
    (root / "cifar-10-batches-py" / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    with pytest.raises(ConfigError, match="official class names"):
        DATASETS.get("cifar10")(32, root=str(root))


def test_pickles_that_would_run_code_are_refused():
    class Evil:
        def __reduce__(self):
            return (os.system, ("echo never",))

    with pytest.raises(pickle.UnpicklingError, match="refusing"):
        load_pickle(pickle.dumps({b"data": Evil()}, protocol=2))
    plain = {b"data": np.arange(6, dtype=np.uint8).reshape(2, 3), b"labels": [1, 2]}
    for protocol in (2, 4, 5):
        back = load_pickle(pickle.dumps(plain, protocol=protocol))
        assert np.array_equal(back[b"data"], plain[b"data"]) and back[b"labels"] == [1, 2]


def test_pickles_naming_numpy_1_modules_load_without_warnings():
    data = pickle.dumps({b"data": np.arange(4, dtype=np.uint8)}, protocol=2)
    old = data.replace(b"numpy._core.multiarray", b"numpy.core.multiarray")  # as published
    assert old != data
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_pickle(old)[b"data"].tolist() == [0, 1, 2, 3]
