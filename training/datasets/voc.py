"""PASCAL VOC 2012 semantic segmentation as a TensorFlow Datasets builder.

TensorFlow Datasets has VOC's detection annotations (`voc/2012`) but not its
segmentation masks; this builder adds them: `voc_segmentation2012`, the 1,464 "train"
and 1,449 "validation" images of `ImageSets/Segmentation`, each with its class mask
(`SegmentationClass/*.png`: 0 background, 1-20 the classes, 255 the unlabelled
boundaries).

The data cannot be downloaded by the builder: download `VOCtrainval_11-May-2012.tar`
from http://host.robots.ox.ac.uk/pascal/VOC/voc2012/ and pass its folder as the manual
directory (`zoo TrainGroupNetFCN dataset=VocSegmentation dataset.manual_dir=/path`);
an already extracted `VOCdevkit/VOC2012` folder there is used as it is.

`VocSegmentation` is the dataset component that reads it.
"""
import os
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from zookeeper import Field, component

from zoo import preprocessing
from zoo.training.datasets.base import IGNORE_LABEL, example_seed, flip_together
from zoo.training.datasets.registry import register_dataset
from zoo.training.datasets.tfds_wrappers import _DenseTFDS

VOC_CLASSES = (
    "background", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair",
    "cow", "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa",
    "train", "tvmonitor",
)
TAR = "VOCtrainval_11-May-2012.tar"


class VocSegmentation2012(tfds.core.GeneratorBasedBuilder):
    """PASCAL VOC 2012 semantic segmentation (train 1,464, validation 1,449 images)."""

    VERSION = tfds.core.Version("1.0.0")
    RELEASE_NOTES = {"1.0.0": "Images and class masks of ImageSets/Segmentation."}
    MANUAL_DOWNLOAD_INSTRUCTIONS = (
        f"Download {TAR} from http://host.robots.ox.ac.uk/pascal/VOC/voc2012/ and place it (or "
        "its extracted VOCdevkit folder) in the manual directory."
    )

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description="PASCAL VOC 2012 semantic segmentation: 20 classes and background; "
                        "mask value 255 marks unlabelled boundary pixels.",
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(None, None, 3)),
                "mask": tfds.features.Image(shape=(None, None, 1)),
                "image/filename": tfds.features.Text(),
            }),
            supervised_keys=("image", "mask"),
            homepage="http://host.robots.ox.ac.uk/pascal/VOC/voc2012/",
        )

    def _split_generators(self, dl_manager):
        root = voc_root(Path(dl_manager.manual_dir), dl_manager)
        return {
            "train": self._generate_examples(root, "train"),
            "validation": self._generate_examples(root, "val"),
        }

    def _generate_examples(self, root: Path, split: str):
        from PIL import Image

        ids = (root / "ImageSets" / "Segmentation" / f"{split}.txt").read_text().split()
        for name in ids:
            with Image.open(root / "SegmentationClass" / f"{name}.png") as png:
                mask = np.asarray(png)  # palette indices: the class ids
            if mask.ndim != 2:
                raise ValueError(f"{name}.png is not a palette (class index) image: shape {mask.shape}.")
            yield name, {
                "image": str(root / "JPEGImages" / f"{name}.jpg"),
                "mask": mask[..., np.newaxis].astype(np.uint8),
                "image/filename": name,
            }


def voc_root(manual_dir: Path, dl_manager=None) -> Path:
    """The VOC2012 folder in `manual_dir`: an extracted VOCdevkit, else the extracted tar.

    Raises:
        FileNotFoundError: neither is there, naming what to download.
    """
    for root in (manual_dir / "VOCdevkit" / "VOC2012", manual_dir / "VOC2012"):
        if (root / "ImageSets" / "Segmentation").is_dir():
            return root
    if (manual_dir / TAR).exists() and dl_manager is not None:
        return Path(dl_manager.extract(manual_dir / TAR)) / "VOCdevkit" / "VOC2012"
    raise FileNotFoundError(
        f"No PASCAL VOC 2012 in {manual_dir}: put {TAR} (from "
        "http://host.robots.ox.ac.uk/pascal/VOC/voc2012/) or its extracted VOCdevkit folder there."
    )


@register_dataset
@component
class VocSegmentation(_DenseTFDS):
    """PASCAL VOC 2012 semantic segmentation (21 classes with background; 255 marks
    unlabelled boundaries), from the `voc_segmentation2012` builder
    (`VocSegmentation2012`), prepared from the manually downloaded tar (field
    `manual_dir`, default `$VOC_MANUAL_DIR`).

    Pairs are `image_size` squares (default 512, so that every VOC image, at most
    500 pixels a side, is evaluated whole; the paper trains on 480): training scales
    an image and its mask by a random factor in [0.5, 2], pads (image with the mean
    pixel, mask with 255), crops at random and flips; evaluation pads and takes the
    center crop.
    """

    name = Field("voc_segmentation2012:1.*.*")
    train_split = Field("train")
    validation_split = Field("validation")
    test_split = Field("validation")
    manual_dir: Optional[str] = Field(lambda: os.environ.get("VOC_MANUAL_DIR"))
    augment: bool = Field(True)

    class_names = VOC_CLASSES
    weights_tag = "voc2012"

    def _not_found_hint(self) -> str:
        return VocSegmentation2012.MANUAL_DOWNLOAD_INSTRUCTIONS + (
            " Then pass `dataset.manual_dir=/that/folder` (or `export VOC_MANUAL_DIR=...`)."
        )

    def segmentation_pair(self, data: Dict[str, tf.Tensor], training: bool) -> Tuple[tf.Tensor, tf.Tensor]:
        """(image float32 0-255, mask int32) of `image_size`, augmented when training."""
        image, mask = tf.cast(data["image"], tf.float32), tf.cast(data["mask"][..., 0], tf.int32)
        augment = training and self.augment
        if augment:
            scale_seed, crop_seed, flip_seed = tf.unstack(tf.random.experimental.stateless_split(example_seed(data), 3))
            scale = tf.random.stateless_uniform((), scale_seed, 0.5, 2.0)
            size = tf.cast(tf.round(tf.cast(tf.shape(image)[:2], tf.float32) * scale), tf.int32)
            image = tf.image.resize(image, size)
            mask = tf.image.resize(mask[..., None], size, method="nearest")[..., 0]
        # Pad to at least image_size: the image with the mean pixel, the mask with 255.
        crop = self.image_size
        shape = tf.shape(image)
        pad_h, pad_w = tf.maximum(crop - shape[0], 0), tf.maximum(crop - shape[1], 0)
        paddings = [[pad_h // 2, pad_h - pad_h // 2], [pad_w // 2, pad_w - pad_w // 2]]
        mean = tf.constant(preprocessing.IMAGENET_MEAN_RGB, tf.float32)
        image = tf.pad(image - mean, paddings + [[0, 0]]) + mean
        mask = tf.pad(mask, paddings, constant_values=IGNORE_LABEL)
        both = tf.concat([image, tf.cast(mask, tf.float32)[..., None]], -1)
        if augment:
            both = tf.image.stateless_random_crop(both, (crop, crop, 4), crop_seed)
        else:
            shape = tf.shape(both)
            both = tf.image.crop_to_bounding_box(both, (shape[0] - crop) // 2, (shape[1] - crop) // 2, crop, crop)
        image, mask = both[..., :3], tf.cast(both[..., 3], tf.int32)
        if augment:
            image, mask = flip_together(image, mask, flip_seed)
        return tf.ensure_shape(image, self.input_shape), tf.ensure_shape(mask, self.input_shape[:2])
