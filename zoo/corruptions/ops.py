"""The operations the corruptions share (NumPy and Pillow; images are float32
H x W x C in [0, 255]): convolution, Gaussian blur, bilinear sampling and zoom, the disk
and motion-blur kernels, the plasma fractal, the frost textures."""
import functools
from pathlib import Path
from typing import Sequence

import numpy as np
from PIL import Image

FROST_DIR = Path(__file__).resolve().parents[1] / "data" / "frost"
LUMA = np.array([0.299, 0.587, 0.114], np.float32)


def scale(x: np.ndarray) -> float:
    """s: the image's shorter side over CIFAR's 32 px."""
    return min(x.shape[:2]) / 32


def gray(x: np.ndarray) -> np.ndarray:
    """The luma of an RGB image as H x W x 1; a one-channel image unchanged."""
    return x if x.shape[2] == 1 else x @ LUMA[:, None]


def correlate(x: np.ndarray, kernel: np.ndarray, border: str = "reflect") -> np.ndarray:
    """2-D correlation of each channel with an odd-sized kernel centred on the pixel.
    Borders as `np.pad`'s `border` mode: "reflect" mirrors them (OpenCV's default,
    BORDER_REFLECT_101), "edge" repeats the edge pixel (ImageMagick's default). Sums over
    the kernel's non-zero taps only, so sparse kernels (lines, small disks) are cheap."""
    ry, rx = kernel.shape[0] // 2, kernel.shape[1] // 2
    padded = np.pad(x, ((ry, ry), (rx, rx), (0, 0)), mode=border)
    h, w = x.shape[:2]
    out = np.zeros_like(x)
    for i, j in zip(*np.nonzero(kernel)):
        out += kernel[i, j].astype(x.dtype) * padded[i : i + h, j : j + w]
    return out


def gaussian_blur(x: np.ndarray, sigma: float, truncate: float = 4.0) -> np.ndarray:
    """Separable Gaussian blur of standard deviation `sigma` pixels, cut at
    `truncate` sigmas (as scikit-image's `gaussian`)."""
    if sigma <= 0:
        return x
    radius = max(1, int(truncate * sigma + 0.5))
    taps = np.arange(-radius, radius + 1)
    kernel = np.exp(-(taps**2) / (2 * sigma**2))
    kernel /= kernel.sum()
    return correlate(correlate(x, kernel[None, :]), kernel[:, None])


def mirror(coordinate: np.ndarray, size: int) -> np.ndarray:
    """Folds coordinates into [0, size - 1] by mirroring at the edge pixels' centres."""
    period = 2 * (size - 1)
    coordinate = np.abs(coordinate) % period
    return np.where(coordinate > size - 1, period - coordinate, coordinate)


def sample(x: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of `x` at the (broadcast) coordinates `ys`, `xs`, per
    channel: SciPy's `map_coordinates(order=1)`, with the border mirrored about the edge
    pixels (SciPy's mode "mirror"; the reference's "reflect" repeats the edge pixel once)."""
    h, w = x.shape[:2]
    ys, xs = np.broadcast_arrays(mirror(ys, h), mirror(xs, w))
    y0 = np.minimum(ys.astype(np.int64), h - 2)
    x0 = np.minimum(xs.astype(np.int64), w - 2)
    fy = (ys - y0)[..., None].astype(np.float32)
    fx = (xs - x0)[..., None].astype(np.float32)
    top = x[y0, x0] * (1 - fx) + x[y0, x0 + 1] * fx
    bottom = x[y0 + 1, x0] * (1 - fx) + x[y0 + 1, x0 + 1] * fx
    return top * (1 - fy) + bottom * fy


def zoom(x: np.ndarray, factor: float, shape: Sequence[int]) -> np.ndarray:
    """The reference's `clipped_zoom`, onto a grid of `shape` (H, W), along each axis:
    the central crop = ceil(n / factor) pixels of x (from index (len - crop) // 2), resized
    corner to corner (SciPy `zoom(order=1)`) to round(crop * factor) pixels, of which n
    are kept from index (that - n) // 2. The whole-pixel crop and the floor divisions
    put the zoom's fixed point up to a pixel off the centre at small sizes; that is kept,
    as it makes about half of CIFAR-10-C's zoom blur at severity 1."""
    coordinates = []
    for n, length in zip(shape, x.shape):
        crop = int(np.ceil(n / factor))
        zoomed = round(crop * factor)
        kept = np.arange(n) + (zoomed - n) // 2
        coordinates.append((length - crop) // 2 + kept * (crop - 1) / max(zoomed - 1, 1))
    return sample(x, coordinates[0][:, None], coordinates[1][None, :])


def disk(radius: float, scale: float) -> np.ndarray:
    """The reference's disk kernel, stretched `scale` times: at 32 px, the pixels whose
    centre is within `radius` of the centre, all of one weight (radii 0.3 to 0.5 keep the
    centre pixel alone, 1 a plus of 5, 1.5 a 3x3 square); here each tap weighs the part
    of its pixel that those 32-px pixels cover once stretched (8 x 8 samples per pixel).
    At scale 1 this is the reference's kernel."""
    n = int(np.ceil((np.floor(radius) + 0.5) * scale + 0.5))
    sub = (np.arange(8) + 0.5) / 8 - 0.5
    cells = np.rint((np.arange(-n, n + 1)[:, None] + sub).ravel() / scale)  # 32-px pixel of each sample
    inside = cells[:, None] ** 2 + cells[None, :] ** 2 <= radius**2
    kernel = inside.reshape(2 * n + 1, 8, 2 * n + 1, 8).mean(axis=(1, 3))
    return kernel / kernel.sum()


def motion_kernel(radius: float, sigma: float, angle: float) -> np.ndarray:
    """The kernel of ImageMagick's motion blur (`MagickMotionBlurImage(radius, sigma,
    angle)`, which the reference calls through Wand): a one-sided line of 2 * radius + 1
    taps, tap i at i * (cos, sin)(angle) rounded to the nearest pixel (0 degrees = +x,
    90 = +y, y down), weighted by the half Gaussian exp(-i^2 / 2 sigma^2). Scaled,
    non-integer radii get round(2 * radius) + 1 taps. Use it with border="edge", as
    ImageMagick repeats the edge pixel: with lines nearly as long as the image, that
    decides how strong the streaks at the borders are."""
    taps = np.arange(round(2 * radius) + 1)
    weights = np.exp(-(taps**2) / (2 * sigma**2))
    theta = np.deg2rad(angle)
    n = len(taps)
    kernel = np.zeros((2 * n + 1, 2 * n + 1))
    # ImageMagick rounds with ceil(v - 0.5).
    rows = n + np.ceil(taps * np.sin(theta) - 0.5).astype(int)
    cols = n + np.ceil(taps * np.cos(theta) - 0.5).astype(int)
    np.add.at(kernel, (rows, cols), weights / weights.sum())
    return kernel


def plasma(size: int, decay: float, rng: np.random.Generator) -> np.ndarray:
    """A plasma fractal (diamond-square) on a periodic size x size grid, size a power of
    2, scaled to [0, 1]: the reference's `plasma_fractal`. Each level sets the new points
    to the mean of their four neighbours plus uniform noise of amplitude wibble^2; wibble
    starts at 100 and is divided by `decay` at each finer level."""
    height = np.zeros((size, size))
    step, wibble = size, 100.0

    def noisy_mean(total):  # with the current level's wibble
        return total / 4 + wibble * rng.uniform(-wibble, wibble, total.shape)

    while step >= 2:
        half = step // 2
        corners = height[::step, ::step]
        right, below = np.roll(corners, -1, axis=1), np.roll(corners, -1, axis=0)
        # Square step: each square's centre from its four corners.
        height[half::step, half::step] = noisy_mean(corners + right + below + np.roll(right, -1, axis=0))
        centres = height[half::step, half::step]
        # Diamond step: each edge's midpoint from its two corners and the two centres beside it.
        height[::step, half::step] = noisy_mean(corners + right + centres + np.roll(centres, 1, axis=0))
        height[half::step, ::step] = noisy_mean(corners + below + centres + np.roll(centres, 1, axis=1))
        step, wibble = half, wibble / decay
    height -= height.min()
    return (height / height.max()).astype(np.float32)


def to_pil(x: np.ndarray) -> Image.Image:
    """A float image as an 8-bit PIL image ("L" or "RGB")."""
    pixels = np.clip(np.rint(x), 0, 255).astype(np.uint8)
    return Image.fromarray(pixels[..., 0] if x.shape[2] == 1 else pixels)


def from_pil(image: Image.Image, shape: Sequence[int]) -> np.ndarray:
    return np.asarray(image, np.float32).reshape(shape)


@functools.lru_cache(maxsize=None)
def frost_texture(name: str) -> np.ndarray:
    """A frost photograph at CIFAR-10-C's scale (RGB float32, read once)."""
    with Image.open(FROST_DIR / name) as image:
        texture = np.asarray(image.convert("RGB"), np.float32)
    texture.flags.writeable = False
    return texture
