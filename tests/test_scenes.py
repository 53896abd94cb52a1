import gzip
import struct

import numpy as np
import pytest
import tensorflow as tf
from zookeeper import configure

from zoo.training.datasets import (
    DatasetNotFoundError,
    FashionMNISTScenes,
    fashion_mnist_folder,
    get_dataset,
    load_fashion_mnist,
    scenes,
)

NUM_SCENES = 300


def configured(instance, **conf):
    configure(instance, conf)
    return instance


@pytest.fixture(scope="module")
def fashion_mnist():
    return load_fashion_mnist(fashion_mnist_folder(None))


@pytest.fixture(scope="module")
def test_scenes(fashion_mnist):
    images, labels = fashion_mnist["test"]
    return [scenes.scene(images, labels, 0, "test", i) for i in range(NUM_SCENES)]


def assert_same_scene(a: scenes.Scene, b: scenes.Scene):
    for name, x, y in zip(a._fields, a, b):
        assert x.dtype == y.dtype and np.array_equal(x, y), name


# --- make_scene ---


def test_a_scene_is_a_function_of_its_seed_split_and_index(fashion_mnist):
    images, labels = fashion_mnist["test"]
    first = scenes.scene(images, labels, 0, "test", 7)
    assert_same_scene(first, scenes.scene(images, labels, 0, "test", 7))
    assert_same_scene(first, scenes.scene(images, labels, 0, "validation", 7))
    rng = np.random.default_rng(12)
    again = np.random.default_rng(12)
    assert_same_scene(
        scenes.make_scene(images, labels, rng), scenes.make_scene(images, labels, again)
    )
    for other in (
        scenes.scene(images, labels, 0, "test", 8),
        scenes.scene(images, labels, 1, "test", 7),
        scenes.scene(images, labels, 0, "train", 7),
    ):
        assert not np.array_equal(first.image, other.image)


def test_scene_arrays(test_scenes, fashion_mnist):
    _, test_labels = fashion_mnist["test"]
    counts = np.zeros(6, int)
    for scene in test_scenes:
        n = len(scene.labels)
        counts[n] += 1
        assert scene.image.shape == (96, 96, 1) and scene.image.dtype == np.uint8
        assert scene.mask.shape == (96, 96) and scene.mask.dtype == np.uint8
        assert scene.boxes.shape == (n, 4) and scene.boxes.dtype == np.float32
        assert scene.labels.dtype == scene.sources.dtype == np.int64
        assert scene.sources.shape == (n,)
        np.testing.assert_array_equal(scene.labels, test_labels[scene.sources] + 1)
        assert scene.boxes.min() >= 0 and scene.boxes.max() <= 96
        assert np.all(scene.boxes[:, 2:] > scene.boxes[:, :2])
    assert counts[:2].sum() == 0 and np.all(counts[2:] > NUM_SCENES // 8)
    all_labels = np.concatenate([scene.labels for scene in test_scenes])
    assert set(all_labels.tolist()) == set(range(1, 11))


def test_image_and_mask_agree(test_scenes):
    for scene in test_scenes:
        image = scene.image[..., 0]
        assert np.all(image[scene.mask == 0] == 0)
        assert np.all(image[scene.mask > 0] > scenes.SILHOUETTE_THRESHOLD)


def test_boxes_are_the_tight_boxes_of_their_class_in_the_mask(test_scenes):
    for scene in test_scenes:
        covered = np.zeros(scene.mask.shape, bool)
        for box, label in zip(scene.boxes.astype(int), scene.labels):
            ymin, xmin, ymax, xmax = box
            region = scene.mask[ymin:ymax, xmin:xmax] == label
            # Its class touches all four sides of the box.
            assert region[0].any() and region[-1].any()
            assert region[:, 0].any() and region[:, -1].any()
            covered[ymin:ymax, xmin:xmax] |= region
        # Every garment pixel lies in a box of its class.
        assert np.array_equal(covered, scene.mask > 0)


def test_overlap_is_bounded_but_happens(test_scenes, fashion_mnist):
    overlapping = 0
    for scene in test_scenes:
        iou = np.triu(scenes.box_iou(scene.boxes, scene.boxes), 1)
        assert iou.max() <= 0.2
        overlapping += iou.max() > 0
    assert overlapping > NUM_SCENES // 10
    images, labels = fashion_mnist["test"]
    for i in range(20):
        rng = np.random.default_rng(i)
        scene = scenes.make_scene(images, labels, rng, max_iou=0.0, max_objects=3)
        assert np.triu(scenes.box_iou(scene.boxes, scene.boxes), 1).max() == 0


def test_garments_are_scaled(test_scenes):
    sides = np.concatenate([s.boxes[:, 2:] - s.boxes[:, :2] for s in test_scenes])
    assert sides.max() > 45 and sides.min() < 20 and sides.max() <= 56


def test_bad_scales():
    with pytest.raises(ValueError, match="max_scale"):
        scenes.make_scene(
            np.zeros((1, 28, 28), np.uint8), np.zeros(1), np.random.default_rng(0),
            size=32, max_scale=40,
        )


def test_resize_matches_tensorflow(fashion_mnist):
    image = fashion_mnist["test"][0][0]
    for side in (20, 37, 56):
        expected = tf.image.resize(image[..., None].astype(np.float32), (side, side))
        np.testing.assert_allclose(
            scenes.resize_bilinear(image, side), expected[..., 0], atol=1e-3
        )


# --- FashionMNISTScenes ---


def write_idx(path, magic, array):
    dims = struct.pack(f">{array.ndim}I", *array.shape)
    with gzip.open(path, "wb", compresslevel=1) as file:
        file.write(struct.pack(">i", magic) + dims + array.tobytes())


@pytest.fixture(scope="module")
def marked_fashion_mnist(tmp_path_factory):
    """Fashion-MNIST files whose training images are all 100, test images all 200."""
    folder = tmp_path_factory.mktemp("marked")
    for prefix, size, value in (("train", 60_000, 100), ("t10k", 10_000, 200)):
        images = np.full((size, 28, 28), value, np.uint8)
        labels = (np.arange(size) % 10).astype(np.uint8)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", 2051, images)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", 2049, labels)
    return folder


@pytest.mark.parametrize(
    "split, value", [("train", 100), ("validation", 200), ("test", 200)]
)
def test_splits_take_garments_from_their_own_split(marked_fashion_mnist, split, value):
    dataset = configured(
        FashionMNISTScenes(), data_dir=str(marked_fashion_mnist), num_train=30,
        num_test=30,
    )
    data = getattr(dataset, split)()[0].map(lambda element: element["image"])
    images = next(iter(data.batch(30))).numpy()
    assert set(np.unique(images).tolist()) == {0, value}


def test_component_splits_shapes_and_sizes():
    dataset = configured(FashionMNISTScenes(), num_train=40, num_test=12)
    spec = {
        "image": tf.TensorSpec((96, 96, 1), tf.uint8),
        "mask": tf.TensorSpec((96, 96), tf.uint8),
        "boxes": tf.TensorSpec((None, 4), tf.float32),
        "labels": tf.TensorSpec((None,), tf.int64),
    }
    for split, size in (("train", 40), ("validation", 12), ("test", 12)):
        data, count = getattr(dataset, split)()
        assert count == size == dataset.num_examples(split)
        assert data.cardinality().numpy() == size
        assert data.element_spec == spec
    elements = list(dataset.test()[0])
    assert len(elements) == 12
    for index in (0, 11):
        scene = dataset.scene("test", index)
        for key in spec:
            np.testing.assert_array_equal(elements[index][key], getattr(scene, key))
    with pytest.raises(ValueError, match="validation"):
        dataset.num_examples("dev")


def test_component_metadata_and_registration():
    dataset = configured(FashionMNISTScenes())
    assert dataset.num_examples("train") == 20_000
    assert dataset.num_examples("test") == 2_000
    assert dataset.num_classes == 11 and dataset.input_shape == (96, 96, 1)
    assert dataset.class_names[0] == "background"
    assert dataset.class_names[1] == "T-shirt/top"
    assert dataset.class_names[10] == "Ankle boot"
    assert get_dataset("FashionMNISTScenes") is FashionMNISTScenes
    other = configured(FashionMNISTScenes(), seed=1)
    assert not np.array_equal(dataset.scene("train", 0).image, other.scene("train", 0).image)


def test_component_without_the_data(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="ZOO_DATA_DIR"):
        configured(FashionMNISTScenes(), data_dir=str(tmp_path)).train()
