"""Distillation from a teacher (`teacher=`): the loss against its formula, a real run
from a published teacher leaving the student alone in its files, and the errors."""
import json

import numpy as np
import pytest
import tensorflow as tf
from zookeeper import configure

from zoo.cli import main
from zoo.training.distillation import Distiller
from zoo.training.recipes import TrainBiRealNet20

QUICK = dict(steps_per_epoch=3, validation_steps=1, batch_size=16, progress_bar=False, epochs=1, precision="float32")


def softmax_model(seed):
    tf.keras.utils.set_random_seed(seed)
    inputs = tf.keras.Input((6,))
    return tf.keras.Model(inputs, tf.keras.layers.Dense(4, activation="softmax")(inputs))


@pytest.mark.parametrize("weight", [1.0, 0.0, 0.3])
def test_the_loss_is_the_weighted_kl_to_the_teacher_and_cross_entropy_and_only_the_student_learns(weight):
    student, teacher = softmax_model(0), softmax_model(1)
    x = np.random.default_rng(2).normal(size=(8, 6)).astype("float32")
    y = tf.one_hot(np.arange(8) % 4, 4).numpy()
    p, q = student(x).numpy(), teacher(x).numpy()
    kl = np.mean(np.sum(q * np.log(q / p), axis=1))
    ce = np.mean(-np.sum(y * np.log(p), axis=1))
    before = [w.numpy() for w in teacher.weights], [w.numpy() for w in student.weights]

    distiller = Distiller(student, teacher, weight)
    distiller.compile(optimizer=tf.keras.optimizers.SGD(0.1), loss=tf.keras.losses.CategoricalCrossentropy(),
                      metrics=[tf.keras.metrics.CategoricalAccuracy(name="accuracy")])
    logs = distiller.train_on_batch(x, y, return_dict=True)
    assert logs["loss"] == pytest.approx(weight * kl + (1 - weight) * ce, rel=1e-4)
    assert logs["distillation"] == pytest.approx(kl, rel=1e-4)
    for w, w0 in zip(teacher.weights, before[0]):
        np.testing.assert_array_equal(w.numpy(), w0)
    assert any(not np.array_equal(w.numpy(), w0) for w, w0 in zip(student.weights, before[1]))


def test_a_run_distils_from_a_published_teacher_and_keeps_only_the_student(tmp_path, capsys):
    out = tmp_path / "run"
    task = TrainBiRealNet20()
    configure(task, {"output_dir": str(out), "teacher": "BiRealNet20FP:fashion_mnist", **QUICK})
    metrics = task.run()
    assert 0.0 < metrics["top1"] <= 1.0
    history = (out / "history.csv").read_text().splitlines()
    assert "distillation" in history[0].split(",")
    saved = tf.keras.models.load_model(out / "model.h5", compile=False)
    assert saved.name == task.model.name and len(saved.weights) == len(task.model.weights)
    config = json.loads((out / "run.json").read_text())["config"]
    assert config["teacher"] == "BiRealNet20FP:fashion_mnist" and config["distill_weight"] == "1.0"


@pytest.mark.parametrize("setting, says", [
    ("teacher=nonsense", "teacher=nonsense is neither a run folder nor MODEL:TAG"),
    ("teacher=BiRealNet20FP:no_such_tag", "no_such_tag"),
    ("teacher=GroupNetFCN:fashion_mnist_scenes_k1", "GroupNetFCN needs images of at least 32x32 pixels"),
    ("distill_weight=1.5", "distill_weight=1.5 is not in [0, 1]"),
])
def test_a_bad_teacher_is_one_line(setting, says, tmp_path, capsys):
    argv = ["TrainBiRealNet20", setting, *(f"{k}={v}" for k, v in QUICK.items()), f"output_dir={tmp_path / 'r'}"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert says in err and err.count("\n") == 1


def test_only_a_classifier_distils(tmp_path, capsys):
    assert main(["TrainGroupNetFCN", "teacher=BiRealNet20FP:fashion_mnist", f"output_dir={tmp_path / 'r'}"]) == 2
    assert "teacher= distils a classifier; GroupNetFCN is a segmentation model" in capsys.readouterr().err
