"""Training tasks: real Fashion-MNIST, resume, the two-stage recipe, tf.distribute, mock ImageNet."""
import csv
import json

import numpy as np
import pytest
import tensorflow as tf
from zookeeper import configure

import zoo
from zoo.cli import main
from zoo.quantizers import Clip
from zoo.training.recipes import TrainBiRealNet20

QUICK = dict(steps_per_epoch=4, validation_steps=2, batch_size=16, progress_bar=False)


def make(task_cls, out, **overrides):
    task = task_cls()
    configure(task, {"output_dir": str(out), **QUICK, **overrides})
    return task


def history_epochs(path):
    with open(path, newline="") as f:
        return [int(row["epoch"]) for row in csv.DictReader(f)]


class Interrupted(Exception):
    pass


class InterruptAfter(tf.keras.callbacks.Callback):
    """Records the state after an epoch (the backup is written before), then dies."""

    def __init__(self, epoch):
        super().__init__()
        self.epoch = epoch

    def on_epoch_end(self, epoch, logs=None):
        if epoch == self.epoch:
            self.weights = self.model.get_weights()
            self.iterations = int(self.model.optimizer.iterations)
            raise Interrupted()


class Probe(tf.keras.callbacks.Callback):
    """Records the state a stage starts from (after BackupAndRestore restored it)."""

    def __init__(self):
        super().__init__()
        self.starts, self.epochs = [], []

    def on_train_begin(self, logs=None):
        self.starts.append((self.model.get_weights(), int(self.model.optimizer.iterations)))

    def on_epoch_begin(self, epoch, logs=None):
        self.epochs.append(epoch)


def test_cli_trains_on_real_fashion_mnist_and_evaluates_the_run(tmp_path, capsys):
    out = tmp_path / "run"
    argv = ["TrainBiRealNet20", "epochs=1", *(f"{k}={v}" for k, v in QUICK.items()), f"output_dir={out}"]
    assert main(argv) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "BiRealNet20" and metrics["dataset"] == "FashionMNIST"
    assert metrics["test_examples"] == 10_000 and metrics["input_shape"] == [28, 28, 1]
    assert 0.0 < metrics["top1"] <= metrics["top5"] <= 1.0
    assert metrics["command"].startswith("zoo TrainBiRealNet20 epochs=1")
    assert metrics["bops"] == 30_707_712 and metrics["wall_time_seconds"] > 0
    for name in ("model.h5", "model.weights.h5", "history.csv", "config.txt", "logs"):
        assert (out / name).exists(), name
    capsys.readouterr()
    assert main(["evaluate", str(out)]) == 0
    assert f"top-1 {metrics['top1']:.2%}" in capsys.readouterr().out


def test_an_interrupted_run_resumes_where_it_stopped(tmp_path):
    interrupt = InterruptAfter(epoch=1)
    with pytest.raises(Interrupted):
        make(TrainBiRealNet20, tmp_path, epochs=3, callbacks=[interrupt]).run()
    assert not (tmp_path / "metrics.json").exists()

    probe = Probe()
    make(TrainBiRealNet20, tmp_path, epochs=3, callbacks=[probe]).run()
    (weights, iterations), = probe.starts
    assert probe.epochs == [2]  # only the epoch that was missing
    assert iterations == interrupt.iterations == 2 * QUICK["steps_per_epoch"]
    for restored, saved in zip(weights, interrupt.weights):
        np.testing.assert_array_equal(restored, saved)
    assert history_epochs(tmp_path / "history.csv") == [0, 1, 2]
    assert json.loads((tmp_path / "metrics.json").read_text())["epochs"] == 3

    again = Probe()  # a finished run is not trained again
    make(TrainBiRealNet20, tmp_path, epochs=3, callbacks=[again]).run()
    assert again.starts == []


def test_two_stage_recipe_initialises_the_binary_net_from_the_real_valued_twin(tmp_path):
    probe = Probe()
    task = make(TrainBiRealNet20, tmp_path, pretrain_epochs=1, epochs=1, callbacks=[probe])
    task.run()
    twin = task.pretrain_model
    convs = [l for l in twin.layers if hasattr(l, "input_quantizer") and l.input_quantizer]
    assert len(convs) == 18 and all(isinstance(l.input_quantizer, Clip) for l in convs)
    assert all(l.kernel_quantizer is None for l in convs)
    assert len(probe.starts) == 2
    stage2_start, _ = probe.starts[1]
    for a, b in zip(stage2_start, twin.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert (tmp_path / "pretrain" / "model.weights.h5").exists()
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["pretrain_epochs"] == 1
    assert history_epochs(tmp_path / "pretrain" / "history.csv") == [0]


def test_imagenet_task_on_mock_data(tmp_path, monkeypatch):
    import tensorflow_datasets as tfds

    from zoo.training.datasets import ImageNet

    monkeypatch.setattr(ImageNet, "num_examples", lambda self, split: 4)
    argv = ["TrainBiRealNet18", "epochs=1", "pretrain_epochs=0", "steps_per_epoch=1",
            "validation_steps=1", "batch_size=2", "progress_bar=False", f"output_dir={tmp_path}"]
    with tfds.testing.mock_data(num_examples=4):
        assert main(argv) == 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["model"] == "BiRealNet18" and metrics["input_shape"] == [224, 224, 3]
    assert metrics["num_classes"] == 1000 and metrics["test_examples"] == 4
    assert history_epochs(tmp_path / "history.csv") == [0]


def test_resumed_irnet_run_continues_the_ede_schedule(tmp_path):
    from zoo.quantizers import ede_t_k
    from zoo.training.recipes import TrainIRNetResNet20

    with pytest.raises(Interrupted):
        make(TrainIRNetResNet20, tmp_path, epochs=3, callbacks=[InterruptAfter(epoch=0)]).run()
    make(TrainIRNetResNet20, tmp_path, epochs=3).run()
    with open(tmp_path / "history.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["epoch"]) for r in rows] == [0, 1, 2]
    t_min = zoo.get_model_spec("IRNetResNet20").factory().ede_t_min  # the official script's 1e-3
    expected = [ede_t_k(e / 3, t_min=t_min) for e in range(3)]
    np.testing.assert_allclose([(float(r["ede_t"]), float(r["ede_k"])) for r in rows], expected, rtol=1e-6)


def test_groupnet_two_stages_share_the_architecture_set_on_the_task(tmp_path):
    from zoo.quantizers import Tanh
    from zoo.training.recipes import TrainGroupNetResNet20

    probe = Probe()
    task = make(TrainGroupNetResNet20, tmp_path, num_bases=2, aggregation="mean",
                pretrain_epochs=1, epochs=1, steps_per_epoch=2, callbacks=[probe])
    task.run()
    twin, binary = task.pretrain_model, task.model
    assert twin.get_layer("stage1_block1_conv1_conv").groups == 2 == binary.get_layer("stage1_block1_conv1_conv").groups
    assert isinstance(twin.get_layer("stage1_block1_conv1_conv").input_quantizer, Tanh)
    assert twin.get_layer("stage1_block1_conv1_conv").kernel_quantizer is None
    stage2_start, _ = probe.starts[1]
    for a, b in zip(stage2_start, twin.get_weights()):
        np.testing.assert_array_equal(a, b)
