"""Bi-Real Net's quantizers, as wired into the models, against the paper's formulas; the
fused backward passes against Larq's op-by-op ones."""
import contextlib

import larq as lq
import numpy as np
import pytest
import tensorflow as tf
from helpers import value_and_grad

import zoo
from zoo import fused, quantizers
from zoo.blocks import HardTanh
from zoo.quantizers import Clip, EDESign, GroupNetWeightSign, LeakyClip, LibraPBSign, Tanh


def _binary_conv(model):
    return next(l for l in model.layers
                if isinstance(l, lq.layers.QuantConv2D) and l.input_quantizer.precision == 1)


@pytest.fixture(scope="module")
def conv():
    return _binary_conv(zoo.BiRealNet20(input_shape=(28, 28, 1)))


def test_activation_forward_is_sign_with_zero_to_plus_one(conv):
    x = np.array([-2.0, -0.5, 0.0, 0.3, 4.0], "float32")
    np.testing.assert_array_equal(conv.input_quantizer(x).numpy(), [-1, -1, 1, 1, 1])


def test_activation_gradient_is_approxsign(conv):
    # Derivative of the piecewise polynomial: 2 + 2x on [-1, 0), 2 - 2x on [0, 1), 0 elsewhere.
    x = np.linspace(-1.5, 1.5, 61).astype("float32")
    _, grad = value_and_grad(conv.input_quantizer, x)
    expected = np.where(x < -1, 0, np.where(x < 0, 2 + 2 * x, np.where(x < 1, 2 - 2 * x, 0)))
    np.testing.assert_allclose(grad, expected, atol=1e-6)


def test_weight_forward_is_per_channel_mean_abs_times_sign(conv):
    w = np.random.default_rng(0).normal(0, 0.5, (3, 3, 4, 5)).astype("float32")
    alpha = np.abs(w).mean(axis=(0, 1, 2))
    expected = alpha * np.where(w >= 0, 1.0, -1.0)
    np.testing.assert_allclose(conv.kernel_quantizer(w).numpy(), expected, rtol=1e-6)


def test_weight_gradient_is_magnitude_aware(conv):
    # dL/dW = dL/dWb * alpha_c * 1{|W| <= 1}, alpha_c under stop-gradient.
    rng = np.random.default_rng(1)
    w = rng.normal(0, 0.8, (3, 3, 4, 5)).astype("float32")
    upstream = rng.normal(size=w.shape).astype("float32")
    _, grad = value_and_grad(lambda v: tf.reduce_sum(conv.kernel_quantizer(v) * upstream), w)
    alpha = np.abs(w).mean(axis=(0, 1, 2))
    np.testing.assert_allclose(grad, upstream * alpha * (np.abs(w) <= 1), rtol=1e-5, atol=1e-7)


def test_latent_weights_are_clipped(conv):
    assert isinstance(conv.kernel_constraint, lq.constraints.WeightClip)
    assert conv.kernel_constraint.clip_value == 1.0


def test_clip_forward_and_gradient():
    x = np.array([-3.0, -1.0, -0.2, 0.7, 2.0], "float32")
    y, grad = value_and_grad(lambda v: Clip()(v), x)
    np.testing.assert_allclose(y, [-1, -1, -0.2, 0.7, 1])
    np.testing.assert_allclose(grad, [0, 1, 1, 1, 0])


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
@pytest.mark.parametrize("make", [Clip, HardTanh], ids=["clip", "hardtanh"])
def test_clip_backward_fused_equals_tensorflows(make, dtype):
    """Bi-Real's stage-1 clip and IR-Net's hardtanh: the fused backward pass gives
    tf.clip_by_value's values and gradients, bit for bit, ends of [-1, 1] included."""
    x = tf.cast([[-3.0, -1.0, -0.5, 0.0, 0.7, 1.0, 1.01, 2.0]], dtype)
    upstream = tf.cast(np.random.default_rng(0).normal(size=x.shape), dtype)
    results = []
    for context in (fused.unfused, contextlib.nullcontext):
        with context():
            layer = make()
        assert layer.fused is (context is contextlib.nullcontext)
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
        results.append([tf.cast(t, tf.float32).numpy() for t in (y, tape.gradient(y, x, upstream))])
    np.testing.assert_array_equal(results[0][0], results[1][0])
    np.testing.assert_array_equal(results[0][1], results[1][1])
    as_float = [tf.cast(t, tf.float32).numpy() for t in (x, upstream)]
    np.testing.assert_array_equal(results[1][1], np.where(np.abs(as_float[0]) <= 1, as_float[1], 0))


def test_leaky_clip_forward_and_gradient():
    x = np.array([-3.0, -0.5, 0.5, 2.0], "float32")
    y, grad = value_and_grad(lambda v: LeakyClip()(v), x)
    np.testing.assert_allclose(y, [-1.2, -0.5, 0.5, 1.1], rtol=1e-6)
    np.testing.assert_allclose(grad, [0.1, 1, 1, 0.1], rtol=1e-6)


@pytest.mark.parametrize("name, cls, precision", [
    ("clip", Clip, 32), ("leaky_clip", LeakyClip, 32), ("tanh", Tanh, 32), ("ede_sign", EDESign, 1),
    ("libra_pb_sign", LibraPBSign, 1), ("groupnet_weight_sign", GroupNetWeightSign, 1),
])
def test_every_quantizer_is_registered_and_serializable(name, cls, precision):
    quantizer = lq.quantizers.get(name)
    assert isinstance(quantizer, cls) and quantizer.precision == precision
    assert isinstance(lq.quantizers.deserialize(lq.quantizers.serialize(quantizer)), cls)
    layer = lq.layers.QuantConv2D(2, 3, input_quantizer=name, kernel_quantizer=name)
    clone = lq.layers.QuantConv2D.from_config(layer.get_config())
    assert isinstance(clone.input_quantizer, cls) and isinstance(clone.kernel_quantizer, cls)


# -- fused backward passes ---------------------------------------------------------------
BF16 = tf.keras.mixed_precision.Policy("mixed_bfloat16")


def _ties_and_noise(shape, seed=0):
    """Normal values with the formulas' edges planted: 0, +-1 (clip and ApproxSign's ends)."""
    x = np.random.default_rng(seed).normal(0, 1, shape).astype("float32")
    x.reshape(-1)[:5] = [0.0, 1.0, -1.0, 1.0000001, -0.9999999]
    return x


@pytest.mark.parametrize("dtype", [None, BF16], ids=["float32", "mixed_bfloat16"])
@pytest.mark.parametrize("name", sorted(fused.FUSED))
def test_fused_quantizers_give_larqs_values_and_gradients_bit_for_bit(name, dtype):
    x = _ties_and_noise((8, 7, 7, 16))
    upstream = np.random.default_rng(1).normal(size=x.shape).astype("float32")
    ours, larqs = fused.FUSED[name](dtype=dtype), lq.quantizers.get(name).__class__(dtype=dtype)
    assert type(larqs) is type(ours).__bases__[0]
    y, g = value_and_grad(lambda v: tf.cast(ours(v), tf.float32), x, upstream)
    y_ref, g_ref = value_and_grad(lambda v: tf.cast(larqs(v), tf.float32), x, upstream)
    if name == "magnitude_aware_sign" and dtype:  # larq's bfloat16 mean stalls; ours is float32's
        np.testing.assert_allclose(y, lq.quantizers.MagnitudeAwareSign()(x), rtol=2 ** -8)
    else:
        np.testing.assert_array_equal(y, y_ref)
    np.testing.assert_array_equal(g, g_ref)
    assert np.count_nonzero(g) and np.count_nonzero(g != upstream)  # the clip (or slope) acted


@pytest.mark.parametrize("quantizer, scales", [(fused.FusedMagnitudeAwareSign(dtype=BF16), 4),
                                               (quantizers.GroupNetWeightSign(groups=2, dtype=BF16), 2)],
                         ids=["bireal", "groupnet"])
def test_a_weight_scale_under_bfloat16_is_float32s_rounded(quantizer, scales):
    # 2,304 weights per scale: a bfloat16 sum of their |w| would stop near 64 (a third of it).
    kernel = np.random.default_rng(0).uniform(-0.15, 0.15, (3, 3, 256, 4)).astype("float32")
    ours = tf.cast(quantizer(kernel), tf.float32).numpy()
    scale = np.abs(kernel).reshape(-1, scales, 4 // scales).mean(axis=(0, 2))  # one per slice of the last axis
    np.testing.assert_allclose(np.abs(ours).reshape(-1, 4).max(axis=0), np.repeat(scale, 4 // scales), rtol=1e-2)


@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_fused_ede_gradient_equals_the_op_by_op_one(dtype):
    x = tf.cast(_ties_and_noise((8, 7, 7, 16)), dtype)
    upstream = tf.cast(np.random.default_rng(1).normal(size=x.shape), dtype)
    grads = []
    for one_kernel in (True, False):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = quantizers.ede_sign(x, 0.3, 1 / 0.3, one_kernel)
        grads.append(tf.cast(tape.gradient(y, x, upstream), tf.float32).numpy())
        np.testing.assert_array_equal(y, tf.where(x >= 0, 1.0, -1.0))
    # XLA's tanh is its own approximation: equal to float32 rounding, not bit for bit.
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-5, atol=1e-6)


def test_models_use_the_fused_quantizers_and_train_as_with_larqs():
    x = np.random.default_rng(0).normal(size=(4, 28, 28, 1)).astype("float32")
    y = tf.one_hot([1, 2, 3, 4], 10)
    grads = []
    for context, expected in ((fused.unfused, lq.quantizers.ApproxSign),
                              (contextlib.nullcontext, fused.FusedApproxSign)):
        tf.keras.utils.set_random_seed(0)
        with context():
            model = zoo.BiRealNet20(input_shape=(28, 28, 1))
        assert type(_binary_conv(model).input_quantizer) is expected
        with tf.GradientTape() as tape:
            loss = tf.keras.losses.categorical_crossentropy(y, model(x, training=True))
        grads.append([g.numpy() for g in tape.gradient(loss, model.trainable_weights)])
    for ours, larqs in zip(*grads):
        np.testing.assert_array_equal(ours, larqs)


def test_a_model_with_fused_quantizers_reloads_from_a_whole_model_file(tmp_path):
    model = zoo.BiRealNet20(input_shape=(28, 28, 1))
    model.save(tmp_path / "m.h5")
    clone = tf.keras.models.load_model(tmp_path / "m.h5")
    assert type(_binary_conv(clone).input_quantizer) is fused.FusedApproxSign
    assert type(_binary_conv(clone).kernel_quantizer) is fused.FusedMagnitudeAwareSign
    x = np.random.default_rng(0).normal(size=(2, 28, 28, 1)).astype("float32")
    np.testing.assert_array_equal(clone(x), model(x))


def test_clear_session_frees_the_graphs_of_dropped_models():
    """Each traced sign registers its gradient globally, holding its graph (and the
    model's weights): Keras' clear_session alone leaves them alive, zoo's frees them."""
    import gc

    def graphs():
        return sum(type(o).__name__ == "FuncGraph" for o in gc.get_objects())

    fused.clear_session()
    gc.collect()
    before = graphs()
    model = zoo.BiRealNet20(input_shape=(28, 28, 1))
    del model
    tf.keras.backend.clear_session()
    gc.collect()
    assert graphs() > before + 10  # Keras' own clear_session: the model's graphs remain
    fused.clear_session()
    gc.collect()
    assert graphs() <= before + 1
