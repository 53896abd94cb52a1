"""What the dataset components share: their errors, the augmentation of an image
together with its mask or boxes, and `ImageDataset`, the base of the image
classification datasets."""

from typing import Dict, Optional, Tuple

import tensorflow as tf
import tensorflow_datasets as tfds
from zookeeper import Field
from zookeeper.tf import Dataset

from zoo.io import ZooError
from zoo.kinds import IGNORE_LABEL  # noqa: F401  (the masks' label that counts nowhere)


class DatasetNotFoundError(ZooError, FileNotFoundError):
    """A dataset is not on this machine; the message says how to get it."""


class CorruptDatasetError(ZooError):
    """A dataset file is unreadable or does not hold what it should."""


def random_pad_crop_flip(
    image: tf.Tensor, padding: int, shape: Tuple[int, int, int]
) -> tf.Tensor:
    """Training augmentation for small images: random horizontal flip, then zero
    padding on every side and a random crop back to the original size.

    Arguments:
        image: an image tensor of shape `shape`.
        padding: how many pixels of zeros to add on each side.
        shape: the (height, width, channels) of the image and of the result.

    Returns:
        The augmented image, same shape and dtype as `image`.
    """
    image = tf.image.random_flip_left_right(image)
    image = tf.pad(image, [[padding, padding], [padding, padding], [0, 0]])
    return tf.image.random_crop(image, shape)




def flip_together(image: tf.Tensor, mask: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """A random horizontal flip of an image (H, W, C) and its mask (H, W), the same for both."""
    flip = tf.random.uniform(()) < 0.5
    return (tf.cond(flip, lambda: tf.reverse(image, [1]), lambda: image),
            tf.cond(flip, lambda: tf.reverse(mask, [1]), lambda: mask))


def flip_with_boxes(image: tf.Tensor, boxes: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """A random horizontal flip of an image (H, W, C) and its boxes `[ymin, xmin, ymax,
    xmax]` in pixels, the same for both."""
    width = tf.cast(tf.shape(image)[1], tf.float32)
    flip = tf.random.uniform(()) < 0.5
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
            image = random_pad_crop_flip(image, self.augment_padding, self.input_shape)
        return tf.ensure_shape(image, self.input_shape)
