"""Group-Net FCOS: level geometry, target assignment, loss, decoding with NMS, the binary
FPN and shared head (cost counted at every level), LCE export, training and publishing."""
import json

import larq as lq
import numpy as np
import pytest
import tensorflow as tf
from helpers import randomize_batch_norm

import zoo
from zoo import tflite
from zoo.models.fcos import FCOSLoss, fcos_targets, giou_loss
from zoo.models.groupnet_fcos import FCOSDecode, level_geometry

SCENES = dict(input_shape=(96, 96, 1), num_classes=10, backbone="GroupNetResNet20",
              backbone_options={"stem_strides": 2}, fpn_stages=(2, 3), extra_levels=1, fpn_channels=16,
              head_convs=2)


def test_level_geometry_follows_fcos():
    locations, strides, ranges = level_geometry((32, 32), (8, 16))
    assert len(locations) == 16 + 4
    np.testing.assert_array_equal(locations[:5], [[4, 4], [4, 12], [4, 20], [4, 28], [12, 4]])
    np.testing.assert_array_equal(locations[16:], [[8, 8], [8, 24], [24, 8], [24, 24]])
    assert strides.tolist() == [8] * 16 + [16] * 4
    assert ranges[0].tolist() == [0, 64] and ranges[-1].tolist() == [64, np.inf]
    assert level_geometry((33, 40), (8,))[0].shape == (5 * 5, 2)  # ceil(33 / 8) x ceil(40 / 8)


def test_targets_assign_the_smallest_box_near_its_center_within_the_level_range():
    locations, strides, ranges = level_geometry((64, 64), (8, 16))
    big = [0, 0, 64, 64]  # every inside location's largest distance is 32 to 64: level 0 only
    small = [16, 16, 32, 40]
    targets = fcos_targets(np.array([big, small], np.float32), np.array([3, 7]), locations, strides, ranges).numpy()
    by_location = {tuple(l): t for l, t in zip(locations.astype(int).tolist(), targets)}
    # (20, 28): inside both; near the small box's center only (the big one's is 12 away).
    t = by_location[(20, 28)]
    assert t[0] == 7 and t[1:5].tolist() == [28 - 16, 20 - 16, 40 - 28, 32 - 20]
    l, tp, r, b = t[1:5]
    assert t[5] == pytest.approx(np.sqrt(min(l, r) / max(l, r) * min(tp, b) / max(tp, b)))
    # (60, 60): inside the big box but farther than 1.5 strides from its center -> negative.
    assert by_location[(60, 60)][0] == -1 and by_location[(60, 60)][1:].tolist() == [0] * 5
    # (36, 36) near the big box's center: class 3 on level 0 (largest distance 36 <= 64).
    assert by_location[(36, 36)][0] == 3
    # The big box is not assigned on level 1: its largest distance is below 64.
    assert (targets[64:, 0] == -1).all()
    empty = fcos_targets(np.zeros((0, 4), np.float32), np.zeros((0,), np.int32), locations, strides, ranges)
    assert (empty.numpy()[:, 0] == -1).all()


def test_giou_and_focal_terms_of_the_loss():
    same = giou_loss(tf.constant([[2.0, 3.0, 4.0, 5.0]]), tf.constant([[2.0, 3.0, 4.0, 5.0]]))
    np.testing.assert_allclose(same, [0.0], atol=1e-6)
    # Disjoint by construction is impossible from one location; a smaller box inside: 1 - area ratio.
    inside = giou_loss(tf.constant([[1.0, 1.0, 1.0, 1.0]]), tf.constant([[2.0, 2.0, 2.0, 2.0]]))
    np.testing.assert_allclose(inside, [1 - 4 / 16], atol=1e-6)
    # One positive location of class 1 (of 2), one negative; perfect box, centerness target 1.
    y_true = tf.constant([[[1, 2, 2, 2, 2, 1.0], [-1, 0, 0, 0, 0, 0]]])
    logits = np.array([[0.5, -1.0], [2.0, -3.0]])
    y_pred = tf.constant([[[*logits[0], 2, 2, 2, 2, 0.0], [*logits[1], 0, 0, 0, 0, 0.0]]], tf.float32)
    p, onehot = 1 / (1 + np.exp(-logits)), np.array([[0, 1], [0, 0]])
    p_t = np.where(onehot, p, 1 - p)
    focal = (np.where(onehot, 0.25, 0.75) * (1 - p_t) ** 2 * -np.log(p_t)).sum()
    centerness = np.log(2.0)  # BCE(1, sigmoid(0))
    assert float(FCOSLoss(2)(y_true, y_pred)) == pytest.approx(focal + 0.0 + centerness, rel=1e-5)


def test_decoding_scores_boxes_threshold_and_nms():
    decode = FCOSDecode((16, 16), (8,), num_classes=2, score_threshold=0.3, iou_threshold=0.5, max_detections=5)
    # The locations: (4,4), (4,12), (12,4), (12,12).
    raw = np.full((1, 4, 7), -10.0, np.float32)
    raw[0, :, 2:6] = 2.0  # every location: a 4x4 box around itself
    raw[0, 0, [1, 6]] = [3.0, 3.0]  # class 1, strong
    raw[0, 1, [0, 6]] = [1.0, 1.0]  # class 0
    raw[0, 1, 2:6] = [6.0, 2.0, 2.0, 2.0]  # reaches left to x=6: overlaps nothing of class 0
    raw[0, 2, [1, 6]] = [-3.0, 0.0]  # weak: sqrt(0.047 * 0.5) < 0.3
    out = {k: v.numpy() for k, v in decode(raw).items()}
    assert out["num_detections"][0] == 2
    s = 1 / (1 + np.exp(-3.0))
    np.testing.assert_allclose(out["scores"][0, :2], [s, 1 / (1 + np.exp(-1.0))], rtol=1e-5)
    assert out["classes"][0, :2].tolist() == [1, 0]
    np.testing.assert_allclose(out["boxes"][0, 0], [2, 2, 6, 6])
    np.testing.assert_allclose(out["boxes"][0, 1], [2, 6, 6, 14])
    # A duplicate of the first box at a lower score is suppressed by NMS.
    raw[0, 3, [1, 6]] = [2.0, 2.0]
    raw[0, 3, 2:6] = [10.0, 10.0, -2.0, -2.0]  # box (2, 2, 10, 10): IoU with (2, 2, 6, 6) = 0.25
    assert decode(raw)["num_detections"].numpy()[0] == 3
    raw[0, 3, 2:6] = [10.0, 10.0, -6.0, -6.0]  # box (2, 2, 6, 6): identical, suppressed
    assert decode(raw)["num_detections"].numpy()[0] == 2


def test_fpn_and_towers_are_k_base_binary_and_the_head_is_shared_by_the_levels():
    model = zoo.GroupNetFCOS(**SCENES, num_bases=2, decode=False)
    assert model.output_shape == (None, 24 * 24 + 12 * 12 + 6 * 6, 15)
    tower = model.get_layer("cls_tower1_conv")
    assert len(tower._inbound_nodes) == 3 and tower.groups == 2  # one conv, called at 3 levels
    assert isinstance(tower.input_quantizer, lq.quantizers.ApproxSign)
    cost = {l.name: l for l in zoo.complexity(model).layers}
    assert cost["cls_tower1_conv"].bops == 2 * 9 * 16 * 16 * (24 * 24 + 12 * 12 + 6 * 6)
    assert cost["cls_logits"].flops == 9 * 16 * 10 * (24 * 24 + 12 * 12 + 6 * 6)
    assert cost["fpn_lateral2_conv"].bops == 2 * 32 * 16 * 24 * 24  # stage 2: 32 channels at stride 4
    for name in ("stem_conv", "cls_logits", "box_pred", "centerness"):
        assert cost[name].kind == "full precision"
    head = [l for l in cost.values() if l.name.startswith(("fpn_", "cls_tower", "box_tower")) and l.bops + l.flops]
    assert {l.kind for l in head} == {"binary"}
    decoded = zoo.GroupNetFCOS(**SCENES, num_bases=2)
    assert [w.shape for w in decoded.weights] == [w.shape for w in model.weights]
    out = decoded(np.zeros((2, 96, 96, 1), np.float32))
    assert out["boxes"].shape == (2, 100, 4) and out["num_detections"].shape == (2,)


@pytest.mark.slow
def test_raw_detector_exports_every_binary_convolution_to_lce(tmp_path):
    tf.keras.utils.set_random_seed(0)
    model = zoo.GroupNetFCOS(**SCENES, num_bases=2, decode=False)
    randomize_batch_norm(model)
    x = np.random.default_rng(0).uniform(0, 255, (2, 96, 96, 1)).astype("float32")
    flatbuffer = tflite.convert(model)
    ops = tflite.op_counts(flatbuffer)
    # Backbone 20 binary convs; FPN 2 laterals + 2 outputs + 1 extra; towers 2 x 2 convs at 3 levels.
    assert ops["LceBconv2d"] == 2 * (20 + 5 + 4 * 3)
    lite = zoo.deploy(flatbuffer)(x)
    np.testing.assert_allclose(lite, model.predict(x, verbose=0), atol=2e-3)


def test_cli_trains_publishes_and_reloads_a_detector_on_scenes(tmp_path, capsys, monkeypatch):
    from zoo.cli import main
    from zoo.weights import entries

    monkeypatch.setenv("ZOO_WEIGHTS_INDEX", str(tmp_path / "index.json"))
    out = tmp_path / "fcos"
    argv = ["TrainGroupNetFCOS", "model.num_bases=1", "model.fpn_channels=16", "epochs=1", "steps_per_epoch=3",
            "validation_steps=1", "batch_size=8", "dataset.num_train=64", "dataset.num_test=16",
            "progress_bar=False", f"output_dir={out}"]
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "GroupNetFCOS" and metrics["test_examples"] == 16
    assert 0 <= metrics["map"] <= metrics["map50"] <= 1 and metrics["options"]["fpn_channels"] == 16
    assert main(["weights", "publish", str(out), "--tag", "scenes_test"]) == 0
    top = entries()[0]
    assert top.scores["map"] == pytest.approx(metrics["map"], abs=1e-3) and top.kind == "detection"
    x = np.random.default_rng(0).uniform(0, 255, (2, 96, 96, 1)).astype("float32")
    raw = tf.keras.models.load_model(str(out / "model.h5"), compile=False)(x, training=False)
    detector = zoo.GroupNetFCOS(weights="scenes_test")
    decoded = detector(x, training=False)
    expected = FCOSDecode((96, 96), (4, 8, 16), 10)(raw)
    for key in ("boxes", "scores", "num_detections"):
        np.testing.assert_allclose(decoded[key], expected[key], atol=1e-5)


# -- COCO through tensorflow-datasets (mocked: it cannot be downloaded here) ----------------
def mock_coco(self, *args, **kwargs):
    """Two COCO-like examples: a 100x200 image with a box and a crowd box, a 50x40 one without boxes."""
    rng = np.random.default_rng(0)
    examples = [
        {"image": rng.integers(0, 256, (100, 200, 3), np.uint8),
         "objects": {"bbox": np.array([[0.1, 0.2, 0.5, 0.6], [0.0, 0.0, 1.0, 1.0]], np.float32),
                     "label": np.array([17, 0], np.int64), "is_crowd": np.array([False, True])}},
        {"image": rng.integers(0, 256, (50, 40, 3), np.uint8),
         "objects": {"bbox": np.zeros((0, 4), np.float32), "label": np.zeros((0,), np.int64),
                     "is_crowd": np.zeros((0,), bool)}},
    ]
    return tf.data.Dataset.from_generator(lambda: iter(examples), output_signature={
        "image": tf.TensorSpec((None, None, 3), tf.uint8),
        "objects": {"bbox": tf.TensorSpec((None, 4), tf.float32), "label": tf.TensorSpec((None,), tf.int64),
                    "is_crowd": tf.TensorSpec((None,), tf.bool)}})


def test_coco_pairs_are_letterboxed_with_their_boxes_and_without_crowds(monkeypatch):
    import tensorflow_datasets as tfds
    from zookeeper import configure

    from zoo.training.datasets import CocoDetection

    monkeypatch.setattr(CocoDetection, "num_examples", lambda self, split: 2)  # mock_data has no split sizes
    dataset = CocoDetection()
    configure(dataset, {"image_size": 64})
    with tfds.testing.mock_data(as_dataset_fn=mock_coco):
        first, second = list(dataset.validation()[0])
    image, boxes, classes = (t.numpy() for t in dataset.detection_pair(first, training=False))
    assert image.shape == (64, 64, 3) and classes.tolist() == [17]  # the crowd box is dropped
    np.testing.assert_allclose(boxes, [[10 * 0.32, 40 * 0.32, 50 * 0.32, 120 * 0.32]], rtol=1e-5)
    np.testing.assert_allclose(image[40, 10], [0.485 * 255, 0.456 * 255, 0.406 * 255], atol=1e-3)  # padding
    image, boxes, classes = dataset.detection_pair(second, training=True)
    assert image.shape == (64, 64, 3) and boxes.shape == (0, 4) and dataset.num_detection_classes == 80


def test_detection_task_on_mock_coco(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    from zoo.cli import main
    from zoo.training.datasets import CocoDetection

    monkeypatch.setattr(CocoDetection, "num_examples", lambda self, split: 2)
    argv = ["TrainGroupNetFCOS", "dataset=CocoDetection", "dataset.image_size=64", "model.num_bases=1",
            "model.fpn_channels=8", "epochs=1", "steps_per_epoch=1", "validation_steps=1", "batch_size=2",
            "progress_bar=False", f"output_dir={tmp_path}"]
    with tfds.testing.mock_data(as_dataset_fn=mock_coco):
        assert main(argv) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["dataset"] == "CocoDetection" and metrics["num_classes"] == 80
    assert metrics["input_shape"] == [64, 64, 3] and metrics["test_examples"] == 2


def test_whole_detector_h5_round_trip(tmp_path):
    model = zoo.GroupNetFCOS(**SCENES, num_bases=1, score_threshold=0.2, max_detections=7)
    randomize_batch_norm(model)
    model.save(tmp_path / "fcos.h5")
    loaded = tf.keras.models.load_model(tmp_path / "fcos.h5")
    x = np.random.default_rng(1).uniform(0, 255, (2, 96, 96, 1)).astype("float32")
    mine, theirs = model(x, training=False), loaded(x, training=False)
    assert theirs["boxes"].shape == (2, 7, 4)
    for key in mine:
        np.testing.assert_allclose(theirs[key], mine[key], atol=1e-5)
