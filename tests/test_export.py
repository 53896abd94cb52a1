"""Larq Compute Engine export (`zoo.export`, `zoo export`): one model of each family
converted, every binary convolution an `LceBconv2d`, outputs equal to Keras' on real
Fashion-MNIST test images, the file smaller than the float TFLite model."""
import larq as lq
import numpy as np
import pytest
import tensorflow as tf
from helpers import randomize_batch_norm

import zoo
from zoo import tflite
from zoo.cli import main
from zoo.complexity import binary_convolutions, complexity
from zoo.quantizers import GroupNetWeightSign
from zoo.training.evaluation import sample_images


def full_precision_convolutions(model):
    return sum(1 for l in complexity(model).layers if l.flops and l.kind == "full precision" and "conv" in l.name)


# An untrained net leaves pre-activations near a sign's tie, where float rounding may
# flip a sign after conversion; randomized batch norm makes ties rare, and the image
# counts are ones at which these seeded draws have none (a trained net has none either).
# The float conversion (the size baseline) is the slower of the two: made once here.
@pytest.mark.parametrize("build, count, float_baseline", [
    (lambda: zoo.IRNetResNet20(input_shape=(28, 28, 1)), None, True),  # export's default: 100 images
    (lambda: zoo.GroupNetResNet20(input_shape=(28, 28, 1), num_bases=3), 32, False),  # fused bases
], ids=["IR-Net", "Group-Net K=3"])
def test_export_converts_every_binary_convolution_and_matches_keras(build, count, float_baseline, tmp_path):
    tf.keras.utils.set_random_seed(0)
    model = build()
    randomize_batch_norm(model)
    images = None if count is None else sample_images((28, 28, 1), count)[0]
    report = zoo.export(model, tmp_path / "model.tflite", images, float_baseline=float_baseline)
    expected = sum(n for _, n in binary_convolutions(model))
    assert report.fallbacks == () and report.ops["LceBconv2d"] == report.binary_convolutions == expected
    assert report.ops["CONV_2D"] == full_precision_convolutions(model)
    assert report.ops["LceDequantize"] == 0
    assert report.max_abs_diff < 1e-4 and report.top1_agreement == 1.0 and report.images == (count or 100)
    keras = model.predict(sample_images((28, 28, 1), report.images)[0], verbose=0)
    assert keras.max(1).min() < 0.99  # not a saturated, trivially equal softmax
    assert tflite.op_counts((tmp_path / "model.tflite").read_bytes()) == report.ops  # the file is what was checked
    if float_baseline:
        assert report.size * 8 < report.float_size and "x larger" in report.summary()
    else:
        assert report.float_size is None and "the float conversion was not made" in report.summary()


def test_group_net_k3_has_three_lce_bconv2d_per_binary_layer():
    model = zoo.GroupNetResNet20(input_shape=(28, 28, 1), num_bases=3)
    layers = binary_convolutions(model)
    assert len(layers) == 20 and {n for _, n in layers} == {3}  # 18 3x3 convs, 2 downsamplings


def test_cli_exports_a_published_checkpoint(tmp_path, capsys):
    out = tmp_path / "birealnet20.tflite"
    assert main(["export", "BiRealNet20", "--weights", "fashion_mnist", "--out", str(out), "--images", "50",
                 "--no-float-baseline"]) == 0
    printed = capsys.readouterr().out
    assert "the float conversion was not made" in printed
    assert "LceBconv2d 18 of 18 binary convolutions; fell back to float: none" in printed
    assert "top-1 agreement 100.00%" in printed and "the first 50 Fashion-MNIST test images" in printed
    assert tflite.op_counts(out.read_bytes())["LceBconv2d"] == 18


def test_a_binary_layer_that_falls_back_to_float_is_named():
    # LCE 0.16 keeps larq's native grouped binary conv with 16 channels per group as a
    # float CONV_2D (tests/test_groupnet.py); the report must name it.
    inputs = tf.keras.Input((6, 6, 32))
    x = lq.layers.QuantConv2D(32, 3, padding="same", pad_values=1.0, use_bias=False, name="converts",
                              input_quantizer="approx_sign", kernel_quantizer="magnitude_aware_sign")(inputs)
    x = lq.layers.QuantConv2D(32, 3, groups=2, padding="same", pad_values=1.0, use_bias=False, name="grouped",
                              input_quantizer="approx_sign", kernel_quantizer=GroupNetWeightSign(groups=2))(x)
    model = tf.keras.Model(inputs, x)
    assert tflite.fallbacks(model, tflite.convert(model)) == ("grouped",)


def test_images_that_do_not_fit_the_model_are_refused(tmp_path):
    model = zoo.BiRealNet20(input_shape=(28, 28, 1))
    with pytest.raises(ValueError, match=r"shape \(N, 28, 28, 1\)"):
        zoo.export(model, tmp_path / "m.tflite", np.zeros((2, 32, 32, 3)))
    assert not (tmp_path / "m.tflite").exists()


def test_sample_images_fit_any_input():
    images, description = sample_images((40, 36, 3), 4)
    assert images.shape == (4, 40, 36, 3) and images.max() > 100
    assert "resized to 40x36" in description and "gray in 3 channels" in description
