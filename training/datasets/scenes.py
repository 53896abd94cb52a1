"""Fashion-MNIST scenes: a small, offline dataset for binary semantic segmentation
and object detection.

A scene is a black square canvas (default 96x96, one channel) with 2 to 5 real
Fashion-MNIST garments pasted at random positions and scales. It comes with

- a per-pixel class mask: 0 = background, `1 + Fashion-MNIST class` (1 to 10)
  where a garment's silhouette is visible;
- one box per garment, `[ymin, xmin, ymax, xmax]` in pixels, the tight box of
  its visible silhouette; pixel (y, x) covers [y, y + 1) x [x, x + 1), so
  `ymax` and `xmax` are one past the last row / column and the box's height is
  `ymax - ymin`;
- the box labels, in the mask's numbering (1 to 10), and the index of each
  garment's source image in the Fashion-MNIST split it was taken from.

A garment's silhouette is the set of pixels of its resized image brighter than
`SILHOUETTE_THRESHOLD` (16 of 255). Only silhouette pixels are pasted, so the
image is 0 exactly where the mask is background. Garments are pasted in order
and a later one covers an earlier one, in the image and in the mask.

Every scene is a pure function of its random generator and the source images:
`scene(images, labels, seed, split, index)` makes scene `index` of a split from
`np.random.default_rng([seed, SPLIT_IDS[split], index])`, so any scene can be
made on its own, in any order, in any process.

`FashionMNISTScenes` is the dataset component that serves these scenes.
"""

from typing import Dict, NamedTuple, Tuple

import numpy as np
import tensorflow as tf
from zookeeper import Field, component

from zoo.training.datasets.base import example_seed, flip_together, flip_with_boxes
from zoo.training.datasets.fashion_mnist import (
    FASHION_MNIST_CLASSES,
    FashionMNISTFiles,
    load_fashion_mnist,
)
from zoo.training.datasets.registry import register_dataset

# A resized garment's pixels brighter than this (of 255) are its silhouette.
SILHOUETTE_THRESHOLD = 16
# The second entropy word of each split's random generators; "validation" is
# the test split.
SPLIT_IDS = {"train": 0, "test": 1, "validation": 1}


class Scene(NamedTuple):
    """One scene (unpacks as `image, mask, boxes, labels, sources`).

    Attributes:
        image: uint8 (size, size, 1), values 0-255.
        mask: uint8 (size, size), 0 = background, 1 to 10 = `1 + class`.
        boxes: float32 (n, 4), `[ymin, xmin, ymax, xmax]` in pixels, in pasting
            order (a later box's garment is on top).
        labels: int64 (n,), the boxes' classes, 1 to 10 as in `mask`.
        sources: int64 (n,), each garment's index in the source images.
    """

    image: np.ndarray
    mask: np.ndarray
    boxes: np.ndarray
    labels: np.ndarray
    sources: np.ndarray


def resize_bilinear(image: np.ndarray, size: int) -> np.ndarray:
    """Resizes a square grayscale image with bilinear interpolation (half-pixel
    centers, as `tf.image.resize`).

    Arguments:
        image: a (h, h) array.
        size: the side of the result.

    Returns:
        A float32 (size, size) array.
    """
    side = image.shape[0]
    coords = np.clip((np.arange(size) + 0.5) * side / size - 0.5, 0, side - 1)
    low = np.floor(coords).astype(np.int64)
    high = np.minimum(low + 1, side - 1)
    weight = (coords - low).astype(np.float32)
    image = image.astype(np.float32)
    rows = image[low] * (1 - weight[:, None]) + image[high] * weight[:, None]
    return rows[:, low] * (1 - weight) + rows[:, high] * weight


def box_iou(boxes1: np.ndarray, boxes2: np.ndarray) -> np.ndarray:
    """The IoU of every `[ymin, xmin, ymax, xmax]` box of `boxes1` (n, 4) with
    every box of `boxes2` (m, 4), as an (n, m) array."""
    boxes1, boxes2 = boxes1[:, None], boxes2[None]
    top_left = np.maximum(boxes1[..., :2], boxes2[..., :2])
    bottom_right = np.minimum(boxes1[..., 2:], boxes2[..., 2:])
    intersection = np.prod(np.clip(bottom_right - top_left, 0, None), axis=-1)
    area1 = np.prod(boxes1[..., 2:] - boxes1[..., :2], axis=-1)
    area2 = np.prod(boxes2[..., 2:] - boxes2[..., :2], axis=-1)
    return intersection / (area1 + area2 - intersection)


def tight_box(pixels: np.ndarray) -> Tuple[np.ndarray, int]:
    """The tight `[ymin, xmin, ymax, xmax]` box of the true pixels of a 2-D array
    (all zeros if there are none) and their number."""
    rows, cols = np.flatnonzero(pixels.any(1)), np.flatnonzero(pixels.any(0))
    if not len(rows):
        return np.zeros(4, np.float32), 0
    box = [rows[0], cols[0], rows[-1] + 1, cols[-1] + 1]
    return np.array(box, np.float32), int(np.count_nonzero(pixels))


def make_scene(
    images: np.ndarray,
    labels: np.ndarray,
    rng: np.random.Generator,
    size: int = 96,
    min_objects: int = 2,
    max_objects: int = 5,
    min_scale: int = 20,
    max_scale: int = 56,
    max_iou: float = 0.2,
    min_visible: int = 32,
    max_tries: int = 50,
) -> Scene:
    """Pastes random Fashion-MNIST garments on a black canvas.

    The scene aims for `n` garments, `n` drawn uniformly from `min_objects` to
    `max_objects`. Each placement draws a source image, a side (uniform from
    `min_scale` to `max_scale` pixels; the 28x28 image is resized bilinearly)
    and a position fully inside the canvas. A placement is rejected, and
    another one drawn, when its silhouette's box has an IoU above `max_iou`
    with a garment's box already there, or when after pasting it two
    garments' visible-silhouette boxes would have an IoU above `max_iou`
    (occlusion shrinks boxes), or a garment would keep fewer than
    `min_visible` visible silhouette pixels (instead of dropping a garment
    covered too much, the placement covering it is not made). After
    `max_tries` rejected placements in a row the scene stops with fewer
    garments (with the defaults, scenes of fewer than 2 practically never
    happen).

    So in every scene: the IoU of any two boxes is at most `max_iou`, every
    garment has at least `min_visible` visible pixels, and every box is the
    tight box of its garment's visible pixels in the mask.

    Arguments:
        images: uint8 (N, 28, 28) source images, values 0-255.
        labels: (N,) their classes, 0 to 9.
        rng: the random generator; the scene depends on nothing else.
        size: the side of the square canvas.
        min_objects: the least number of garments aimed for.
        max_objects: the most garments in a scene.
        min_scale: the least side of a pasted garment, in pixels.
        max_scale: the largest side of a pasted garment (at most `size`).
        max_iou: the largest IoU allowed between two garments' boxes.
        min_visible: the least number of visible pixels of a garment.
        max_tries: rejected placements in a row after which the scene stops.

    Returns:
        A `Scene`: image, mask, boxes, labels (1 to 10) and source indices.

    Raises:
        ValueError: if the scales are not `0 < min_scale <= max_scale <= size`.
    """
    if not 0 < min_scale <= max_scale <= size:
        raise ValueError(
            f"Need 0 < min_scale <= max_scale <= size, got {min_scale}, "
            f"{max_scale}, {size}."
        )
    target = int(rng.integers(min_objects, max_objects + 1))
    image = np.zeros((size, size), np.uint8)
    owner = np.full((size, size), -1, np.int64)  # Which garment each pixel shows.
    boxes = np.zeros((0, 4), np.float32)  # The garments' visible boxes.
    sources = []
    tries = 0
    while len(sources) < target and tries < max_tries:
        tries += 1
        source = int(rng.integers(len(images)))
        side = int(rng.integers(min_scale, max_scale + 1))
        y, x = (int(v) for v in rng.integers(0, size - side + 1, size=2))
        garment = np.round(resize_bilinear(images[source], side)).astype(np.uint8)
        silhouette = garment > SILHOUETTE_THRESHOLD
        box, pixels = tight_box(silhouette)
        box += np.array([y, x, y, x], np.float32)
        if pixels < min_visible or box_iou(box[None], boxes).max(initial=0) > max_iou:
            continue
        # Paste it on a copy of the owner map; the garments it overlaps shrink.
        new_owner = owner.copy()
        new_owner[y : y + side, x : x + side][silhouette] = len(sources)
        new_boxes = np.concatenate([boxes, box[None]])
        ok = True
        for k in np.flatnonzero(box_iou(box[None], boxes)[0] > 0):
            ymin, xmin, ymax, xmax = boxes[k].astype(int)
            new_boxes[k], visible = tight_box(new_owner[ymin:ymax, xmin:xmax] == k)
            new_boxes[k] += np.array([ymin, xmin, ymin, xmin], np.float32)
            ok = ok and visible >= min_visible
        if not ok or np.triu(box_iou(new_boxes, new_boxes), 1).max() > max_iou:
            continue
        tries = 0
        owner, boxes = new_owner, new_boxes
        image[y : y + side, x : x + side][silhouette] = garment[silhouette]
        sources.append(source)
    sources = np.array(sources, np.int64)
    box_labels = labels[sources].astype(np.int64) + 1
    class_of_owner = np.concatenate([box_labels, [0]])  # owner -1 -> background.
    mask = class_of_owner[owner].astype(np.uint8)
    return Scene(image[..., np.newaxis], mask, boxes, box_labels, sources)


def scene(
    images: np.ndarray, labels: np.ndarray, seed: int, split: str, index: int, **kwargs
) -> Scene:
    """Scene `index` of a split: `make_scene` with the generator
    `np.random.default_rng([seed, SPLIT_IDS[split], index])`.

    Arguments:
        images: the split's uint8 (N, 28, 28) Fashion-MNIST images.
        labels: the split's (N,) labels.
        seed: the dataset's seed (non-negative).
        split: "train", "validation" or "test" ("validation" is "test").
        index: the scene's index in the split (non-negative).
        **kwargs: passed to `make_scene`.

    Returns:
        The `Scene`.

    Raises:
        KeyError: for an unknown split.
    """
    rng = np.random.default_rng([seed, SPLIT_IDS[split], index])
    return make_scene(images, labels, rng, **kwargs)


@register_dataset
@component
class FashionMNISTScenes(FashionMNISTFiles):
    """Scenes of 2 to 5 Fashion-MNIST garments on a black 96x96x1 canvas, for
    semantic segmentation and object detection (see the module docstring).

    Elements are `{"image": uint8 (96, 96, 1), "mask": uint8 (96, 96), "boxes":
    float32 (n, 4), "labels": int64 (n,)}`: mask values 0 = background and
    `1 + Fashion-MNIST class` (1 to 10); boxes `[ymin, xmin, ymax, xmax]` in
    pixels (max exclusive), one per garment, in pasting order; labels in the
    mask's numbering, so `class_names[label]` names a box too.

    The "train" scenes use only Fashion-MNIST's 60,000 training images, the
    "test" scenes (and "validation", the same scenes) only its 10,000 test
    images. Scenes are made on the fly (about 2 ms each, on `map` workers),
    deterministically: scene `i` of a split depends only on the field `seed`,
    the split and `i`. Nothing is shuffled here. The IDX files are looked for
    as by `FashionMNIST`.
    """

    seed: int = Field(0)
    num_train: int = Field(20_000)
    num_test: int = Field(2_000)

    input_shape = (96, 96, 1)
    class_names = ("background", *FASHION_MNIST_CLASSES)
    weights_tag = "fashion_mnist_scenes"
    decoders = None  # the scenes are made decoded
    num_detection_classes = len(FASHION_MNIST_CLASSES)  # boxes have no background class

    def num_examples(self, split: str) -> int:
        """The number of scenes of "train", "validation" or "test"."""
        if self._file_split(split) == "train":
            return self.num_train
        return self.num_test

    def scene(self, split: str, index: int) -> Scene:
        """Scene `index` of a split as numpy arrays, with its garments' indices
        in the Fashion-MNIST split (`sources`).

        Arguments:
            split: "train", "validation" or "test".
            index: the scene's index, from 0.

        Returns:
            The `Scene`.

        Raises:
            ValueError: for an unknown split.
            DatasetNotFoundError: if the Fashion-MNIST files are missing.
        """
        file_split = self._file_split(split)
        images, labels = load_fashion_mnist(self.folder)[file_split]
        size = self.input_shape[0]
        return scene(images, labels, self.seed, split, index, size=size)

    def detection_pair(self, data: Dict[str, tf.Tensor], training: bool) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """(image float32 0-255, boxes float32 (n, 4), class ids int32 (n,) from 0: the
        garment's Fashion-MNIST class) of a scene; training flips the image and its
        boxes at random."""
        image, boxes = tf.cast(data["image"], tf.float32), tf.cast(data["boxes"], tf.float32)
        classes = tf.cast(data["labels"], tf.int32) - 1
        if training:
            image, boxes = flip_with_boxes(image, boxes, example_seed(data))
        return image, boxes, classes

    def segmentation_pair(self, data: Dict[str, tf.Tensor], training: bool) -> Tuple[tf.Tensor, tf.Tensor]:
        """(image float32 0-255, mask int32) of a scene; training flips both at random."""
        image, mask = tf.cast(data["image"], tf.float32), tf.cast(data["mask"], tf.int32)
        if training:
            return flip_together(image, mask, example_seed(data))
        return image, mask

    def _split(self, split: str) -> Tuple[tf.data.Dataset, int]:
        count = self.num_examples(split)
        load_fashion_mnist(self.folder)  # Raise here if the files are missing.

        def generate(index: np.ndarray):
            scene = self.scene(split, int(index))
            return scene.image, scene.mask, scene.boxes, scene.labels

        def element(index: tf.Tensor) -> Dict[str, tf.Tensor]:
            types = (tf.uint8, tf.uint8, tf.float32, tf.int64)
            image, mask, boxes, labels = tf.numpy_function(
                generate, [index], types, stateful=False
            )
            return {
                "image": tf.ensure_shape(image, self.input_shape),
                "mask": tf.ensure_shape(mask, self.input_shape[:2]),
                "boxes": tf.ensure_shape(boxes, (None, 4)),
                "labels": tf.ensure_shape(labels, (None,)),
            }

        dataset = tf.data.Dataset.range(count).map(
            element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
        return dataset, count
