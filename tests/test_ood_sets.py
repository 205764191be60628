"""OOD test sets: the offline embedded sets, the ODIN and OpenOOD folder readers, metadata."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from sklearn.datasets import load_digits

from adaptivemix.data import DATASETS
from adaptivemix.data.cifar import CIFAR10_CLASSES, CIFAR100_CLASSES
from adaptivemix.errors import ConfigError
from adaptivemix.ood.embedded_sets import LUMA, render_letters
from adaptivemix.ood.local_sets import ODIN_SETS, OPENOOD_SETS
from adaptivemix.ood.sets import OOD_SETS

EMBEDDED = {"digits-6to9": 714, "letters": 1000, "noise": 1000, "photos": 1000}


@pytest.fixture(scope="module")
def built() -> dict[tuple[str, int, int], torch.Tensor]:
    """Each embedded set at 16 px with 1 and 3 channels, and at 8 px with 1 channel."""
    out = {}
    for name in EMBEDDED:
        for resolution, channels in [(16, 1), (16, 3), (8, 1)]:
            out[name, resolution, channels] = OOD_SETS.get(name)(resolution, channels, "digits")
    return out


# ------------------------------------------------------------------------ embedded sets


@pytest.mark.parametrize("name", list(EMBEDDED))
def test_embedded_sets_have_the_contract_shape_and_range(built, name):
    for (set_name, resolution, channels), x in built.items():
        if set_name != name:
            continue
        assert x.shape == (EMBEDDED[name], channels, resolution, resolution)
        assert x.dtype == torch.float32 and x.is_contiguous()
        assert x.min() >= -1.0 and x.max() <= 1.0
        assert torch.isfinite(x).all()


@pytest.mark.parametrize("name", list(EMBEDDED))
def test_equal_calls_give_equal_images(built, name):
    again = OOD_SETS.get(name)(16, 3, "cifar10")  # the ID dataset is ignored
    assert torch.equal(again, built[name, 16, 3])


@pytest.mark.parametrize("name", ["digits-6to9", "letters"])
def test_grey_sets_repeat_their_channel(built, name):
    assert torch.equal(built[name, 16, 3], built[name, 16, 1].repeat(1, 3, 1, 1))


def test_digits_6to9_are_the_class_6_to_9_digits_upsampled(built):
    bunch = load_digits()
    keep = np.isin(bunch.target, [6, 7, 8, 9])
    raw = torch.tensor(bunch.images[keep] / 16.0, dtype=torch.float32).unsqueeze(1)
    for resolution in (8, 16):
        up = raw if resolution == 8 else F.interpolate(raw, size=(resolution,) * 2, mode="bilinear")
        expected = up.clamp(0, 1) * 2 - 1
        assert torch.allclose(built["digits-6to9", resolution, 1], expected, atol=1e-6)


def test_letters_are_bright_ink_on_dark_background(built):
    x = built["letters", 16, 1]
    flat = x.flatten(1)
    assert (flat.median(dim=1).values < -0.999).float().mean() > 0.8  # background: -1
    border = torch.cat([x[..., 0, :], x[..., -1, :], x[..., 0], x[..., -1]], dim=-1)
    assert border.mean() < x[..., 4:12, 4:12].mean() - 0.5  # ink is near the centre
    assert (flat.max(dim=1).values > 0.5).all()  # every image has ink
    ink, background = flat[flat > 0], flat[flat <= 0]
    assert ink.mean() > background.mean() + 1.0
    assert len({tuple(img.flatten().tolist()) for img in x[:50]}) == 50  # all different


def test_letters_draw_many_letters_sizes_and_positions():
    raw = render_letters(60, 96)
    assert raw.shape == (60, 96, 96) and raw.dtype == np.uint8
    boxes = []
    for img in raw:
        ys, xs = np.nonzero(img > 128)
        boxes.append((ys.min(), xs.min(), ys.max() - ys.min(), xs.max() - xs.min()))
    boxes = np.array(boxes)
    assert np.unique(boxes[:, 0]).size > 10 and np.unique(boxes[:, 2]).size > 10
    assert np.array_equal(raw, render_letters(60, 96))


def test_noise_is_half_uniform_half_smooth(built):
    x = built["noise", 16, 3]
    uniform, blurred = x[:500], x[500:]
    assert abs(float(uniform.mean())) < 0.01 and abs(float(uniform.std()) - 3**-0.5) < 0.01
    assert torch.all(blurred.flatten(1).min(dim=1).values == -1.0)
    assert torch.all(blurred.flatten(1).max(dim=1).values == 1.0)

    def roughness(t: torch.Tensor) -> float:
        return float((t[..., 1:] - t[..., :-1]).abs().mean())

    assert roughness(blurred) < 0.5 * roughness(uniform)


def test_photos_differ_from_noise_and_grey_is_luma(built):
    photos, noise = built["photos", 16, 3], built["noise", 16, 3]
    assert not torch.allclose(photos, noise)

    def neighbour_correlation(t: torch.Tensor) -> float:
        a, b = t[..., :-1].flatten(), t[..., 1:].flatten()
        return float(torch.corrcoef(torch.stack([a, b]))[0, 1])

    assert neighbour_correlation(photos) > 0.8 > 0.2 > neighbour_correlation(noise[:500])
    assert float(photos.std()) > 0.2  # real content, not a constant
    grey = (photos * torch.tensor(LUMA).view(1, 3, 1, 1)).sum(dim=1, keepdim=True)
    assert torch.allclose(built["photos", 16, 1], grey, atol=1e-5)  # resize is linear


@pytest.mark.parametrize("name", list(EMBEDDED))
def test_bad_channel_counts_are_refused(name):
    with pytest.raises(ValueError, match="channels"):
        OOD_SETS.get(name)(8, 2, "digits")


# ------------------------------------------------------------------------ local folders

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255), (0, 0, 0)]


def write_png(path: Path, colour: tuple[int, int, int], size: tuple[int, int] = (32, 32)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, colour).save(path)


def expected_pixel(colour: tuple[int, int, int], channels: int) -> torch.Tensor:
    image = Image.new("RGB", (1, 1), colour).convert("L" if channels == 1 else "RGB")
    values = np.array(image, dtype=np.float32).reshape(channels)
    return torch.from_numpy(values / np.float32(127.5) - np.float32(1))


def write_odin(root: Path, folder: str, n: int = 3) -> None:
    for i in reversed(range(n)):  # written out of order: reading must sort by name
        write_png(root / folder / f"{i:05d}.png", COLOURS[i])


@pytest.mark.parametrize("odin", ODIN_SETS, ids=lambda o: o.name)
def test_odin_sets_read_their_extracted_folder(tmp_path, odin):
    write_odin(tmp_path, odin.folder)
    Image.new("RGB", (32, 32), (9, 9, 9)).save(tmp_path / odin.folder / "zz.jpeg", quality=95)
    (tmp_path / odin.folder / "notes.txt").write_text("not an image")
    spec = OOD_SETS.get(odin.name)
    sources = {odin.name: {"root": str(tmp_path), "download": False}}
    spec.check_source(sources)
    for channels in (1, 3):
        x = spec(32, channels, "cifar10", **sources[odin.name])
        assert x.shape == (4, channels, 32, 32) and x.dtype == torch.float32
        for i in range(3):  # sorted by name; PNG is lossless, so values are exact
            assert torch.equal(
                x[i], expected_pixel(COLOURS[i], channels).view(-1, 1, 1).expand_as(x[i])
            )
        assert torch.allclose(x[3], torch.full_like(x[3], 9 / 127.5 - 1), atol=0.05)  # JPEG


def test_odin_root_may_be_the_top_or_the_image_folder(tmp_path):
    write_odin(tmp_path, "iSUN/iSUN_patches")
    build = OOD_SETS.get("odin-isun")
    reference = build(16, 3, "cifar10", root=str(tmp_path))
    assert reference.shape == (3, 3, 16, 16)
    for root in (tmp_path / "iSUN", tmp_path / "iSUN" / "iSUN_patches"):
        OOD_SETS.get("odin-isun").check_source({"odin-isun": {"root": str(root)}})
        assert torch.equal(build(16, 3, "cifar10", root=str(root)), reference)


def test_odin_missing_or_empty_folders_are_refused(tmp_path):
    spec = OOD_SETS.get("odin-lsun-resize")
    with pytest.raises(ConfigError, match=r"sources\.odin-lsun-resize\.root.*LSUN_resize"):
        spec.check_source({})
    missing = tmp_path / "absent"
    with pytest.raises(ConfigError, match="no such folder") as err:
        spec.check_source({"odin-lsun-resize": {"root": str(missing)}})
    assert str(missing) in str(err.value)
    (tmp_path / "LSUN_resize" / "LSUN_resize").mkdir(parents=True)  # extracted, but empty
    with pytest.raises(ConfigError, match=r"LSUN_resize/LSUN_resize/\*\.jpg") as err:
        spec.check_source({"odin-lsun-resize": {"root": str(tmp_path)}})
    assert "sources.odin-lsun-resize.root" in str(err.value)
    with pytest.raises(ConfigError, match=r"LSUN_resize\.tar\.gz"):
        spec(32, 3, "cifar10", root=str(tmp_path))


def write_openood(root: Path) -> None:
    """A tiny OpenOOD v1.5 tree: tin listed for cifar10 only, cifar100 listed for cifar10."""
    for i, colour in enumerate(COLOURS[:3]):
        write_png(root / "images_classic" / "tin" / "test" / f"t{i}.png", colour, (64, 64))
    half = Image.new("RGB", (64, 32), (0, 0, 0))  # 64 wide, 32 high: left black, right white
    half.paste((255, 255, 255), (32, 0, 64, 32))
    half.save(root / "images_classic" / "tin" / "test" / "wide.png")
    lists = root / "benchmark_imglist" / "cifar10"
    lists.mkdir(parents=True)
    names = ["tin/test/t2.png", "tin/test/t0.png", "tin/test/wide.png", "tin/test/t1.png"]
    (lists / "test_tin.txt").write_text("".join(f"{n} -1\n" for n in names) + "\n")
    write_png(root / "images_classic" / "cifar100" / "test" / "c.png", (10, 20, 30))
    (lists / "test_cifar100.txt").write_text("cifar100/test/c.png 0\n")


def test_openood_reads_the_list_of_the_id_dataset_in_order(tmp_path):
    write_openood(tmp_path)
    spec = OOD_SETS.get("openood-tin")
    sources = {"openood": {"root": str(tmp_path), "download": False}}
    spec.check_source(sources)
    x = spec(32, 3, "cifar10", **sources["openood"])
    assert x.shape == (4, 3, 32, 32) and x.dtype == torch.float32
    for row, colour in [(0, COLOURS[2]), (1, COLOURS[0]), (3, COLOURS[1])]:  # list order
        assert torch.equal(x[row], expected_pixel(colour, 3).view(3, 1, 1).expand(3, 32, 32))
    wide = x[2]  # shorter side already 32: centre crop keeps columns 16..47
    assert torch.all(wide[:, :, :15] == -1.0) and torch.all(wide[:, :, 17:] == 1.0)
    grey = spec(16, 1, "cifar10", root=str(tmp_path))
    assert grey.shape == (4, 1, 16, 16)
    assert torch.allclose(grey[1], expected_pixel(COLOURS[0], 1).expand(1, 16, 16), atol=1e-6)
    c100 = OOD_SETS.get("openood-cifar100")(32, 3, "cifar10", root=str(tmp_path))
    assert torch.equal(c100[0, :, 0, 0], expected_pixel((10, 20, 30), 3))


def test_openood_missing_list_or_images_are_refused(tmp_path):
    write_openood(tmp_path)
    spec = OOD_SETS.get("openood-tin")
    with pytest.raises(ConfigError) as err:
        spec(32, 3, "cifar100", root=str(tmp_path))
    message = str(err.value)
    assert "sources.openood.root" in message and str(tmp_path) in message
    assert "benchmark_imglist/cifar100/test_tin.txt" in message
    with pytest.raises(ConfigError, match=r"ood\.sets\.cifar10"):  # its own ID test set
        OOD_SETS.get("openood-cifar10")(32, 3, "cifar10", root=str(tmp_path))
    (tmp_path / "images_classic" / "tin" / "test" / "t1.png").unlink()
    with pytest.raises(ConfigError, match=r"sources\.openood\.root.*missing: tin/test/t1\.png"):
        spec(32, 3, "cifar10", root=str(tmp_path))


def test_openood_format_check(tmp_path):
    spec = OOD_SETS.get("openood-svhn")
    with pytest.raises(ConfigError, match=r"sources\.openood\.root.*benchmark_imglist"):
        spec.check_source({"openood": {"root": str(tmp_path / "absent")}})
    write_openood(tmp_path)
    OOD_SETS.get("openood-tin").check_source({"openood": {"root": str(tmp_path)}})
    with pytest.raises(ConfigError) as err:  # no svhn list for either ID dataset
        spec.check_source({"openood": {"root": str(tmp_path)}})
    assert "benchmark_imglist/cifar10/test_svhn.txt or benchmark_imglist/cifar100" in str(err.value)


# ----------------------------------------------------------------------------- metadata


def test_registry_metadata():
    expected = {
        "digits-6to9": ("near", "embedded", "digits", None),
        "letters": ("far", "embedded", "letters", None),
        "noise": ("far", "embedded", "", None),
        "photos": ("far", "embedded", "photos", None),
        "odin-tinyimagenet-crop": ("far", "odin", "tinyimagenet", None),
        "odin-tinyimagenet-resize": ("far", "odin", "tinyimagenet", None),
        "odin-lsun-crop": ("far", "odin", "lsun", None),
        "odin-lsun-resize": ("far", "odin", "lsun", None),
        "odin-isun": ("far", "odin", "isun", None),
        "openood-cifar10": ("near", "openood-v1.5", "cifar10", ("cifar100",)),
        "openood-cifar100": ("near", "openood-v1.5", "cifar100", ("cifar10",)),
        "openood-tin": ("near", "openood-v1.5", "openood-tin", ("cifar10", "cifar100")),
    }
    for far in ("mnist", "svhn", "texture", "places365"):
        expected[f"openood-{far}"] = (
            "far",
            "openood-v1.5",
            f"openood-{far}",
            ("cifar10", "cifar100"),
        )
    assert set(expected) <= set(OOD_SETS.names())
    for name, (group, protocol, family, ids) in expected.items():
        spec = OOD_SETS.get(name)
        assert (spec.group, spec.protocol, spec.family, spec.id_datasets) == (
            group, protocol, family, ids,
        ), name  # fmt: skip
        embedded = protocol == "embedded"
        assert (spec.local is None) == embedded, name
        if name.startswith("odin"):
            assert spec.source_key == name
        elif name.startswith("openood"):
            assert spec.source_key == "openood"
    assert OOD_SETS.get("digits-6to9").classes == ("6", "7", "8", "9")
    assert len(OOD_SETS.get("letters").classes) == 52
    assert OOD_SETS.get("openood-cifar10").classes == CIFAR10_CLASSES
    assert OOD_SETS.get("openood-cifar100").classes == CIFAR100_CLASSES
    assert all(
        OOD_SETS.get(n).classes == () for n in ("noise", "photos", "odin-isun", "openood-tin")
    )
    assert {o.name for o in OPENOOD_SETS} == {n for n in expected if n.startswith("openood")}


def test_digits_6to9_share_no_class_with_digits_0to5_only():
    ood = OOD_SETS.get("digits-6to9")
    for id_name, overlap in [("digits-0to5", set()), ("digits", set("6789"))]:
        spec = DATASETS.get(id_name)
        assert spec.family == ood.family
        assert set(spec.classes) & set(ood.classes) == overlap
