"""ImageNet (ILSVRC2012) from TensorFlow Datasets, prepared from the manually
downloaded tars."""

import os
from typing import Dict, Optional

import tensorflow as tf
import tensorflow_datasets as tfds
from zookeeper import Field, component

from zoo import preprocessing
from zoo.training.datasets.base import example_seed
from zoo.training.datasets.registry import register_dataset
from zoo.training.datasets.tfds_wrappers import _TFDSImageDataset


@register_dataset
@component
class ImageNet(_TFDSImageDataset):
    """ILSVRC2012 (ImageNet) from TensorFlow Datasets, 224x224x3, 1000 classes.

    ImageNet cannot be downloaded automatically: download ILSVRC2012_img_train.tar
    and ILSVRC2012_img_val.tar from https://image-net.org and set the field
    `manual_dir` (default `$IMAGENET_MANUAL_DIR`) to their folder; the first load
    then prepares the dataset in `data_dir`. Images stay JPEG-encoded
    (`decoders`) and are decoded and cropped by `preprocess`: a random crop and
    flip for training, the center crop for evaluation.
    """

    name = Field("imagenet2012:5.*.*")
    train_split = Field("train")
    validation_split = Field("validation")
    test_split = Field("validation")
    manual_dir: Optional[str] = Field(lambda: os.environ.get("IMAGENET_MANUAL_DIR"))

    input_shape = (preprocessing.IMAGENET_SIZE, preprocessing.IMAGENET_SIZE, 3)
    weights_tag = "imagenet"

    @property
    def decoders(self) -> Dict[str, tfds.decode.Decoder]:
        return {"image": tfds.decode.SkipDecoding()}

    def _not_found_hint(self) -> str:
        if self.manual_dir:
            return (
                f"Check that {self.manual_dir} holds ILSVRC2012_img_train.tar and "
                "ILSVRC2012_img_val.tar."
            )
        return (
            "ImageNet cannot be downloaded automatically: download "
            "ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar from "
            "https://image-net.org and pass `dataset.manual_dir=/path/to/ILSVRC2012 "
            "tars` (or `export IMAGENET_MANUAL_DIR=...`) to prepare the dataset."
        )

    def preprocess(self, data: Dict[str, tf.Tensor], training: bool) -> tf.Tensor:
        """The model input for one element (JPEG bytes or a decoded image).

        Arguments:
            data: one element of the dataset, `{"image": ..., "label": ...}`.
            training: whether to apply the training augmentation (random crop and
                flip; only done when the field `augment` is true too).

        Returns:
            A float32 tensor of shape (224, 224, 3), values in [0, 255].
        """
        image = data["image"]
        size = preprocessing.IMAGENET_SIZE
        augment = training and self.augment
        encoded = image.dtype == tf.string  # The decoders skip decoding.
        if augment:
            crop = preprocessing.decode_and_random_crop if encoded else preprocessing.random_resized_crop
            crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(example_seed(data), 2))
            image = tf.image.stateless_random_flip_left_right(crop(image, size, crop_seed), flip_seed)
        else:
            crop = preprocessing.decode_and_center_crop if encoded else preprocessing.center_crop
            image = crop(image, size)
        return tf.ensure_shape(image, self.input_shape)
