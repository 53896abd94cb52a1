"""FCOS heads' training targets, loss and decoding (`zoo.GroupNetFCOS`; its mAP is `zoo.kinds.Detection`).

Targets (FCOS, Tian et al. 2019, with center sampling): a location is positive for a
box when it lies inside the box and within `radius` strides of its center, and the
box's largest distance max(l, t, r, b) from the location is in the location's level
range; of several such boxes it takes the smallest. Its targets are the class, the
distances l, t, r, b in pixels and the centerness sqrt(min(l, r) / max(l, r) *
min(t, b) / max(t, b)). Packed per location as (class or -1, l, t, r, b, centerness).

Loss: sigmoid focal loss over every location and class (alpha 0.25, gamma 2), plus GIoU
loss of the positives' boxes weighted by their centerness target, plus binary
cross-entropy of the positives' centerness; the focal and centerness terms are divided
by the number of positives in the batch, the GIoU term by the sum of the weights.
"""
from typing import Dict, Tuple

import numpy as np
import tensorflow as tf

from zoo.models.groupnet_fcos import FCOSDecode, LevelScale, level_geometry


def model_geometry(model: tf.keras.Model) -> Tuple[Tuple[int, int], Tuple[int, ...]]:
    """(input height and width, level strides) of a `GroupNetFCOS` model.

    Raises:
        ValueError: the model is not an FCOS detector (it has no `LevelScale` layers).
    """
    strides = tuple(layer.stride for layer in model.layers if isinstance(layer, LevelScale))
    if not strides:
        raise ValueError(f"{model.name} is not an FCOS detector (zoo.GroupNetFCOS).")
    return tuple(model.input_shape[1:3]), strides


def fcos_targets(boxes: tf.Tensor, classes: tf.Tensor, locations: np.ndarray, strides: np.ndarray,
                 ranges: np.ndarray, radius: float = 1.5) -> tf.Tensor:
    """The packed FCOS targets of one image.

    Arguments:
        boxes: float32 (n, 4), `[ymin, xmin, ymax, xmax]` in pixels.
        classes: int (n,), class ids from 0.
        locations, strides, ranges: `level_geometry` of the model.
        radius: center sampling radius, in strides.

    Returns:
        float32 (locations, 6): class id (-1 for a negative), l, t, r, b, centerness.
    """
    # A far-away dummy box (never matched) makes every image have one, empty ones too.
    boxes = tf.concat([tf.reshape(tf.cast(boxes, tf.float32), (-1, 4)), [[-1e4, -1e4, -1e4 + 1, -1e4 + 1]]], 0)
    classes = tf.concat([tf.cast(tf.reshape(classes, (-1,)), tf.float32), [-1.0]], 0)
    y, x = locations[:, 0:1], locations[:, 1:2]  # (N, 1)
    ltrb = tf.stack([x - boxes[None, :, 1], y - boxes[None, :, 0],
                     boxes[None, :, 3] - x, boxes[None, :, 2] - y], -1)  # (N, n, 4)
    cy, cx = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    reach = (radius * strides)[:, None]
    near = (tf.abs(y - cy[None]) < reach) & (tf.abs(x - cx[None]) < reach)
    largest = tf.reduce_max(ltrb, -1)
    valid = (tf.reduce_min(ltrb, -1) > 0) & near & (largest > ranges[:, 0:1]) & (largest <= ranges[:, 1:2])
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    best = tf.argmin(tf.where(valid, area[None], np.inf), 1)
    positive = tf.reduce_any(valid, 1)
    target = tf.where(positive[:, None], tf.gather(ltrb, best, batch_dims=1), 0.0)
    l, t, r, b = tf.unstack(tf.maximum(target, 1e-6), axis=-1)
    centerness = tf.sqrt(tf.minimum(l, r) / tf.maximum(l, r) * tf.minimum(t, b) / tf.maximum(t, b))
    label = tf.where(positive, tf.gather(classes, best), -1.0)
    return tf.concat([label[:, None], target, tf.where(positive, centerness, 0.0)[:, None]], -1)


class FCOSTargets:
    """Preprocessing of detection elements for training: `(image, packed targets)`.

    Arguments:
        dataset: a dataset component with `detection_pair(data, training)`.
        model: the `GroupNetFCOS` model the targets are for (its levels and input).
    """

    def __init__(self, dataset, model: tf.keras.Model):
        size, strides = model_geometry(model)
        self.dataset, self.geometry = dataset, level_geometry(size, strides)
        self.decoders = getattr(dataset, "decoders", None)

    def __call__(self, data: Dict[str, tf.Tensor], training: bool = False):
        image, boxes, classes = self.dataset.detection_pair(data, training)
        return image, fcos_targets(boxes, classes, *self.geometry)


def giou_loss(predicted: tf.Tensor, target: tf.Tensor) -> tf.Tensor:
    """1 - GIoU of boxes given as (l, t, r, b) distances from the same location."""
    pl, pt, pr, pb = tf.unstack(predicted, axis=-1)
    tl, tt, tr, tb = tf.unstack(target, axis=-1)
    inter = (tf.minimum(pl, tl) + tf.minimum(pr, tr)) * (tf.minimum(pt, tt) + tf.minimum(pb, tb))
    union = (pl + pr) * (pt + pb) + (tl + tr) * (tt + tb) - inter
    enclosing = (tf.maximum(pl, tl) + tf.maximum(pr, tr)) * (tf.maximum(pt, tt) + tf.maximum(pb, tb))
    iou = inter / tf.maximum(union, 1e-7)
    return 1.0 - (iou - (enclosing - union) / tf.maximum(enclosing, 1e-7))


@tf.keras.utils.register_keras_serializable(package="zoo")
class FCOSLoss(tf.keras.losses.Loss):
    """FCOS's loss on packed raw predictions and targets (see the module).

    Arguments:
        num_classes: the number of classes.
        alpha, gamma: the focal loss' parameters.
    """

    def __init__(self, num_classes: int, alpha: float = 0.25, gamma: float = 2.0, name="fcos_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        self.num_classes, self.alpha, self.gamma = num_classes, alpha, gamma

    def call(self, y_true, y_pred):
        c = self.num_classes
        label = y_true[..., 0]
        positive = tf.cast(label >= 0, tf.float32)
        num_positive = tf.maximum(tf.reduce_sum(positive), 1.0)
        onehot = tf.one_hot(tf.cast(label, tf.int32), c)  # -1: all zeros
        logits = y_pred[..., :c]
        p = tf.sigmoid(logits)
        ce = tf.nn.sigmoid_cross_entropy_with_logits(onehot, logits)
        p_t = onehot * p + (1 - onehot) * (1 - p)
        alpha_t = onehot * self.alpha + (1 - onehot) * (1 - self.alpha)
        focal = tf.reduce_sum(alpha_t * (1 - p_t) ** self.gamma * ce) / num_positive
        weight = y_true[..., 5] * positive
        box = tf.reduce_sum(giou_loss(y_pred[..., c:c + 4], y_true[..., 1:5]) * weight)
        box = box / tf.maximum(tf.reduce_sum(weight), 1e-6)
        centerness = tf.nn.sigmoid_cross_entropy_with_logits(y_true[..., 5], y_pred[..., c + 4])
        centerness = tf.reduce_sum(centerness * positive) / num_positive
        return focal + box + centerness

    def get_config(self):
        return {**super().get_config(), "num_classes": self.num_classes, "alpha": self.alpha, "gamma": self.gamma}


def with_decoding(model: tf.keras.Model, **options) -> tf.keras.Model:
    """The inference model of a raw FCOS model (`decode=False`): the same layers, then
    `FCOSDecode` (`options`: its thresholds). A model that decodes already is returned."""
    if isinstance(model.output, dict):
        return model
    size, strides = model_geometry(model)
    decode = FCOSDecode(size, strides, model.output_shape[-1] - 5, name="detections", **options)
    return tf.keras.Model(model.input, decode(model.output), name=model.name)
