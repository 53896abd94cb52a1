import math

import numpy as np
import pytest
import tensorflow as tf

from zoo.metrics import ConfusionMatrix, detection_map
from zoo.training.datasets import fashion_mnist_folder, load_fashion_mnist, scenes

# --- Mean IoU ---

LABELS = np.array([[0, 0, 1], [1, 2, 255]])
PREDICTIONS = np.array([[0, 1, 1], [1, 0, 2]])


def test_iou_by_hand():
    # Counted pixels (true, predicted): (0,0) (0,1) (1,1) (1,1) (2,0); the last
    # pixel is ignored; class 3 is absent.
    matrix = ConfusionMatrix(4)
    matrix.update(LABELS, PREDICTIONS)
    assert matrix.matrix.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 0, 0], [0, 0, 0, 0]]
    iou = matrix.iou()
    np.testing.assert_allclose(iou[:3], [1 / 3, 2 / 3, 0])
    assert math.isnan(iou[3])
    assert matrix.mean_iou() == pytest.approx(1 / 3)
    assert matrix.pixel_accuracy() == pytest.approx(3 / 5)


def test_iou_accumulates_batches_of_tensors():
    whole = ConfusionMatrix(4)
    whole.update(LABELS, PREDICTIONS)
    batches = ConfusionMatrix(4)
    for row in range(2):
        batches.update(tf.constant(LABELS[row]), tf.constant(PREDICTIONS[row]))
    assert np.array_equal(whole.matrix, batches.matrix)
    batches.reset()
    assert batches.matrix.sum() == 0 and math.isnan(batches.mean_iou())
    assert math.isnan(batches.pixel_accuracy())


def test_perfect_segmentation_and_ignore_label():
    matrix = ConfusionMatrix(3, ignore_label=0)
    labels = np.array([0, 1, 2, 2, 0])
    matrix.update(labels, np.array([2, 1, 2, 2, 1]))
    iou = matrix.iou()
    assert math.isnan(iou[0]) and iou[1] == iou[2] == 1
    assert matrix.mean_iou() == 1 and matrix.pixel_accuracy() == 1


@pytest.mark.parametrize(
    "labels, predictions, message",
    [([0, 4], [0, 0], "label is out of range"), ([0, 1], [0, -1], "prediction"), ([0], [0, 1], "shape")],
)
def test_bad_class_ids(labels, predictions, message):
    with pytest.raises(ValueError, match=message):
        ConfusionMatrix(4).update(np.array(labels), np.array(predictions))


# --- Detection mAP ---

BOX_A = [0.0, 0.0, 10.0, 10.0]
BOX_B = [20.0, 20.0, 40.0, 40.0]
TWO_IMAGES = [
    {"boxes": np.array([BOX_A]), "labels": np.array([1])},
    {"boxes": np.array([BOX_B]), "labels": np.array([2])},
]


def found(boxes, scores, labels):
    return {
        "boxes": np.array(boxes, np.float32).reshape(-1, 4),
        "scores": np.array(scores, np.float32),
        "labels": np.array(labels, np.int64),
    }


def test_perfect_detections():
    result = detection_map(TWO_IMAGES, [found([BOX_A], [0.9], [1]), found([BOX_B], [0.8], [2])])
    assert result == pytest.approx({"map": 1.0, "map50": 1.0, "map75": 1.0})


def test_one_of_two_objects_missed():
    truth = [{"boxes": np.array([BOX_A]), "labels": [1]}, {"boxes": np.array([BOX_B]), "labels": [1]}]
    # Recall 0.5 at precision 1: 51 of COCO's 101 recall points.
    for second in (found([], [], []), found([BOX_B], [0.8], [2])):  # missed, or wrong class
        result = detection_map(truth, [found([BOX_A], [0.9], [1]), second])
        assert result == pytest.approx({"map": 51 / 101, "map50": 51 / 101, "map75": 51 / 101})


def test_shifted_box_counts_only_at_low_iou_thresholds():
    # Shifted by 2 of 10 pixels: IoU 8/12 = 0.67, a match at .5, .55, .6, .65 only.
    shifted = found([[0, 2, 10, 12]], [0.9], [1])
    result = detection_map(TWO_IMAGES[:1], [shifted])
    assert result == pytest.approx({"map": 0.4, "map50": 1.0, "map75": 0.0})


def test_scores_rank_detections():
    # A false positive scored above the true one: precision 1/2 at every recall.
    detections = found([BOX_B, BOX_A], [0.9, 0.5], [1, 1])
    assert detection_map(TWO_IMAGES[:1], [detections])["map50"] == pytest.approx(0.5)
    detections = found([BOX_B, BOX_A], [0.5, 0.9], [1, 1])
    assert detection_map(TWO_IMAGES[:1], [detections])["map50"] == pytest.approx(1.0)


def test_edge_cases(capsys):
    assert detection_map(TWO_IMAGES, [found([], [], [])] * 2) == {"map": 0.0, "map50": 0.0, "map75": 0.0}
    empty = {"boxes": np.zeros((0, 4)), "labels": np.zeros(0)}
    assert all(math.isnan(v) for v in detection_map([empty], [found([BOX_A], [1], [1])]).values())
    with pytest.raises(ValueError, match="2 images of ground truth but 1"):
        detection_map(TWO_IMAGES, [found([], [], [])])
    detection_map(TWO_IMAGES, [found([BOX_A], [0.9], [1]), found([], [], [])])
    assert capsys.readouterr().out == ""


def test_scenes_ground_truth_as_detections():
    images, labels = load_fashion_mnist(fashion_mnist_folder(None))["test"]
    truth = [scenes.scene(images, labels, 0, "test", i) for i in range(20)]
    targets = [{"boxes": s.boxes, "labels": s.labels} for s in truth]
    detections = [found(s.boxes, np.ones(len(s.labels)), s.labels) for s in truth]
    assert detection_map(targets, detections) == pytest.approx({"map": 1.0, "map50": 1.0, "map75": 1.0})
    # Drop every scene's first garment: about 30% of the boxes are missed.
    partial = [found(s.boxes[1:], np.ones(len(s.labels) - 1), s.labels[1:]) for s in truth]
    assert detection_map(targets, partial)["map50"] < 0.9
