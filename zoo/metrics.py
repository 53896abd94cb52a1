"""Metrics of dense prediction: mean IoU for semantic segmentation and COCO mAP
for object detection.

Both take numpy arrays or tensors (anything `np.asarray` reads). Boxes are
`[ymin, xmin, ymax, xmax]` in pixels, as `FashionMNISTScenes` gives them.
"""

import contextlib
import io
from typing import Dict, Mapping, Sequence

import numpy as np


class ConfusionMatrix:
    """A confusion matrix of per-pixel class ids, accumulated over batches.

    `matrix[t, p]` counts the pixels of true class `t` predicted as `p`.

    Arguments:
        num_classes: the number of classes; class ids are 0 to num_classes - 1.
        ignore_label: pixels whose true label is this are not counted.
    """

    def __init__(self, num_classes: int, ignore_label: int = 255):
        self.num_classes = num_classes
        self.ignore_label = ignore_label
        self.matrix = np.zeros((num_classes, num_classes), np.int64)

    def reset(self) -> None:
        """Forgets everything counted."""
        self.matrix[:] = 0

    def update(self, labels, predictions) -> None:
        """Counts a batch.

        Arguments:
            labels: the true class ids, any shape.
            predictions: the predicted class ids, the same shape.

        Raises:
            ValueError: if the shapes differ, or a class id (other than an
                ignored label) is out of range.
        """
        labels, predictions = np.asarray(labels), np.asarray(predictions)
        if labels.shape != predictions.shape:
            raise ValueError(
                f"labels {labels.shape} and predictions {predictions.shape} differ "
                "in shape."
            )
        keep = labels != self.ignore_label
        labels = labels[keep].astype(np.int64)
        predictions = predictions[keep].astype(np.int64)
        for name, ids in (("label", labels), ("prediction", predictions)):
            if ids.size and (ids.min() < 0 or ids.max() >= self.num_classes):
                raise ValueError(
                    f"A {name} is out of range: {ids.min()} to {ids.max()}, "
                    f"expected 0 to {self.num_classes - 1}."
                )
        counts = np.bincount(
            labels * self.num_classes + predictions, minlength=self.num_classes**2
        )
        self.matrix += counts.reshape(self.num_classes, self.num_classes)

    def iou(self) -> np.ndarray:
        """The IoU of each class: true positives / (true + predicted - true
        positives); NaN for a class absent from both labels and predictions.

        Returns:
            A float64 array of shape (num_classes,).
        """
        true_positives = np.diag(self.matrix).astype(np.float64)
        union = self.matrix.sum(0) + self.matrix.sum(1) - true_positives
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, true_positives / union, np.nan)

    def mean_iou(self) -> float:
        """The mean of the classes' IoU, leaving out NaN (absent classes); NaN if
        nothing was counted."""
        iou = self.iou()
        return float(np.nanmean(iou)) if np.any(~np.isnan(iou)) else float("nan")

    def pixel_accuracy(self) -> float:
        """The fraction of counted pixels predicted right; NaN if none."""
        total = self.matrix.sum()
        return float(np.trace(self.matrix) / total) if total else float("nan")


def _coco_boxes(boxes) -> np.ndarray:
    """[ymin, xmin, ymax, xmax] (n, 4) as COCO's [x, y, width, height]."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return np.stack(
        [
            boxes[:, 1],
            boxes[:, 0],
            boxes[:, 3] - boxes[:, 1],
            boxes[:, 2] - boxes[:, 0],
        ],
        axis=1,
    )


def detection_map(
    ground_truth: Sequence[Mapping[str, object]],
    detections: Sequence[Mapping[str, object]],
) -> Dict[str, float]:
    """COCO-style detection mAP, computed by pycocotools' `COCOeval` (quietly).

    Images are matched by position in the two sequences. COCO's rules apply: at
    most 100 detections per image (the best scored) count, and detections of a
    class that no ground-truth box has do not count (such a class has no AP).

    Arguments:
        ground_truth: per image, `{"boxes": (n, 4), "labels": (n,)}`, boxes
            `[ymin, xmin, ymax, xmax]` in pixels (elements of
            `FashionMNISTScenes` fit).
        detections: per image, `{"boxes": (m, 4), "scores": (m,), "labels":
            (m,)}`, in the same coordinates.

    Returns:
        `{"map": AP averaged over IoU thresholds .5 to .95 (step .05), "map50":
        AP at IoU .5, "map75": AP at IoU .75}`, each averaged over the classes
        that have ground truth; NaN if there is no ground-truth box.

    Raises:
        ValueError: if the two sequences differ in length.
    """
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    if len(ground_truth) != len(detections):
        raise ValueError(
            f"{len(ground_truth)} images of ground truth but {len(detections)} "
            "of detections."
        )
    images, annotations, results = [], [], []
    for image_id, (truth, found) in enumerate(zip(ground_truth, detections), 1):
        images.append({"id": image_id})
        labels = np.asarray(truth["labels"]).reshape(-1)
        for box, label in zip(_coco_boxes(truth["boxes"]), labels):
            annotations.append(
                {
                    "id": len(annotations) + 1,  # COCOeval needs ids from 1.
                    "image_id": image_id,
                    "category_id": int(label),
                    "bbox": box.tolist(),
                    "area": float(box[2] * box[3]),
                    "iscrowd": 0,
                }
            )
        scores = np.asarray(found["scores"]).reshape(-1)
        labels = np.asarray(found["labels"]).reshape(-1)
        for box, score, label in zip(_coco_boxes(found["boxes"]), scores, labels):
            results.append(
                {
                    "image_id": image_id,
                    "category_id": int(label),
                    "bbox": box.tolist(),
                    "score": float(score),
                }
            )
    if not annotations:
        return {"map": float("nan"), "map50": float("nan"), "map75": float("nan")}
    if not results:  # pycocotools cannot load no results; nothing was found.
        return {"map": 0.0, "map50": 0.0, "map75": 0.0}
    categories = sorted({a["category_id"] for a in annotations + results})
    with contextlib.redirect_stdout(io.StringIO()):
        truth = COCO()
        truth.dataset = {
            "images": images,
            "annotations": annotations,
            "categories": [{"id": c} for c in categories],
        }
        truth.createIndex()
        evaluation = COCOeval(truth, truth.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    stats = [float(s) if s >= 0 else float("nan") for s in evaluation.stats[:3]]
    return dict(zip(("map", "map50", "map75"), stats))
