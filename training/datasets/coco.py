"""COCO 2017 object detection from TensorFlow Datasets, letterboxed for the detectors."""

from typing import Dict, Tuple

import tensorflow as tf
from zookeeper import Field, component

from zoo import preprocessing
from zoo.training.datasets.base import example_seed, flip_with_boxes
from zoo.training.datasets.registry import register_dataset
from zoo.training.datasets.tfds_wrappers import _DenseTFDS

COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase",
    "scissors", "teddy bear", "hair drier", "toothbrush",
)


@register_dataset
@component
class CocoDetection(_DenseTFDS):
    """COCO 2017 object detection from tensorflow-datasets (`coco/2017`: 118,287
    training and 5,000 validation images, 80 classes), for `TrainGroupNetFCOS`.

    Images are letterboxed to `image_size` squares: scaled so that the longer side
    fits, then padded right and below with the mean pixel. Crowd annotations are
    dropped. Training flips at random. tensorflow-datasets downloads COCO itself
    (`dataset.download=True`, about 25 GB) or reads it prepared in `dataset.data_dir`.
    """

    name = Field("coco/2017:1.*.*")
    train_split = Field("train")
    validation_split = Field("validation")
    test_split = Field("validation")

    class_names = COCO_CLASSES
    num_detection_classes = len(COCO_CLASSES)
    weights_tag = "coco"

    def detection_pair(self, data: Dict[str, tf.Tensor], training: bool) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """(letterboxed image float32 0-255, boxes in its pixels (n, 4), class ids (n,))."""
        image = tf.cast(data["image"], tf.float32)
        objects = data["objects"]
        keep = tf.logical_not(objects["is_crowd"])
        hw = tf.cast(tf.shape(image)[:2], tf.float32)
        boxes = tf.boolean_mask(objects["bbox"], keep) * tf.concat([hw, hw], 0)
        classes = tf.cast(tf.boolean_mask(objects["label"], keep), tf.int32)
        scale = self.image_size / tf.reduce_max(hw)
        size = tf.cast(tf.round(hw * scale), tf.int32)
        image = tf.image.resize(image, size)
        mean = tf.constant(preprocessing.IMAGENET_MEAN_RGB, tf.float32)
        image = tf.image.pad_to_bounding_box(image - mean, 0, 0, self.image_size, self.image_size) + mean
        boxes = boxes * scale
        if training:
            image, boxes = flip_with_boxes(image, boxes, example_seed(data))
        return tf.ensure_shape(image, self.input_shape), boxes, classes
