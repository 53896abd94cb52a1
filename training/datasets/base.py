"""What the dataset components share: their errors, the augmentation of an image
together with its mask or boxes, and `ImageDataset`, the base of the image
classification datasets."""

from typing import Dict, Optional, Tuple

import tensorflow as tf
import tensorflow_datasets as tfds
from zookeeper import Field
from zookeeper.tf import Dataset

from zoo import preprocessing
from zoo.io import ZooError
from zoo.kinds import IGNORE_LABEL  # noqa: F401  (the masks' label that counts nowhere)


class DatasetNotFoundError(ZooError, FileNotFoundError):
    """A dataset is not on this machine; the message says how to get it."""


class CorruptDatasetError(ZooError):
    """A dataset file is unreadable or does not hold what it should."""


# The key under which `batches` gives each training example its augmentation seed.
SEED = "augment_seed"


def example_seed(data: Dict[str, tf.Tensor]) -> tf.Tensor:
    """The seed (shape (2,)) of the stateless random ops that augment one example.

    `evaluation.batches` adds it to each training example (the run's seed and the
    example's position in the stream; split it for several ops), so an example is
    augmented alike in every run, process and worker, whatever order a parallel map
    runs in; stateful random ops inside a parallel map are not reproducible. An
    example without a seed (a dataset used by hand) gets a random one.
    """
    seed = data.get(SEED)
    return preprocessing.random_seed() if seed is None else seed


def random_pad_crop_flip(
    image: tf.Tensor, padding: int, shape: Tuple[int, int, int], seed: tf.Tensor
) -> tf.Tensor:
    """Training augmentation for small images: random horizontal flip, then zero
    padding on every side and a random crop back to the original size.

    Arguments:
        image: an image tensor of shape `shape`.
        padding: how many pixels of zeros to add on each side.
        shape: the (height, width, channels) of the image and of the result.
        seed: the stateless seed, shape (2,) (`example_seed`).

    Returns:
        The augmented image, same shape and dtype as `image`.
    """
    flip, crop = tf.unstack(tf.random.experimental.stateless_split(seed, 2))
    image = tf.image.stateless_random_flip_left_right(image, flip)
    image = tf.pad(image, [[padding, padding], [padding, padding], [0, 0]])
    return tf.image.stateless_random_crop(image, shape, crop)


def coin(seed: tf.Tensor) -> tf.Tensor:
    """A fair coin of a stateless seed: whether to flip."""
    return tf.random.stateless_uniform((), seed) < 0.5


def flip_together(image: tf.Tensor, mask: tf.Tensor, seed: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """A random horizontal flip of an image (H, W, C) and its mask (H, W), the same for
    both, decided by a stateless seed (`example_seed`)."""
    flip = coin(seed)
    return (tf.cond(flip, lambda: tf.reverse(image, [1]), lambda: image),
            tf.cond(flip, lambda: tf.reverse(mask, [1]), lambda: mask))


def flip_with_boxes(image: tf.Tensor, boxes: tf.Tensor, seed: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """A random horizontal flip of an image (H, W, C) and its boxes `[ymin, xmin, ymax,
    xmax]` in pixels, the same for both, decided by a stateless seed (`example_seed`)."""
    width = tf.cast(tf.shape(image)[1], tf.float32)
    flip = coin(seed)
    flipped = tf.stack([boxes[:, 0], width - boxes[:, 3], boxes[:, 2], width - boxes[:, 1]], 1)
    return (tf.cond(flip, lambda: tf.reverse(image, [1]), lambda: image),
            tf.cond(flip, lambda: flipped, lambda: boxes))


class ImageDataset(Dataset):
    """What the training tasks need from a dataset beyond zookeeper's `Dataset`.

    Subclasses set `input_shape` and `augment_padding` (class attributes).
    """

    # Whether `preprocess(data, training=True)` augments the images.
    augment: bool = Field(True)

    input_shape: Tuple[int, int, int]
    augment_padding: int
    # The default tag of checkpoints trained on it (`zoo weights publish`).
    weights_tag: str

    @property
    def decoders(self) -> Optional[Dict[str, tfds.decode.Decoder]]:
        """The tfds decoders to pass to `train()`, `validation()` and `test()`."""
        return None

    def preprocess(self, data: Dict[str, tf.Tensor], training: bool) -> tf.Tensor:
        """The model input for one element.

        Arguments:
            data: one element of the dataset, `{"image": ..., "label": ...}`.
            training: whether to apply the training augmentation (only done when
                the field `augment` is true too).

        Returns:
            A float32 tensor of shape `input_shape`, values in [0, 255].
        """
        image = tf.cast(data["image"], tf.float32)
        if training and self.augment:
            image = random_pad_crop_flip(image, self.augment_padding, self.input_shape, example_seed(data))
        return tf.ensure_shape(image, self.input_shape)
