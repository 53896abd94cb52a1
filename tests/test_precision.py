"""The `precision` setting: what "auto" picks and why, bfloat16 training that leaves
float32 checkpoints, model files and scores, and a resumed run that keeps its choice."""
import json

import h5py
import numpy as np
import pytest
import tensorflow as tf
from zookeeper import configure

import zoo
from zoo.cli import main
from zoo.training import precision
from zoo.training.recipes import TrainBiRealNet20

QUICK = dict(steps_per_epoch=3, validation_steps=1, batch_size=16, progress_bar=False, epochs=1)


def fake_cpu(monkeypatch, flags):
    monkeypatch.setattr("zoo.stack.cpu_flags", lambda: set(flags))


@pytest.mark.parametrize("setting, flags, steps, speedup, ran, why", [
    ("float32", {"avx512_bf16"}, 10**6, 9.0, "float32", "set"),
    ("mixed_bfloat16", set(), 10, 0.1, "mixed_bfloat16", "set"),
    ("auto", {"avx512f"}, 10**6, 9.0, "float32", "no native bfloat16"),
    ("auto", {"avx512_bf16"}, 100, 9.0, "float32", "a short run (100 steps)"),
    ("auto", {"amx_bf16"}, 10**6, 1.30, "mixed_bfloat16", "1.30x as fast as float32 (at least 1.05)"),
    ("auto", {"avx512_bf16"}, 10**6, 0.93, "float32", "0.93x as fast as float32 (below 1.05)"),
])
def test_auto_picks_bfloat16_only_where_the_cpu_has_it_and_the_probe_finds_it_faster(
        setting, flags, steps, speedup, ran, why, monkeypatch):
    fake_cpu(monkeypatch, flags)
    measured = []

    def measure():
        measured.append(1)
        return {"float32_ms": 100.0, "mixed_bfloat16_ms": 100.0 / speedup, "speedup": speedup}

    decision = precision.choose(setting, measure, steps)
    assert decision["ran"] == ran and why in decision["why"] and decision["setting"] == setting
    assert bool(measured) == ("x as fast" in why)  # probed only when it decides


def test_probe_times_each_precision_on_a_model_built_in_it():
    built = []

    def build():
        inputs = tf.keras.Input((8,))
        model = tf.keras.Model(inputs, tf.keras.layers.Dense(2, dtype="float32")(tf.keras.layers.Dense(16)(inputs)))
        built.append(model.layers[1].compute_dtype)
        return model

    x, y = np.ones((4, 8), "float32"), np.zeros((4, 2), "float32")
    timing = precision.probe(build, lambda m: m.compile(optimizer="adam", loss="mse"), (x, y), 1, 1, 1)
    assert built == ["float32", "bfloat16"]
    assert timing["float32_ms"] > 0 and timing["mixed_bfloat16_ms"] > 0
    assert timing["speedup"] == pytest.approx(timing["float32_ms"] / timing["mixed_bfloat16_ms"], rel=0.01)
    assert tf.keras.mixed_precision.global_policy().name == "float32"  # restored


# One small classifier per set of quantizers: Bi-Real's, IR-Net's 1W/1A and 1W/32A, Group-Net's.
QUANTIZER_SETS = ["BiRealNet20", "IRNetResNet20", "IRNetResNet20W1A32", "GroupNetResNet20"]


@pytest.mark.parametrize("name", QUANTIZER_SETS)
def test_every_small_classifier_trains_under_mixed_bfloat16(name):
    """"auto" may pick bfloat16 for any run: each quantizer computes in it (IR-Net's
    Libra-PB statistics in float32, cast back), and the loss and gradients are finite."""
    with precision.policy("mixed_bfloat16"):
        model = zoo.get_model_spec(name).build(input_shape=(28, 28, 1))
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    x = np.random.default_rng(0).uniform(0, 255, (8, 28, 28, 1)).astype("float32")
    loss = model.train_on_batch(x, np.arange(8) % 10)
    assert np.isfinite(loss) and model.output.dtype == tf.float32
    assert any(layer.compute_dtype == "bfloat16" for layer in model.layers)


def test_the_probe_rebuilds_the_model_the_run_trains():
    """"auto" times a rebuild of the run's model: every setting kept (the scenes
    detector's `backbone_options` once fell away, and the probe timed another network)."""
    factory = zoo.get_model_spec("GroupNetFCOS").factory(
        input_shape=(96, 96, 1), num_classes=10, num_bases=1, backbone="GroupNetResNet20",
        backbone_options={"stem_strides": 2}, output_stride=None, fpn_stages=(2, 3), decode=False)
    built, rebuilt = factory.build(), factory.rebuild()
    assert [w.shape for w in rebuilt.weights] == [w.shape for w in built.weights]
    assert [o.shape for o in rebuilt.outputs] == [o.shape for o in built.outputs]


def test_a_bfloat16_run_leaves_float32_files_and_scores_and_keeps_its_choice_on_resume(tmp_path, monkeypatch,
                                                                                        capsys):
    fake_cpu(monkeypatch, {"avx512_bf16"})
    monkeypatch.setattr(precision, "PROBE_FROM_STEPS", 1)
    monkeypatch.setattr(precision, "probe", lambda *a: {"float32_ms": 2.0, "mixed_bfloat16_ms": 1.0, "speedup": 2.0})
    out = tmp_path / "run"
    task = TrainBiRealNet20()
    configure(task, {"output_dir": str(out), **QUICK})
    metrics = task.run()
    assert task.model.compute_dtype == "bfloat16"  # what trained
    assert tf.keras.mixed_precision.global_policy().name == "float32"
    record = json.loads((out / "run.json").read_text())["precision"]
    assert record["ran"] == metrics["precision"] == "mixed_bfloat16" and record["speedup"] == 2.0

    saved = tf.keras.models.load_model(out / "model.h5", compile=False)
    assert {layer.compute_dtype for layer in saved.layers} == {"float32"}
    with h5py.File(out / "model.weights.h5") as f:
        dtypes = set()
        f.visititems(lambda name, item: dtypes.add(item.dtype) if isinstance(item, h5py.Dataset) else None)
    assert dtypes == {np.dtype("float32")}
    capsys.readouterr()
    assert main(["evaluate", str(out)]) == 0  # float32, as metrics.json's
    assert f"top-1 {metrics['top1']:.2%}" in capsys.readouterr().out

    monkeypatch.setattr(precision, "probe", lambda *a: {"float32_ms": 1.0, "mixed_bfloat16_ms": 2.0, "speedup": 0.5})
    again = TrainBiRealNet20()
    configure(again, {"output_dir": str(out), **QUICK})
    assert again.choose_precision(out) == "mixed_bfloat16"  # the run's own choice, not a new probe


def test_an_unknown_precision_is_refused_before_anything_is_written(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["TrainBiRealNet20", "precision=bfloat16", f"output_dir={out}"]) == 2
    assert "precision=bfloat16 is not one of auto, float32, mixed_bfloat16" in capsys.readouterr().err
    assert not out.exists()
