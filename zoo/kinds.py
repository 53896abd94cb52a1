"""Task kinds: classification, semantic segmentation and object detection, one object each.

A `Kind` owns everything that differs between them: how a dataset example becomes an
(image, target) pair, the label encoding, the training loss and metrics, the test
scores (headline first) with their names and printing, the evaluator over a test
split, and the columns of the published training curve. `ModelSpec.kind` is one of
`KINDS`; weights index entries and run records name theirs. A fourth kind is one more
`Kind` subclass in `KINDS`.
"""
import weakref
from dataclasses import dataclass
from typing import ClassVar, Dict, List, Mapping, Optional, Tuple

import numpy as np
import tensorflow as tf

from zoo.metrics import ConfusionMatrix, detection_map
from zoo.models.fcos import FCOSLoss, with_decoding

# Pixels of a segmentation mask labelled so count in no loss and no metric (VOC's border).
IGNORE_LABEL = 255


@dataclass(frozen=True)
class Metric:
    """A test score: its key in records (`top1`) and its name in text (`top-1`)."""

    key: str
    name: str


class Kind:
    """The facts of one task kind; subclasses set the class attributes and the methods.

    Attributes:
        name: "classification", "segmentation" or "detection".
        scores: the test metrics, headline first (fractions in records).
        curve: the Keras history column of the training curve (`val_` + it validates).
        curve_label: the curve's axis label; `curve_scale` maps history values to it.
        one_hot: whether the loss takes one-hot labels.
        largest_batch: the largest batch `evaluate` uses; None: any.
        export_arguments: constructor arguments of the model an export converts.
    """

    name: ClassVar[str]
    scores: ClassVar[Tuple[Metric, ...]]
    curve: ClassVar[str]
    curve_label: ClassVar[str]
    curve_scale: ClassVar[float] = 100.0
    one_hot: ClassVar[bool] = False
    largest_batch: ClassVar[Optional[int]] = None  # of an evaluation (dense outputs take memory)
    export_arguments: ClassVar[Dict[str, object]] = {}

    @property
    def headline(self) -> Metric:
        return self.scores[0]

    def text(self, scores: Mapping[str, float]) -> str:
        """`scores` in words, headline first: "top-1 91.59%, top-5 99.94%"."""
        return ", ".join(f"{m.name} {scores[m.key]:.2%}" for m in self.scores if scores.get(m.key) is not None)

    def history_columns(self) -> Tuple[str, ...]:
        """The columns of a published training curve (`stage` is the training stage)."""
        curves = () if self.curve == "loss" else (self.curve, f"val_{self.curve}")
        return ("stage", "epoch", "loss", "val_loss", *curves, "epoch_seconds")

    def pair(self, dataset, example: Dict[str, tf.Tensor], training: bool):
        """The (image, target) pair of one decoded dataset example."""
        raise NotImplementedError

    def loss(self, model: tf.keras.Model, label_smoothing: float = 0.0) -> tf.keras.losses.Loss:
        raise NotImplementedError

    def training_metrics(self, num_classes: int) -> List[tf.keras.metrics.Metric]:
        """The metrics Keras logs every epoch."""
        return []

    def predicted_classes(self, model: tf.keras.Model) -> int:
        """The number of classes `model` predicts."""
        return int(model.output_shape[-1])

    def evaluate(self, model: tf.keras.Model, dataset, batch_size: int, limit: Optional[int] = None) -> dict:
        """The scores of `model` over the test split (its first `limit` examples), in one
        pass, with `dataset` (its name) and `examples` (how many were scored)."""
        batch_size = min(batch_size, self.largest_batch or batch_size)
        data, count = dataset.test(decoders=getattr(dataset, "decoders", None))
        if limit is not None:
            data, count = data.take(limit), min(count, limit)
        pairs = data.map(lambda example: self.pair(dataset, example, False), tf.data.AUTOTUNE)
        return {"dataset": type(dataset).__name__, "examples": int(count),
                **self.score(model, pairs, batch_size, dataset)}

    def score(self, model: tf.keras.Model, pairs: tf.data.Dataset, batch_size: int, dataset) -> dict:
        raise NotImplementedError


_PREDICTORS = weakref.WeakKeyDictionary()  # model -> its inference tf.function


def predictor(model: tf.keras.Model):
    """`model(x, training=False)` as one `tf.function` kept with the model (for as long
    as it lives) and traced once per input shape, whatever the batch: scoring a model
    on many splits (the robustness track's 85) does not trace it again for each."""
    if model not in _PREDICTORS:
        ref = weakref.ref(model)  # the function must not keep its model alive
        _PREDICTORS[model] = tf.function(lambda x: ref()(x, training=False), reduce_retracing=True)
    return _PREDICTORS[model]


class Classification(Kind):
    name = "classification"
    scores = (Metric("top1", "top-1"), Metric("top5", "top-5"))
    curve, curve_label = "accuracy", "top-1 accuracy (%)"
    one_hot = True

    def pair(self, dataset, example, training):
        return dataset.preprocess(example, training), example["label"]

    def loss(self, model, label_smoothing=0.0):
        return tf.keras.losses.CategoricalCrossentropy(label_smoothing=label_smoothing)

    def training_metrics(self, num_classes):
        return [tf.keras.metrics.CategoricalAccuracy(name="accuracy"),
                tf.keras.metrics.TopKCategoricalAccuracy(5, name="top5_accuracy")]

    def score(self, model, pairs, batch_size, dataset):
        top1 = tf.keras.metrics.SparseTopKCategoricalAccuracy(1)
        top5 = tf.keras.metrics.SparseTopKCategoricalAccuracy(5)
        predict = predictor(model)
        for x, y in pairs.batch(batch_size).prefetch(tf.data.AUTOTUNE):
            p = predict(x)
            top1.update_state(y, p)
            top5.update_state(y, p)
        return {"top1": float(top1.result()), "top5": float(top5.result())}


class Segmentation(Kind):
    """Per-pixel classes; pixels labelled `IGNORE_LABEL` count in neither loss nor score."""

    name = "segmentation"
    scores = (Metric("miou", "mIoU"), Metric("pixel_accuracy", "pixel accuracy"))
    curve, curve_label = "miou", "mean IoU (%)"
    largest_batch = 32

    def pair(self, dataset, example, training):
        return dataset.segmentation_pair(example, training)

    def loss(self, model, label_smoothing=0.0):
        return tf.keras.losses.SparseCategoricalCrossentropy(ignore_class=IGNORE_LABEL)

    def training_metrics(self, num_classes):
        return [tf.keras.metrics.MeanIoU(num_classes, sparse_y_pred=False, ignore_class=IGNORE_LABEL, name="miou"),
                tf.keras.metrics.SparseCategoricalAccuracy(name="pixel_accuracy")]

    def score(self, model, pairs, batch_size, dataset):
        """Also `class_iou` (class name -> IoU, None for a class absent from truth and
        prediction, which the mean leaves out), all from one confusion matrix."""
        confusion = ConfusionMatrix(dataset.num_classes, IGNORE_LABEL)
        predict = predictor(model)
        for x, y in pairs.batch(batch_size).prefetch(tf.data.AUTOTUNE):
            confusion.update(y.numpy(), tf.argmax(predict(x), -1).numpy())
        iou = confusion.iou()
        return {"miou": confusion.mean_iou(), "pixel_accuracy": confusion.pixel_accuracy(),
                "class_iou": {name: None if np.isnan(v) else float(v) for name, v in zip(dataset.class_names, iou)}}


class Detection(Kind):
    """Boxes and classes (FCOS heads: per location class logits, l, t, r, b, centerness)."""

    name = "detection"
    scores = (Metric("map", "mAP"), Metric("map50", "mAP@.5"), Metric("map75", "mAP@.75"))
    curve, curve_label, curve_scale = "loss", "FCOS loss", 1.0
    largest_batch = 32
    # Exported without decoding: non-maximum suppression is neither a TFLite builtin nor
    # converted by OpenVINO's TensorFlow frontend (decode with `with_decoding`).
    export_arguments = {"decode": False}

    def pair(self, dataset, example, training):
        return dataset.detection_pair(example, training)

    def loss(self, model, label_smoothing=0.0):
        return FCOSLoss(self.predicted_classes(model))

    def predicted_classes(self, model):
        if isinstance(model.output, dict):  # decoded: boxes, scores, classes
            return int(model.get_layer("detections").num_classes)
        return int(model.output_shape[-1]) - 5

    def score(self, model, pairs, batch_size, dataset):
        """COCO mAP@[.5:.95], mAP@.5 and mAP@.75 by pycocotools."""
        model = with_decoding(model)  # kept alive while it scores (`predictor` holds it weakly)
        predict = predictor(model)
        truth, found = [], []
        for images, boxes, classes in pairs.padded_batch(batch_size, padding_values=(0.0, -1.0, -1)):
            out = {k: v.numpy() for k, v in predict(images).items()}
            for i in range(len(images)):
                keep = classes[i].numpy() >= 0
                truth.append({"boxes": boxes[i].numpy()[keep], "labels": classes[i].numpy()[keep]})
                n = out["num_detections"][i]
                found.append({"boxes": out["boxes"][i, :n], "scores": out["scores"][i, :n],
                              "labels": out["classes"][i, :n]})
        return detection_map(truth, found)


KINDS: Dict[str, Kind] = {kind.name: kind for kind in (Classification(), Segmentation(), Detection())}


def get(name: str) -> Kind:
    """The kind called `name`; a ValueError lists the known ones."""
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"Unknown task kind {name!r}; known kinds: {', '.join(KINDS)}.") from None
