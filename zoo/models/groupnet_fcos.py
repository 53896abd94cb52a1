"""Group-Net FCOS: a binary object detector (Group-Net's journal extension).

The journal version of Group-Net ("Structured Binary Neural Networks for Image
Recognition", arXiv 1909.09934) builds the first binary detector on a one-stage
detector. Its details and COCO numbers were not recoverable here, so the zoo's design
is documented in full:

- **Detector:** FCOS (Tian et al., ICCV 2019), anchor-free and one-stage. Every
  location of every pyramid level predicts class scores, its distances to the four
  sides of a box (l, t, r, b) and a "centerness".
- **Backbone:** a Group-Net classifier (`backbone`, K bases, soft gates), undilated.
  The FPN reads the aggregate Y of the stages `fpn_stages`.
- **FPN:** a 1x1 lateral convolution per stage, a top-down path (nearest upsampling
  and addition), a 3x3 output convolution per level, and `extra_levels` stride-2 3x3
  convolutions on the last level (FCOS's P6, P7).
- **Head:** two towers (classification and box) of `head_convs` 3x3 convolutions, then
  the predictions. Tower weights are shared by all levels; each level has its own
  batch normalization. Each box distance is ReLU(s_level * x) * stride, with a
  learnable scale s_level (FCOS's normalized regression).
- **What is binary.** Every convolution of the FPN and the towers is a K-base binary
  convolution unit: the K bases binarize the same input, convolve, then ReLU -> BN
  (Group-Net's order), and the bases are averaged. A unit whose input and output
  shapes match also gets Group-Net's real shortcut around it. Full precision: the
  first layer (the backbone's stem) and the last (the class, box and centerness
  predictions), as in the binary classifiers.
- **Inference path:** `decode=True` (the constructor's default) ends the model in
  `FCOSDecode`. It computes the scores sqrt(sigmoid(class) * sigmoid(centerness)),
  decodes the boxes, drops scores below `score_threshold`, and runs TensorFlow's
  `tf.image.combined_non_max_suppression` (`iou_threshold`, at most `max_detections`).
  The model then returns `{"boxes": (B, max_detections, 4) [ymin, xmin, ymax, xmax] in
  input pixels, "scores", "classes", "num_detections"}`.
- **Training path:** `decode=False` returns the raw predictions of every location of
  every level, packed as (B, locations, num_classes + 5): the class logits, l, t, r, b
  in pixels, and the centerness logit. `zoo.models.fcos` has the targets and
  the loss. Both paths have the same layers, so weights move between them.

Locations follow FCOS: on a level of stride s, location (i, j) is the pixel (s//2 +
s*i, s//2 + s*j). Level l takes the objects whose largest distance m = max(l, t, r, b)
lies in (4 s_l, 8 s_l]: the first level has no lower bound and the last no upper one
(FCOS's ranges 0-64-128-256-512 for strides 8-128).
"""
from typing import List, Tuple

import numpy as np
import tensorflow as tf
from zookeeper import Field

from zoo.blocks import (
    AggregateBranches,
    RepeatBranches,
    batch_norm,
    grouped_binary_conv_layer,
)
from zoo.models import groupnet
from zoo.models.family import COCO, Family, Variant
from zoo.models.groupnet_dense import DENSE_DOC, FLOAT_TWIN, GroupNetDenseFactory


def level_geometry(input_size: Tuple[int, int], strides: Tuple[int, ...]):
    """Locations, strides and regression ranges of every location, levels in order.

    Arguments:
        input_size: (height, width) of the input.
        strides: the stride of each level.

    Returns:
        (locations float32 (N, 2) as (y, x) pixels, strides float32 (N,), ranges
        float32 (N, 2) of the largest distance a location's object may have).
    """
    locations, per_stride, ranges = [], [], []
    for i, s in enumerate(strides):
        h, w = -(-input_size[0] // s), -(-input_size[1] // s)
        ys, xs = np.meshgrid(s // 2 + s * np.arange(h), s // 2 + s * np.arange(w), indexing="ij")
        locations.append(np.stack([ys.ravel(), xs.ravel()], 1))
        per_stride.append(np.full(h * w, s))
        low = 0.0 if i == 0 else 4.0 * s
        high = np.inf if i == len(strides) - 1 else 8.0 * s
        ranges.append(np.tile([low, high], (h * w, 1)))
    return tuple(np.concatenate(a).astype(np.float32) for a in (locations, per_stride, ranges))


@tf.keras.utils.register_keras_serializable(package="zoo")
class LevelScale(tf.keras.layers.Layer):
    """ReLU(s * x) * stride with a learnable scalar s (starting at 1): a level's box distances.

    Arguments:
        stride: the level's stride.
    """

    def __init__(self, stride: int, **kwargs):
        super().__init__(**kwargs)
        self.stride = stride

    def build(self, input_shape):
        self.scale = self.add_weight("scale", shape=(), initializer="ones")
        super().build(input_shape)

    def call(self, x):
        return tf.nn.relu(tf.cast(self.scale, x.dtype) * x) * float(self.stride)

    def get_config(self):
        return {**super().get_config(), "stride": self.stride}


@tf.keras.utils.register_keras_serializable(package="zoo")
class FCOSDecode(tf.keras.layers.Layer):
    """Raw FCOS predictions to detections: scores, boxes, threshold, then NMS.

    Arguments:
        input_size: (height, width) of the model's input.
        strides: the stride of each level.
        num_classes: the number of classes.
        score_threshold: detections scoring below it are dropped.
        iou_threshold: non-maximum suppression's overlap threshold (per class).
        max_detections: detections kept per image.

    Returns:
        `{"boxes": (B, max_detections, 4), "scores": (B, max_detections), "classes":
        int32 (B, max_detections), "num_detections": int32 (B,)}`; boxes are
        `[ymin, xmin, ymax, xmax]` in input pixels, rows past `num_detections` zero.
    """

    def __init__(self, input_size, strides, num_classes, score_threshold=0.05, iou_threshold=0.6,
                 max_detections=100, **kwargs):
        super().__init__(**kwargs)
        self.input_size, self.strides = tuple(input_size), tuple(strides)
        self.num_classes, self.max_detections = num_classes, max_detections
        self.score_threshold, self.iou_threshold = score_threshold, iou_threshold
        self.locations = level_geometry(self.input_size, self.strides)[0]

    def call(self, raw):
        raw = tf.cast(raw, tf.float32)
        c = self.num_classes
        scores = tf.sqrt(tf.sigmoid(raw[..., :c]) * tf.sigmoid(raw[..., c + 4:c + 5]))
        ltrb = raw[..., c:c + 4]
        y, x = self.locations[None, :, 0], self.locations[None, :, 1]
        boxes = tf.stack([y - ltrb[..., 1], x - ltrb[..., 0], y + ltrb[..., 3], x + ltrb[..., 2]], -1)
        nms = tf.image.combined_non_max_suppression(
            boxes[:, :, None, :], scores, self.max_detections, self.max_detections,
            iou_threshold=self.iou_threshold, score_threshold=self.score_threshold, clip_boxes=False,
        )
        return {"boxes": nms.nmsed_boxes, "scores": nms.nmsed_scores,
                "classes": tf.cast(nms.nmsed_classes, tf.int32), "num_detections": nms.valid_detections}

    def get_config(self):
        return {**super().get_config(), "input_size": self.input_size, "strides": self.strides,
                "num_classes": self.num_classes, "score_threshold": self.score_threshold,
                "iou_threshold": self.iou_threshold, "max_detections": self.max_detections}


class FCOSFactory(GroupNetDenseFactory):
    """FCOS with a Group-Net backbone, a binary FPN and binary head towers."""

    output_stride = Field(None)
    fpn_stages: Tuple[int, ...] = Field((2, 3, 4))
    extra_levels: int = Field(2)
    fpn_channels: int = Field(256)
    head_convs: int = Field(4)
    prior_probability: float = Field(0.01)
    decode: bool = Field(True)
    score_threshold: float = Field(0.05)
    iou_threshold: float = Field(0.6)
    max_detections: int = Field(100)
    variant_fields = (*GroupNetDenseFactory.variant_fields, "fpn_stages", "extra_levels", "fpn_channels",
                      "head_convs")
    constructor_fields = (*GroupNetDenseFactory.constructor_fields, "fpn_stages", "extra_levels", "fpn_channels",
                          "head_convs", "decode", "score_threshold", "iou_threshold", "max_detections")
    constructor_doc = groupnet.GroupNetFactory.constructor_doc + DENSE_DOC + """
    `fpn_stages` are the backbone stages (from 1) the FPN reads, `extra_levels` the
    stride-2 levels added on top, `fpn_channels` its width and `head_convs` the depth of
    each head tower. With `decode=True` the model returns the detections after score
    threshold and non-maximum suppression, `{"boxes", "scores", "classes",
    "num_detections"}` (boxes `[ymin, xmin, ymax, xmax]` in input pixels); with
    `decode=False` the raw predictions (batch, locations, num_classes + 5) that
    training uses. `include_top=False` returns the FPN's levels.
"""

    def classes_of(self, dataset) -> int:
        return dataset.num_detection_classes

    def strides(self) -> Tuple[int, ...]:
        """The stride of every level: the FPN's stages, then the extra levels."""
        stem = self.backbone_factory().stem_stride
        stages = tuple(stem * 2 ** (s - 1) for s in self.fpn_stages)
        return stages + tuple(stages[-1] * 2 ** (i + 1) for i in range(self.extra_levels))

    def unit(self, x: tf.Tensor, filters: int, kernel_size: int, strides: int, name: str, conv=None) -> tf.Tensor:
        """A K-base binary convolution unit: BN(ReLU(BinaryConv(sign x))) per base,
        averaged; with Group-Net's real shortcut when the shape is kept. `conv` is a
        shared convolution layer (the head's towers), else a new one is made."""
        k = self.num_bases
        conv = conv or grouped_binary_conv_layer(k * x.shape[-1], filters, kernel_size, strides, k, name,
                                                 self.backbone_factory().quantizers())
        y = conv(RepeatBranches(k, name=f"{name}_inputs")(x))
        y = tf.keras.layers.ReLU(name=f"{name}_relu")(y)
        y = batch_norm(f"{name}_bn")(y)
        y = AggregateBranches(k, "mean", name=f"{name}_mean")(y)
        if strides == 1 and x.shape[-1] == filters:
            y = tf.keras.layers.Add(name=f"{name}_add")([x, y])
        return y

    def pyramid(self, stages: List[tf.Tensor]) -> List[tf.Tensor]:
        """The FPN's levels, finest first."""
        laterals = [self.unit(stages[s - 1], self.fpn_channels, 1, 1, f"fpn_lateral{s}") for s in self.fpn_stages]
        merged = [laterals[-1]]
        for lateral, s in zip(laterals[-2::-1], self.fpn_stages[-2::-1]):
            up = tf.keras.layers.UpSampling2D(2, name=f"fpn_up{s}")(merged[0])
            up = tf.keras.layers.Cropping2D(((0, up.shape[1] - lateral.shape[1]), (0, up.shape[2] - lateral.shape[2])),
                                            name=f"fpn_crop{s}")(up)
            merged.insert(0, tf.keras.layers.Add(name=f"fpn_merge{s}")([lateral, up]))
        levels = [self.unit(m, self.fpn_channels, 3, 1, f"fpn_output{s}") for m, s in zip(merged, self.fpn_stages)]
        for i in range(self.extra_levels):
            levels.append(self.unit(levels[-1], self.fpn_channels, 3, 2, f"fpn_extra{i + 1}"))
        return levels

    def features(self, x: tf.Tensor):
        return self.pyramid(self.backbone_outputs(x))

    def top(self, levels: List[tf.Tensor], num_classes: int, image: tf.Tensor):
        """The shared head on every level, the raw predictions packed, then decoding."""
        k, c = self.num_bases, self.fpn_channels
        quantizers = self.backbone_factory().quantizers
        towers = {name: [grouped_binary_conv_layer(k * c, c, 3, 1, k, f"{name}{i + 1}", quantizers())
                         for i in range(self.head_convs)] for name in ("cls_tower", "box_tower")}
        prior = -np.log((1 - self.prior_probability) / self.prior_probability)
        predict = {
            "cls": tf.keras.layers.Conv2D(num_classes, 3, padding="same", name="cls_logits",
                                          bias_initializer=tf.keras.initializers.Constant(prior)),
            "box": tf.keras.layers.Conv2D(4, 3, padding="same", name="box_pred"),
            "ctr": tf.keras.layers.Conv2D(1, 3, padding="same", name="centerness"),
        }
        outputs = []
        for level, (x, stride) in enumerate(zip(levels, self.strides())):
            towered = {}
            for name, convs in towers.items():
                y = x
                for i, conv in enumerate(convs):
                    y = self.unit(y, c, 3, 1, f"{name}{i + 1}_p{level}", conv=conv)
                towered[name] = y
            parts = [predict["cls"](towered["cls_tower"]),
                     LevelScale(stride, name=f"box_scale_p{level}")(predict["box"](towered["box_tower"])),
                     predict["ctr"](towered["box_tower"])]
            merged = tf.keras.layers.Concatenate(name=f"raw_p{level}")(parts)
            outputs.append(tf.keras.layers.Reshape((-1, num_classes + 5), name=f"flat_p{level}")(merged))
        raw = tf.keras.layers.Concatenate(axis=1, dtype="float32", name="raw")(outputs)
        if not self.decode:
            return raw
        return FCOSDecode(image.shape[1:3], self.strides(), num_classes, self.score_threshold,
                          self.iou_threshold, self.max_detections, name="detections")(raw)


FAMILY = Family("Group-Net", groupnet.PAPER, (
    Variant("GroupNetFCOS", FCOSFactory, COCO,
            "Group-Net FCOS: an anchor-free binary detector, with a K-base binary FPN and head towers.",
            recipe="groupnet_fcos_scenes", twin="GroupNetFCOSFP"),
    Variant("GroupNetFCOSFP", FCOSFactory, COCO,
            "Full-precision twin of GroupNetFCOS (one base, real weights and activations): the baseline.",
            fields=FLOAT_TWIN, recipe="groupnet_fcos_scenes"),
))
