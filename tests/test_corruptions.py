"""zoo.corruptions: every corruption at every severity on a real Fashion-MNIST image
(28x28) and a real 64x64x3 scene; shapes, determinism, the global random state, the
strength growing with severity, and the errors."""
import random
import re

import numpy as np
import pytest

from zoo.corruptions import COMMON, CORRUPTIONS, FROST_FILES, SEVERITIES, corrupt
from zoo.corruptions.ops import FROST_DIR
from zoo.io import ZooError
from zoo.training.datasets.fashion_mnist import fashion_mnist_folder, load_fashion_mnist
from zoo.training.datasets.scenes import scene

NAMES = list(CORRUPTIONS)
# These draw nothing: the seed does not matter.
DETERMINISTIC = {"defocus_blur", "zoom_blur", "brightness", "contrast", "pixelate", "jpeg_compression", "gaussian_blur"}
# These only move or average pixels: a flat image stays flat (the kernels sum to 1, the
# borders are filled with the image's own pixels).
SPATIAL = ("defocus_blur", "glass_blur", "motion_blur", "zoom_blur", "elastic_transform", "pixelate", "gaussian_blur")


@pytest.fixture(scope="module")
def fashion_mnist():
    return load_fashion_mnist(fashion_mnist_folder(None))["test"]


@pytest.fixture(scope="module")
def images(fashion_mnist):
    """The first test image (an ankle boot, 28x28) and a 64x64 scene made 3-channel with a
    different gain per channel, so that the channels differ."""
    pictures, labels = fashion_mnist
    gray = scene(pictures, labels, seed=0, split="test", index=0, size=64).image.astype(np.float32)
    return {"garment": pictures[0], "scene": np.clip(gray * [1.0, 0.85, 0.6], 0, 255).astype(np.uint8)}


@pytest.fixture(params=["garment", "scene"])
def image(request, images):
    return images[request.param]


def mean_change(image, name, severity, seeds=range(4)):
    """Mean absolute difference from the clean image, over a few seeds."""
    return np.mean([np.abs(corrupt(image, name, severity, (7, s)).astype(float) - image).mean() for s in seeds])


def test_table():
    assert COMMON == (
        "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "glass_blur", "motion_blur", "zoom_blur",
        "snow", "frost", "fog", "brightness", "contrast", "elastic_transform", "pixelate", "jpeg_compression",
    )  # fmt: skip
    assert NAMES == [*COMMON, "speckle_noise", "gaussian_blur"]
    assert SEVERITIES == (1, 2, 3, 4, 5)


@pytest.mark.parametrize("name", NAMES)
def test_shape_dtype_and_change(name, image):
    for severity in SEVERITIES:
        out = corrupt(image, name, severity, (0, severity))
        assert out.shape == image.shape and out.dtype == np.uint8
        assert not np.array_equal(out, image), f"{name} at severity {severity} left the image unchanged"


@pytest.mark.parametrize("name", NAMES)
def test_grayscale_layouts_agree(name, images):
    """HxW and HxWx1 are the same image: the same pixels come out."""
    garment = images["garment"]
    flat = corrupt(garment, name, 3, (1, 2))
    assert np.array_equal(corrupt(garment[..., None], name, 3, (1, 2)), flat[..., None])


@pytest.mark.parametrize("name", NAMES)
def test_deterministic(name, image):
    first = corrupt(image, name, 3, (5, 11))
    assert corrupt(image, name, 3, (5, 11)).tobytes() == first.tobytes()
    other = corrupt(image, name, 3, (5, 12))
    assert np.array_equal(other, first) == (name in DETERMINISTIC)


def test_global_random_state_untouched(images):
    np.random.seed(1234)
    random.seed(1234)
    numpy_state, python_state = np.random.get_state(), random.getstate()
    for name in NAMES:
        for picture in images.values():
            corrupt(picture, name, 5, 3)
    after = np.random.get_state()
    assert after[0] == numpy_state[0] and np.array_equal(after[1], numpy_state[1]) and after[2:] == numpy_state[2:]
    assert random.getstate() == python_state


@pytest.mark.parametrize("name", NAMES)
def test_severity_zero_is_a_copy(name, image):
    out = corrupt(image, name, 0, 0)
    assert np.array_equal(out, image) and out.dtype == np.uint8
    assert not np.shares_memory(out, image)


@pytest.mark.parametrize("name", NAMES)
def test_strength_grows_with_severity(name, image):
    """Severity 5 changes the image more than severity 1. Not elastic_transform: in the
    CIFAR-10-C table its affine part shrinks (2.56 to 0.96 px at 32 px) while the elastic
    part grows, and the image's mean change falls with severity, in the reference too
    (make_cifar_c.py on Fashion-MNIST padded to 32 px: 23.5, 21.2, 19.2, 17.7, 14.9)."""
    weak, strong = mean_change(image, name, 1), mean_change(image, name, 5)
    if name == "elastic_transform":
        assert strong < weak
    else:
        assert strong > weak


@pytest.mark.parametrize("name", SPATIAL)
def test_flat_image_stays_flat(name):
    flat = np.full((40, 40, 3), 100, np.uint8)
    assert np.array_equal(corrupt(flat, name, 5, 0), flat)


def test_brightness_adds_to_gray(images):
    garment = images["garment"]
    assert np.array_equal(corrupt(garment, "brightness", 4, 0), np.minimum(garment.astype(int) + 51, 255))


@pytest.mark.parametrize("shape", [(16, 16), (16, 40, 3), (33, 47, 1), (128, 128, 3)])
def test_other_sizes(shape):
    picture = np.random.default_rng(0).integers(0, 256, shape, dtype=np.uint8)
    for name in NAMES:
        out = corrupt(picture, name, 5, 0)
        assert out.shape == shape and out.dtype == np.uint8


@pytest.mark.parametrize(
    "name, severity, match",
    [
        ("gausian_noise", 1, r"Unknown corruption 'gausian_noise'.*gaussian_noise, shot_noise"),
        ("spatter", 1, "Unknown corruption 'spatter'"),
        ("fog", 6, "Severity 6 is out of range.*0 .* to 5"),
        ("fog", -1, "Severity -1 is out of range"),
        ("fog", 2.0, "Severity 2.0 is out of range"),
        ("fog", True, "Severity True is out of range"),
    ],
)
def test_bad_name_or_severity(images, name, severity, match):
    with pytest.raises(ZooError, match=match):
        corrupt(images["garment"], name, severity, 0)


@pytest.mark.parametrize(
    "picture, match",
    [
        (np.zeros((28, 28), np.float32), "must be uint8.*float32"),
        (np.zeros((28, 28, 2), np.uint8), r"H x W x 3; its shape is \(28, 28, 2\)"),
        (np.zeros((28, 28, 4), np.uint8), r"its shape is \(28, 28, 4\)"),
        (np.zeros((2, 28, 28, 1), np.uint8), r"its shape is \(2, 28, 28, 1\)"),
        (np.zeros((8, 28), np.uint8), "8 x 28; the corruptions need 16 px"),
        ([[0] * 28] * 28, "numpy array, not a list"),
    ],
)
def test_bad_image(picture, match):
    with pytest.raises(ZooError, match=match):
        corrupt(picture, "fog", 1, 0)


@pytest.mark.parametrize("seed", [-1, None, 1.5, "7", (), (1, -2), True])
def test_bad_seed(images, seed):
    with pytest.raises(ZooError, match=rf"Seed {re.escape(repr(seed))} is not valid"):
        corrupt(images["garment"], "fog", 1, seed)


def test_seed_forms(images):
    garment = images["garment"]
    assert np.array_equal(corrupt(garment, "fog", 2, 5), corrupt(garment, "fog", 2, np.int64(5)))
    assert np.array_equal(corrupt(garment, "fog", 2, (5, 6)), corrupt(garment, "fog", 2, [5, 6]))


def test_frost_files():
    """The vendored textures: small, with their license and provenance."""
    folder = FROST_DIR
    assert sorted(p.name for p in folder.iterdir()) == ["LICENSE", "README.md", *sorted(set(FROST_FILES))]
    assert sum(p.stat().st_size for p in folder.iterdir()) < 300_000
    assert "Apache License" in (folder / "LICENSE").read_text()
