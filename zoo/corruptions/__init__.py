"""Image corruptions of the ImageNet-C family at five severities, for robustness benchmarks.

The corruptions of Hendrycks & Dietterich, "Benchmarking Neural Network Robustness to
Common Corruptions and Perturbations" (ICLR 2019): the 15 common ones (`COMMON`, in
ImageNet-C's order) and the extra `speckle_noise` and `gaussian_blur`. The severity
parameters are those of CIFAR-10-C, the 32-px table of `make_cifar_c.py`
(github.com/hendrycks/robustness, ImageNet-C/create_c/, commit 8190fe3), which is what
BiBench's corruption track evaluates on (Qin et al., "BiBench: Benchmarking and Analyzing
Network Binarization", ICML 2023). The code is a NumPy + Pillow re-implementation of
that script's algorithms, not a copy; where it deviates, the function's docstring says
how. Checked against it at 32 px (make_cifar_c.py run with a NumPy port of ImageMagick's
motion blur, on 200 Fashion-MNIST test images padded to 32x32): every corruption's mean
absolute change at every severity agrees within about 1 of 255 (within 2 for
elastic_transform, from its random draws); results are rounded to the nearest integer
where the reference truncates (`np.uint8`), which makes brightness 1 brighter.

    corrupt(image, "fog", 3, seed=(0, 17))  # uint8 in, uint8 of the same shape out

The result is a pure function of (image, name, severity, seed): every corruption
draws from its own `np.random.Generator`, never from NumPy's or Python's global state.
Grayscale images (HxW, HxWx1) are corrupted as such; only `snow` and `frost` use the
luma (0.299 R + 0.587 G + 0.114 B) of a colour image or texture.

Image size. The table is for 32x32 images. For another size, every parameter that is a
length in pixels (blur sigmas and radii, the motion-blur length, glass blur's shuffle
distance, the elastic transform's displacements and smoothing, the snow flakes' size,
the frost texture's scale) is multiplied by s = (shorter side) / 32 (defocus blur's
disk is the 32-px one stretched s times; see each function): 0.875 for
Fashion-MNIST's 28 px, 2 to 4 for 64- to 128-px scenes. Relative parameters are left as
they are: pixelate's factor, zoom blur's zoom factors, the noise levels, and fog (its
plasma fractal spans the image at any size). JPEG's 8x8 blocks cannot scale.

Why not the `imagecorruptions` package (PyPI 1.1.2): it refuses images under 32 px;
its glass_blur and gaussian_blur crash with any scikit-image that installs on Python
3.11+ (`multichannel`; fixed on GitHub, never released); its import fails on Python
3.12 with setuptools >= 82 (`pkg_resources`); it draws from NumPy's global random
state (not thread-safe) and its impulse_noise cannot be seeded at all; its strengths
are ImageNet's 224-px ones, which erase a 28-px garment by severity 3; and it brings
OpenCV, SciPy and scikit-image (~370 MB).

Left out: `spatter`, which needs OpenCV's Canny edges, distance transform and
histogram equalisation; and `saturate`, which changes nothing on a grayscale image
(it scales HSV saturation, zero for gray pixels) and so says nothing about our
grayscale data.

The frost textures in zoo/data/frost are reduced copies of the reference's photographs
(Apache-2.0; see the README there).
"""
import io
from typing import Callable, Dict, Sequence, Union

import numpy as np
from PIL import Image

from zoo.corruptions import ops
from zoo.io import ZooError

SEVERITIES = (1, 2, 3, 4, 5)
# The smallest side accepted: below it, the scaled kernels of the table lose meaning.
MIN_SIDE = 16
# The reference draws one of its first five frost files; its frost3.png has the same
# pixels as frost2.png, so frost2 stands for both (zoo/data/frost/README.md).
FROST_FILES = ("frost1.png", "frost2.png", "frost2.png", "frost4.png", "frost5.png")


# --- The corruptions: float32 H x W x C in [0, 255], severity 1..5, generator -> float32
# H x W x C, not yet clipped (`corrupt` clips and rounds). Parameters: make_cifar_c.py.


def gaussian_noise(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Adds N(0, c^2) noise (image in [0, 1]) to every pixel and channel."""
    c = (0.04, 0.06, 0.08, 0.09, 0.10)[severity - 1]
    return x + rng.normal(0, 255 * c, x.shape)


def shot_noise(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Poisson noise: Poisson(c * x) / c, with x in [0, 1] and c photons at full white."""
    c = (500, 250, 100, 75, 50)[severity - 1]
    return rng.poisson(x / 255 * c) / c * 255


def impulse_noise(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Salt and pepper: a fraction c of the values (per pixel and channel, as
    scikit-image's `random_noise(mode="s&p")`) set to 0 or 255 with equal odds."""
    c = (0.01, 0.02, 0.03, 0.05, 0.07)[severity - 1]
    hit = rng.random(x.shape) < c
    salt = rng.random(x.shape) < 0.5
    return np.where(hit, np.where(salt, 255.0, 0.0), x)


def speckle_noise(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Multiplicative noise: x + x * N(0, c^2)."""
    c = (0.06, 0.1, 0.12, 0.16, 0.2)[severity - 1]
    return x + x * rng.normal(0, c, x.shape)


def gaussian_blur(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur of sigma c * s pixels. The reference (scikit-image) repeats the edge
    pixel at the border; here it is mirrored."""
    c = (0.4, 0.6, 0.7, 0.8, 1.0)[severity - 1]
    return ops.gaussian_blur(x, c * ops.scale(x))


def defocus_blur(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Convolution with the reference's 32-px disk of radius r stretched s times (see
    `ops.disk`), then a Gaussian of sigma a * s: the reference's anti-aliasing of the disk,
    applied to the image instead of the kernel (the same result), with a kernel 4 sigmas
    wide where OpenCV's is 3x3."""
    radius, alias = ((0.3, 0.4), (0.4, 0.5), (0.5, 0.6), (1, 0.2), (1.5, 0.1))[severity - 1]
    s = ops.scale(x)
    return ops.gaussian_blur(ops.correlate(x, ops.disk(radius, s)), alias * s)


def glass_blur(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Gaussian blur (sigma * s), local pixel shuffling, Gaussian blur again.

    The shuffle is what the reference does to a colour image, CIFAR-10-C's case: its
    loop means to swap each pixel (but a margin of d) with the pixel (dy, dx) away, dy
    and dx drawn from [-d, d) (`randint` excludes +d), but its tuple swap of two NumPy
    views copies instead: the pixel takes its neighbour's value and the neighbour keeps
    its own. Here every pixel takes the value (dy, dx) away at once, `iterations` times;
    for d = 1 (32 px) that is exactly the reference's loop, which visits the pixels from
    the bottom-right so that every source, up or left, is still unchanged. d = round(1 *
    s), at least 1. The reference also rounds to uint8 after the first blur; not here."""
    sigma, delta, iterations = ((0.05, 1, 1), (0.25, 1, 1), (0.4, 1, 1), (0.25, 1, 2), (0.4, 1, 2))[severity - 1]
    s = ops.scale(x)
    d = max(1, round(delta * s))
    x = ops.gaussian_blur(x, sigma * s)
    h, w = x.shape[:2]
    rows, cols = np.arange(d + 1, h - d + 1)[:, None], np.arange(d + 1, w - d + 1)[None, :]
    for _ in range(iterations):
        dy, dx = rng.integers(-d, d, size=(2, rows.size, cols.size))
        x = x.copy()
        x[rows, cols] = x[rows + dy, cols + dx]
    return ops.gaussian_blur(x, sigma * s)


def motion_blur(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """ImageMagick's motion blur (see `ops.motion_kernel`) of radius * s, sigma * s, at an
    angle uniform in [-45, 45) degrees."""
    radius, sigma = ((6, 1), (6, 1.5), (6, 2), (8, 2), (9, 2.5))[severity - 1]
    s = ops.scale(x)
    return ops.correlate(x, ops.motion_kernel(radius * s, sigma * s, rng.uniform(-45, 45)), border="edge")


def zoom_blur(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """The mean of the image and its centre zoomed by 1.00, 1.01, ..., up to the
    severity's largest factor. The reference's `np.arange(1, 1.06, 0.01)` and
    `np.arange(1, 1.11, 0.01)` include their end point through float rounding, so its
    largest factors are 1.06, 1.11, 1.15, 1.20 and 1.25 (7 to 26 zooms), as here."""
    count = (7, 12, 16, 21, 26)[severity - 1]
    out = x.copy()
    for factor in 1 + 0.01 * np.arange(count):
        out += ops.zoom(x, factor, x.shape[:2])
    return out / (count + 1)


def snow(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Snow flakes: N(mean, std^2) noise zoomed by zoom * s, values under `threshold`
    set to 0, motion-blurred (radius * s, sigma * s, angle uniform in [-135, -45)), and
    added twice (the second copy turned 180 degrees) to the image, which is first
    brightened towards 1.5 * luma + 0.5 with weight 1 - `blend`."""
    mean, std, zoom, threshold, radius, sigma, blend = (
        (0.1, 0.2, 1, 0.6, 8, 3, 0.95),
        (0.1, 0.2, 1, 0.5, 10, 4, 0.9),
        (0.15, 0.3, 1.75, 0.55, 10, 4, 0.9),
        (0.25, 0.3, 2.25, 0.6, 12, 6, 0.85),
        (0.3, 0.3, 1.25, 0.65, 14, 12, 0.8),
    )[severity - 1]
    s = ops.scale(x)
    h, w = x.shape[:2]
    zoom *= s
    noise = rng.normal(mean, std, (max(h, int(np.ceil(h / zoom))), max(w, int(np.ceil(w / zoom))), 1))
    flakes = ops.zoom(noise.astype(np.float32), zoom, (h, w))
    flakes[flakes < threshold] = 0
    streak = ops.motion_kernel(radius * s, sigma * s, rng.uniform(-135, -45))
    flakes = ops.correlate(np.clip(flakes, 0, 1), streak, border="edge")
    x = x / 255
    x = blend * x + (1 - blend) * np.maximum(x, ops.gray(x) * 1.5 + 0.5)
    return (x + flakes + flakes[::-1, ::-1]) * 255


def frost(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """weight * image + frost_weight * a random crop of one of five frost photographs
    (its luma for a one-channel image), taken at CIFAR-10-C's scale (the photograph
    shrunk 5 times) times s, bilinearly resampled when s != 1."""
    weight, frost_weight = ((1, 0.2), (1, 0.3), (0.9, 0.4), (0.85, 0.4), (0.75, 0.45))[severity - 1]
    texture = ops.frost_texture(FROST_FILES[rng.integers(len(FROST_FILES))])
    h, w = x.shape[:2]
    # The texture is at least 63 px high, 2 s times a square image; a long thin image
    # takes the texture larger, to fit.
    s = max(ops.scale(x), (h + 2) / texture.shape[0], (w + 2) / texture.shape[1])
    top = rng.integers(0, int(texture.shape[0] * s) - h)
    left = rng.integers(0, int(texture.shape[1] * s) - w)
    ys = (top + np.arange(h) + 0.5) / s - 0.5
    xs = (left + np.arange(w) + 0.5) / s - 0.5
    crop = ops.sample(texture, ys[:, None], xs[None, :])
    return weight * x + frost_weight * (crop if x.shape[2] == 3 else ops.gray(crop))


def fog(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Adds thickness * a plasma fractal (the same on every channel), then scales the
    image so that its old maximum m maps to m * m / (m + thickness)."""
    thickness, decay = ((0.2, 3), (0.5, 3), (0.75, 2.5), (1, 2), (1.5, 1.75))[severity - 1]
    h, w = x.shape[:2]
    size = 1 << (max(h, w) - 1).bit_length()
    peak = x.max()
    x = x + 255 * thickness * ops.plasma(size, decay, rng)[:h, :w, None]
    return x * peak / (peak + 255 * thickness)


def brightness(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Adds c to the HSV value (V = max of the channels, clipped to 1), keeping hue and
    saturation. In closed form, without the HSV round trip: every channel is multiplied
    by V' / V (a black pixel becomes gray V'); for a gray image that is x + c."""
    c = (0.05, 0.1, 0.15, 0.2, 0.3)[severity - 1]
    value = x.max(axis=2, keepdims=True)
    lifted = np.minimum(value + 255 * c, 255)
    return np.where(value > 0, x * (lifted / np.maximum(value, 1e-6)), lifted)


def contrast(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Pulls every channel towards its mean: (x - mean) * c + mean."""
    c = (0.75, 0.5, 0.4, 0.3, 0.15)[severity - 1]
    means = x.mean(axis=(0, 1), keepdims=True)
    return (x - means) * c + means


def elastic_transform(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """A random affine transform (three points around the centre, at +-side/3, moved by
    up to `affine` px), then Simard's elastic displacement: uniform(-1, 1) noise blurred
    with sigma px, times alpha.

    The table is the reference's, in 32-px pixels; affine and sigma scale by s, alpha by
    s^2, because the blurred noise's amplitude falls as 1 / sigma: so the displacement
    field is, in distribution, the 32-px one stretched s times. The reference warps
    twice (OpenCV's `warpAffine`, then `map_coordinates`); here the two maps are composed
    and the image is interpolated once. Borders are mirrored in both."""
    alpha, sigma, affine = (
        (0, 0, 32 * 0.08),
        (32 * 0.05, 32 * 0.2, 32 * 0.07),
        (32 * 0.08, 32 * 0.06, 32 * 0.06),
        (32 * 0.1, 32 * 0.04, 32 * 0.05),
        (32 * 0.1, 32 * 0.03, 32 * 0.03),
    )[severity - 1]
    s = ops.scale(x)
    h, w = x.shape[:2]
    centre, side = np.array([w // 2, h // 2], float), min(h, w) // 3
    points = np.array([centre + side, centre + [side, -side], centre - side])  # (x, y)
    moved = points + rng.uniform(-affine * s, affine * s, points.shape)
    # The inverse affine map, output (x, y, 1) -> input (x, y): moved -> points.
    inverse = np.linalg.solve(np.column_stack([moved, np.ones(3)]), points)
    noise = rng.uniform(-1, 1, (h, w, 2)).astype(np.float32)
    dx, dy = np.moveaxis(ops.gaussian_blur(noise, sigma * s, truncate=3) * (alpha * s * s), 2, 0)
    xs = np.arange(w)[None, :] + dx
    ys = np.arange(h)[:, None] + dy
    source = np.stack([xs, ys, np.ones_like(xs)], axis=-1) @ inverse
    return ops.sample(x, source[..., 1], source[..., 0])


def pixelate(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Box-downsamples to c times the size (int(side * c)) and box-upsamples back (PIL)."""
    c = (0.95, 0.9, 0.85, 0.75, 0.65)[severity - 1]
    h, w = x.shape[:2]
    small = ops.to_pil(x).resize((int(w * c), int(h * c)), Image.BOX)
    return ops.from_pil(small.resize((w, h), Image.BOX), x.shape)


def jpeg_compression(x: np.ndarray, severity: int, rng: np.random.Generator) -> np.ndarray:
    """Pillow's JPEG at quality c (grayscale JPEG for a one-channel image)."""
    c = (80, 65, 58, 50, 40)[severity - 1]
    buffer = io.BytesIO()
    ops.to_pil(x).save(buffer, "JPEG", quality=c)
    with Image.open(buffer) as image:
        return ops.from_pil(image, x.shape)


Corruption = Callable[[np.ndarray, int, np.random.Generator], np.ndarray]
CORRUPTIONS: Dict[str, Corruption] = {
    f.__name__: f
    for f in (
        gaussian_noise,
        shot_noise,
        impulse_noise,
        defocus_blur,
        glass_blur,
        motion_blur,
        zoom_blur,
        snow,
        frost,
        fog,
        brightness,
        contrast,
        elastic_transform,
        pixelate,
        jpeg_compression,
        speckle_noise,
        gaussian_blur,
    )
}
COMMON = tuple(CORRUPTIONS)[:15]


def _check_image(image: np.ndarray) -> None:
    if not isinstance(image, np.ndarray):
        raise ZooError(f"The image must be a numpy array, not a {type(image).__name__}.")
    if image.dtype != np.uint8:
        raise ZooError(f"The image must be uint8 (0 to 255), not {image.dtype}.")
    if not (image.ndim == 2 or (image.ndim == 3 and image.shape[2] in (1, 3))):
        raise ZooError(f"The image must be H x W, H x W x 1 or H x W x 3; its shape is {image.shape}.")
    if min(image.shape[:2]) < MIN_SIDE:
        raise ZooError(f"The image is {image.shape[0]} x {image.shape[1]}; the corruptions need {MIN_SIDE} px or more.")


def corrupt(image: np.ndarray, name: str, severity: int, seed: Union[int, Sequence[int]]) -> np.ndarray:
    """One image corrupted.

    Arguments:
        image: uint8, H x W, H x W x 1 or H x W x 3, both sides 16 px or more.
        name: one of `CORRUPTIONS`.
        severity: 1 to 5, or 0 for none (a copy of the image).
        seed: a non-negative integer or a tuple of them (for instance (dataset seed,
            image index)), given to `np.random.default_rng`.

    Returns:
        The corrupted image, uint8 of the image's shape: a pure function of the arguments.

    Raises:
        ZooError: for an unknown name, a severity out of range, a seed that is not
            non-negative integers (None too: it would draw fresh entropy), or an image
            that is not uint8 of an accepted shape.
    """
    if name not in CORRUPTIONS:
        raise ZooError(f"Unknown corruption {name!r}; the corruptions are: {', '.join(CORRUPTIONS)}.")
    if isinstance(severity, bool) or not isinstance(severity, (int, np.integer)) or not 0 <= severity <= 5:
        raise ZooError(f"Severity {severity!r} is out of range: it must be an integer from 0 (none) to 5.")
    _check_image(image)
    words = seed if isinstance(seed, (tuple, list)) else (seed,)
    if not words or not all(isinstance(w, (int, np.integer)) and not isinstance(w, bool) and w >= 0 for w in words):
        raise ZooError(f"Seed {seed!r} is not valid: it must be a non-negative integer or a tuple of them.")
    rng = np.random.default_rng(seed)
    if severity == 0:
        return image.copy()
    x = image.astype(np.float32).reshape(image.shape[0], image.shape[1], -1)
    out = CORRUPTIONS[name](x, int(severity), rng)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8).reshape(image.shape)
