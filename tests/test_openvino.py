"""OpenVINO export (`zoo.export(..., format="openvino")`, `zoo export --format openvino`)
and `zoo.deploy`: every binary convolution a `BinaryConvolution`, outputs equal to
Keras' (sign(0) = +1, zero and +1 padding, strides, atrous rates, per-channel scales),
the float twin, a layer that cannot be binarized named, one-line errors."""
import sys

import larq as lq
import numpy as np
import pytest
import tensorflow as tf
from helpers import randomize_batch_norm

import zoo
from zoo import openvino_ir, tflite, weights
from zoo.cli import main
from zoo.complexity import binary_convolutions
from zoo.training.evaluation import sample_images


def quant_conv(filters, **options):
    options = {"padding": "same", "use_bias": False, "input_quantizer": "ste_sign",
               "kernel_quantizer": "magnitude_aware_sign", **options}
    return lq.layers.QuantConv2D(filters, 3, **options)


def run(ov_model, x):
    compiled = openvino_ir.compile_model(ov_model, 1, "f32")
    return np.concatenate([compiled(image[None])[0] for image in x])


@pytest.mark.parametrize("options", [
    dict(pad_values=0.0), dict(pad_values=1.0), dict(strides=2), dict(strides=2, pad_values=1.0),
    dict(dilation_rate=2, pad_values=1.0), dict(use_bias=True),
], ids=["zero padding", "+1 padding", "stride 2", "stride 2, +1 padding", "dilated", "bias"])
def test_a_binary_convolution_equals_larqs_at_sign_ties_and_borders(options):
    inputs = tf.keras.Input((9, 9, 24))
    # After a ReLU many inputs are exactly 0, where larq's sign is +1.
    x = tf.keras.layers.ReLU()(tf.keras.layers.Conv2D(24, 1, name="stem")(inputs))
    outputs = quant_conv(40, name="binary", **options)(x)
    model = tf.keras.Model(inputs, outputs)
    tf.keras.utils.set_random_seed(1)
    binary = model.get_layer("binary")
    binary.set_weights([np.random.normal(size=w.shape) for w in binary.get_weights()])
    x = np.random.default_rng(0).normal(size=(4, 9, 9, 24)).astype("float32")
    ov_model = openvino_ir.convert(model)
    assert openvino_ir.op_counts(ov_model)[openvino_ir.BINARY_OP] == 1 and openvino_ir.fallbacks(model, ov_model) == ()
    assert (model.get_layer("stem")(x).numpy() <= 0).mean() > 0.3  # ties and negatives both occur
    np.testing.assert_allclose(run(ov_model, x), model.predict(x, verbose=0), atol=2e-5, rtol=1e-5)


def test_a_binary_layer_reading_the_input_directly_converts_and_runs():
    # OpenVINO's CPU plugin crashes on a binarizing FakeQuantize right after a Transpose;
    # the converter puts an identity depthwise convolution between them.
    inputs = tf.keras.Input((6, 6, 16))
    model = tf.keras.Model(inputs, quant_conv(16, pad_values=1.0)(inputs))
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 16)).astype("float32")
    np.testing.assert_allclose(run(openvino_ir.convert(model), x), model.predict(x, verbose=0), atol=1e-5)


def test_the_float_twin_is_the_network_without_signs():
    inputs = tf.keras.Input((8, 8, 16))
    binary = tf.keras.Model(inputs, quant_conv(32, pad_values=1.0)(tf.keras.layers.BatchNormalization()(inputs)))
    plain_conv = lq.layers.QuantConv2D(32, 3, padding="same", use_bias=False)
    plain = tf.keras.Model(inputs, plain_conv(binary.layers[1].output))
    plain.layers[-1].set_weights(binary.layers[-1].get_weights())
    twin = openvino_ir.convert(binary, binary=False)
    ops = openvino_ir.op_counts(twin)
    assert ops[openvino_ir.BINARY_OP] == ops["FakeQuantize"] == 0 and ops["Convolution"] == 1
    x = np.random.default_rng(0).normal(size=(2, 8, 8, 16)).astype("float32")
    np.testing.assert_allclose(run(twin, x), plain.predict(x, verbose=0), atol=1e-4, rtol=1e-5)


def dense(name, **kwargs):
    return lambda: zoo.get_model_spec(name).build(input_shape=(64, 64, 1), num_classes=11, num_bases=2, **kwargs)


# One model of every family and every kind of binary layer: Bi-Real's magnitude-aware
# signs, IR-Net's Libra-PB power-of-two scales (ResNet and VGG-Small), Group-Net's
# fused bases, soft gates and per-base scales, the dense heads' atrous rates (ASPP).
@pytest.mark.parametrize("build", [
    lambda: zoo.BiRealNet20(input_shape=(28, 28, 1)),
    lambda: zoo.IRNetResNet20(input_shape=(28, 28, 1)),
    lambda: zoo.IRNetVGGSmall(input_shape=(28, 28, 1)),
    lambda: zoo.GroupNetResNet20(input_shape=(28, 28, 1), num_bases=3),
    dense("GroupNetDeepLab"),
    dense("GroupNetFCOS", decode=False),
], ids=["Bi-Real", "IR-Net", "IR-Net VGG-Small", "Group-Net K=3", "Group-Net DeepLab", "Group-Net FCOS"])
def test_every_family_exports_every_binary_convolution_and_matches_keras(build, tmp_path):
    tf.keras.utils.set_random_seed(0)
    model = build()
    randomize_batch_norm(model)
    images = sample_images(tuple(model.input_shape[1:]), 16)[0]
    report = zoo.export(model, tmp_path / "model.xml", images, format="openvino", precision="f32")
    expected = sum(n for _, n in binary_convolutions(model))
    assert report.fallbacks == () and report.ops["BinaryConvolution"] == report.binary_convolutions == expected > 0
    assert report.ops["FakeQuantize"] == expected and report.precision == "f32"
    assert report.max_abs_diff < 1e-2 and report.top1_agreement == 1.0
    assert (tmp_path / "model.bin").stat().st_size * 4 < report.float_size


def test_a_layer_that_cannot_be_binarized_is_named():
    # A Heaviside step is 1-bit (counted as binary) but not a sign: it stays a float conv.
    inputs = tf.keras.Input((6, 6, 8))
    x = quant_conv(8, name="converts", kernel_quantizer="ste_sign")(inputs)  # integer sums, exact ties
    x = lq.layers.QuantConv2D(8, 3, padding="same", input_quantizer="ste_heaviside",
                              kernel_quantizer="ste_sign", name="heaviside")(x)
    model = tf.keras.Model(inputs, x)
    ov_model = openvino_ir.convert(model)
    assert openvino_ir.fallbacks(model, ov_model) == ("heaviside",)
    x = np.random.default_rng(0).normal(size=(2, 6, 6, 8)).astype("float32")
    np.testing.assert_allclose(run(ov_model, x), model.predict(x, verbose=0), atol=1e-4)


def test_cli_exports_a_published_checkpoint_to_openvino(tmp_path, capsys):
    out = tmp_path / "birealnet20.xml"
    assert main(["export", "BiRealNet20", "--weights", "fashion_mnist", "--format", "openvino",
                 "--out", str(out), "--images", "200", "--precision", "f32"]) == 0
    printed = capsys.readouterr().out
    assert "BinaryConvolution 18 of 18 binary convolutions; fell back to float: none" in printed
    assert "top-1 agreement 100.00%" in printed and "float part f32" in printed
    assert openvino_ir.op_counts(openvino_ir.read(out))["BinaryConvolution"] == 18
    assert sys.modules["openvino_telemetry"] is None  # OpenVINO's telemetry never loaded


def test_deploy_runs_every_format_with_any_thread_count(tmp_path):
    model = zoo.BiRealNet20(weights="fashion_mnist")
    images = sample_images((28, 28, 1), 20)[0]
    keras = model.predict(images, verbose=0).argmax(-1)
    (tmp_path / "float.tflite").write_bytes(tflite.convert_float(model))
    zoo.export(model, tmp_path / "lce.tflite", images, format="lce", float_baseline=False)
    zoo.export(model, tmp_path / "model.xml", images, format="openvino", float_baseline=False)
    for name, fmt in (("float.tflite", "tflite"), ("lce.tflite", "lce"), ("model.xml", "openvino")):
        for threads in (1, 2):
            deployed = zoo.deploy(tmp_path / name, num_threads=threads)
            assert deployed.format == fmt and deployed.input_shape == (1, 28, 28, 1)
            assert (deployed(images).argmax(-1) == keras).all()
    with pytest.raises(ValueError, match=r"shape \(N, 28, 28, 1\)"):
        deployed(np.zeros((2, 32, 32, 3)))


def empty(path):
    path.write_bytes(b"")
    return path


@pytest.mark.parametrize("call, message", [
    (lambda p: zoo.deploy(p / "missing.xml"), "no exported model at .*missing.xml"),
    (lambda p: zoo.deploy(empty(p / "model.onnx")), "neither an OpenVINO IR"),
    (lambda p: zoo.export(zoo.BiRealNet20(input_shape=(28, 28, 1)), p / "m.tflite", format="openvino"),
     'format="openvino" writes a .xml file'),
    (lambda p: zoo.export(zoo.BiRealNet20(input_shape=(28, 28, 1)), p / "m.xml", format="onnx"),
     "format must be one of lce, openvino"),
    (lambda p: openvino_ir.resolve_precision("fp8"), "precision must be one of auto, f32, bf16"),
    (lambda p: openvino_ir.convert(dense("GroupNetFCOS")()), "cannot convert .*CombinedNonMaxSuppression"),
])
def test_bad_input_is_named(call, message, tmp_path):
    with pytest.raises((ValueError, FileNotFoundError), match=message):
        call(tmp_path)


def test_auto_precision_is_bf16_only_where_the_cpu_has_amx(monkeypatch):
    monkeypatch.setattr("zoo.stack.cpu_flags", lambda: {"avx512f", "avx512_bf16"})
    assert openvino_ir.resolve_precision("auto") == "f32"
    monkeypatch.setattr("zoo.stack.cpu_flags", lambda: {"avx512f", "amx_bf16", "amx_tile"})
    assert openvino_ir.resolve_precision("auto") == "bf16"


def test_without_openvino_the_export_is_a_one_line_error(monkeypatch, tmp_path, capsys):
    monkeypatch.setitem(sys.modules, "openvino", None)
    code = main(["export", "BiRealNet20", "--format", "openvino", "--out", str(tmp_path / "m.xml"), "--images", "5"])
    error = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in error and "OpenVINO is not installed" in error and "[openvino]" in error
    assert not (tmp_path / "m.xml").exists()


# The binary checkpoints: the float twins (`...FP`) are published as reference scores
# and have no binary operation; the float path of an export is tested above.
PUBLISHED = [e for e in weights.entries() if e.include_top and not e.model.endswith("FP")]


@pytest.mark.parametrize("entry", PUBLISHED, ids=lambda e: f"{e.model}-{e.tag}")
def test_every_published_checkpoint_exports_and_agrees_with_keras(entry, tmp_path):
    # benchmarks/export_parity.py measures the same over the whole test split.
    spec = zoo.get_model_spec(entry.model)
    model = spec.constructor(weights=entry.tag, **spec.kind.export_arguments)
    images = sample_images(tuple(model.input_shape[1:]), 100)[0]
    report = zoo.export(model, tmp_path / "model.xml", images, format="openvino", precision="f32")
    assert report.fallbacks == () and report.ops["BinaryConvolution"] == report.binary_convolutions
    assert report.binary_convolutions > 0
    keras = tf.nest.flatten(model.predict(images, verbose=0))[0][..., :entry.num_classes].argmax(-1)
    exported = tf.nest.flatten(zoo.deploy(report.path)(images))[0][..., :entry.num_classes].argmax(-1)
    assert (keras == exported).mean() >= 0.995
