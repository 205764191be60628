"""Offline OOD sets: built from what the installed libraries ship, identical on every machine.

Every builder takes ``(resolution, channels, id_dataset)``, ignores ``id_dataset`` and
returns (N, C, R, R) float32 in [-1, 1] with C = ``channels`` (1 or 3). All randomness
comes from fixed seeds through explicit ``numpy.random.default_rng`` / ``torch.Generator``
streams, never the global generators, so equal calls return equal tensors. Random choices
are drawn before anything depends on the resolution, so every resolution shows the same
letters, crops and noise parameters.

- ``digits-6to9`` (near): every scikit-learn digit of classes 6–9 from all three splits of
  :mod:`adaptivemix.data.digits` (714 images), upsampled exactly like that dataset; none of
  them is seen by a model trained on ``digits-0to5``.
- ``letters`` (far): 1,000 letters A–Z / a–z in the font Pillow ships (Aileron Regular, a
  FreeType font from ``ImageFont.load_default(size=...)``), white ink on black like the
  digits (ink -> +1) and with a thickened stroke like their pen strokes, each with its own
  letter, size, offset and small rotation, rendered on a large canvas and downsampled with
  antialiasing.
- ``noise`` (far): 1,000 images; the first 500 uniform noise in [-1, 1], the last 500
  Gaussian noise blurred with a Gaussian kernel (a random width per image) and rescaled to
  span [-1, 1].
- ``photos`` (far): 1,000 random square crops of the two photos scikit-learn ships
  (``load_sample_images()``: a Chinese temple and a flower), grey for one channel
  (ITU-R 601 luma), resized with antialiasing.
"""

from __future__ import annotations

import math
import string

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from adaptivemix.data.cifar import resize_images
from adaptivemix.data.digits import digits_split_indices, upsample_digits
from adaptivemix.ood.sets import register_ood_set

N_IMAGES = 1_000  # letters, noise and photos
OOD_DIGITS = (6, 7, 8, 9)
LETTERS = string.ascii_uppercase + string.ascii_lowercase
LETTERS_SEED, NOISE_SEED, PHOTOS_SEED = 20180215, 20180216, 20180217  # fixed forever
# letters: font size as a share of the canvas, centre offset (share), rotation (degrees)
LETTER_SIZE, LETTER_SHIFT, LETTER_ANGLE = (0.6, 1.0), 0.1, 15.0
STROKE = 0.05  # extra stroke width (share of the font size): thick pen strokes like the digits
MIN_CANVAS = 96
NOISE_SIGMA = (0.5, 2.5)  # blur width in pixels at 32 px, scaled with the resolution
PHOTO_SIDE = (32, 320)  # crop side in pixels of the 427×640 photos, inclusive
LUMA = (0.299, 0.587, 0.114)  # ITU-R 601-2, what Pillow's convert("L") uses


def with_channels(x: torch.Tensor, channels: int) -> torch.Tensor:
    """(N, 1 or 3, R, R) -> (N, channels, R, R): repeat grey, or take the luma of colour."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, not {channels!r}")
    if x.shape[1] == channels:
        return x.contiguous()
    if channels == 3:
        return x.repeat(1, 3, 1, 1)
    weights = torch.tensor(LUMA, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * weights).sum(dim=1, keepdim=True)


def _check(resolution: int, channels: int) -> None:
    if not isinstance(resolution, int) or resolution < 1:
        raise ValueError(f"resolution must be a positive integer, not {resolution!r}")
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 or 3, not {channels!r}")


def digits_6to9_indices() -> np.ndarray:
    """Sorted indices into ``load_digits()`` of every class 6–9 image of all three splits."""
    from sklearn.datasets import load_digits  # at use: only preparing the sets needs it

    target = load_digits().target
    every = np.sort(np.concatenate(list(digits_split_indices().values())))
    return every[np.isin(target[every], OOD_DIGITS)]


@register_ood_set(
    "digits-6to9", family="digits", classes=[str(d) for d in OOD_DIGITS], group="near",
    protocol="embedded",
)  # fmt: skip
def build_digits_6to9(resolution: int, channels: int, id_dataset: str | None = None):
    """(714, C, R, R): the digits 6–9, upsampled like the digits dataset."""
    _check(resolution, channels)
    from sklearn.datasets import load_digits  # at use: only preparing the sets needs it

    images = load_digits().images[digits_6to9_indices()]
    return with_channels(upsample_digits(images, resolution), channels)


def render_letters(n: int, canvas: int, seed: int = LETTERS_SEED) -> np.ndarray:
    """(n, canvas, canvas) uint8: one white letter on black per image, from ``seed``."""
    rng = np.random.default_rng(seed)
    chars = rng.integers(0, len(LETTERS), n)
    sizes = rng.uniform(*LETTER_SIZE, n)
    shifts = rng.uniform(-LETTER_SHIFT, LETTER_SHIFT, (n, 2))
    angles = rng.uniform(-LETTER_ANGLE, LETTER_ANGLE, n)
    fonts: dict[int, ImageFont.FreeTypeFont | ImageFont.ImageFont] = {}
    out = np.empty((n, canvas, canvas), dtype=np.uint8)
    for i in range(n):
        px = max(4, round(sizes[i] * canvas))
        if px not in fonts:
            fonts[px] = ImageFont.load_default(size=px)
            if not isinstance(fonts[px], ImageFont.FreeTypeFont):  # a fixed-size bitmap font
                raise RuntimeError("the 'letters' OOD set needs Pillow built with FreeType")
        font = fonts[px]
        image = Image.new("L", (canvas, canvas), 0)
        centre = tuple(canvas / 2 + shifts[i] * canvas)
        ImageDraw.Draw(image).text(
            centre, LETTERS[chars[i]], fill=255, font=font, anchor="mm",
            stroke_width=max(1, round(STROKE * px)), stroke_fill=255,
        )  # fmt: skip
        image = image.rotate(angles[i], resample=Image.Resampling.BILINEAR, fillcolor=0)
        out[i] = np.asarray(image)
    return out


@register_ood_set(
    "letters", family="letters", classes=list(LETTERS), group="far", protocol="embedded"
)
def build_letters(resolution: int, channels: int, id_dataset: str | None = None):
    """(1000, C, R, R): rendered letters, ink +1 on a -1 background."""
    _check(resolution, channels)
    canvas = max(MIN_CANVAS, 2 * resolution)
    ink = torch.from_numpy(render_letters(N_IMAGES, canvas)).unsqueeze(1).to(torch.float32)
    x = resize_images(ink.div_(127.5).sub_(1.0), resolution)
    return with_channels(x, channels)


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """(1, C, H, W) blurred by a separable Gaussian of width ``sigma`` (edges replicated)."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    kernel = torch.exp(-0.5 * (t / sigma) ** 2)
    kernel /= kernel.sum()
    c = x.shape[1]
    x = F.pad(x, (radius, radius, radius, radius), mode="replicate")
    x = F.conv2d(x, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(x, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


@register_ood_set("noise", family="", classes=(), group="far", protocol="embedded")
def build_noise(resolution: int, channels: int, id_dataset: str | None = None):
    """(1000, C, R, R): 500 uniform, then 500 blurred Gaussian noise images."""
    _check(resolution, channels)
    gen = torch.Generator().manual_seed(NOISE_SEED)
    n_uniform = N_IMAGES // 2
    n_blurred = N_IMAGES - n_uniform
    sigmas = NOISE_SIGMA[0] + (NOISE_SIGMA[1] - NOISE_SIGMA[0]) * torch.rand(
        n_blurred, generator=gen, dtype=torch.float64
    )
    shape = (channels, resolution, resolution)
    uniform = torch.rand((n_uniform, *shape), generator=gen).mul_(2.0).sub_(1.0)
    gauss = torch.randn((n_blurred, *shape), generator=gen)
    blurred = torch.empty_like(gauss)
    for i in range(n_blurred):
        b = gaussian_blur(gauss[i : i + 1], float(sigmas[i]) * resolution / 32)[0]
        low, high = b.min(), b.max()
        span = high - low
        blurred[i] = (b - low).div_(span).mul_(2.0).sub_(1.0) if span > 0 else 0.0
    return torch.cat([uniform, blurred]).clamp_(-1.0, 1.0)


def photo_crop_boxes(n: int, seed: int = PHOTOS_SEED) -> list[tuple[int, int, int, int]]:
    """``(photo, top, left, side)`` for each crop of the scikit-learn sample photos."""
    from sklearn.datasets import load_sample_images  # at use: only preparing the sets needs it

    shapes = [p.shape[:2] for p in load_sample_images().images]
    rng = np.random.default_rng(seed)
    which = rng.integers(0, len(shapes), n)
    sides = rng.integers(PHOTO_SIDE[0], PHOTO_SIDE[1] + 1, n)
    where = rng.random((n, 2))
    boxes = []
    for k, side, (u, v) in zip(which, sides, where, strict=True):
        h, w = shapes[k]
        side = min(int(side), h, w)
        boxes.append((int(k), int(u * (h - side + 1)), int(v * (w - side + 1)), side))
    return boxes


@register_ood_set("photos", family="photos", classes=(), group="far", protocol="embedded")
def build_photos(resolution: int, channels: int, id_dataset: str | None = None):
    """(1000, C, R, R): square crops of natural photos, colour or grey."""
    _check(resolution, channels)
    from sklearn.datasets import load_sample_images  # at use: only preparing the sets needs it

    photos = [torch.from_numpy(np.array(p)).permute(2, 0, 1) for p in load_sample_images().images]
    out = torch.empty((N_IMAGES, channels, resolution, resolution), dtype=torch.float32)
    for i, (k, top, left, side) in enumerate(photo_crop_boxes(N_IMAGES)):
        crop = photos[k][:, top : top + side, left : left + side].unsqueeze(0)
        x = with_channels(crop.to(torch.float32).div_(127.5).sub_(1.0), channels)
        out[i] = resize_images(x, resolution)[0]
    return out
