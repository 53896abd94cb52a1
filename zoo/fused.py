"""Fused backward passes of the sign quantizers.

A sign's backward pass is a few elementwise operations over a whole activation tensor,
each its own TensorFlow kernel (and 3-5x slower in bfloat16). Here each is one
XLA-compiled kernel (`fused_backward`), with the same formula and the same bits:
`approx_sign`, `ste_sign` and `magnitude_aware_sign` resolve to subclasses of Larq's
with a fused backward (`fused`, used wherever the zoo builds a `QuantConv2D`), and the
EDE quantizers' backward (`zoo.quantizers`) is fused too, as is clip(x, -1, 1)'s
(`hardtanh`: IR-Net's activation, the stage-1 stand-in of the sign). Forward passes are
unchanged (Larq's sign, `tf.clip_by_value`), so Larq Compute Engine converts them as
before. Models built inside `unfused()` keep Larq's own quantizers and TensorFlow's
clip gradient, for comparison.
"""
import contextlib

import larq as lq
import tensorflow as tf


def fused_backward(function):
    """`function(x, dy, *args)`, a backward pass, compiled by XLA into one kernel (one
    per dtype and shape). Its value is the same as running it op by op."""
    return tf.function(function, jit_compile=True, reduce_retracing=True)


def mean_abs(w: tf.Tensor, axis, keepdims: bool = False) -> tf.Tensor:
    """mean(|w|) over `axis`, summed in float32 whatever w's dtype, returned in w's: a
    bfloat16 sum of thousands of |w| stops growing near 64 (its spacing there exceeds
    each |w|), which made a weight scale trained under mixed_bfloat16 a third of float32's."""
    return tf.cast(tf.reduce_mean(tf.abs(tf.cast(w, tf.float32)), axis=axis, keepdims=keepdims), w.dtype)


def with_backward(forward, x: tf.Tensor, backward, *args) -> tf.Tensor:
    """`forward(x)`, its backward pass `backward(x, dy, *args)`."""

    @tf.custom_gradient
    def _call(x):
        return forward(x), lambda dy: backward(x, dy, *args)

    return _call(x)


def sign_with_backward(x: tf.Tensor, backward, *args) -> tf.Tensor:
    """Larq's sign(x) forward (sign(0) = +1); backward `backward(x, dy, *args)`."""
    return with_backward(lq.math.sign, x, backward, *args)


@fused_backward
def _approx_sign_backward(x, dy):  # larq.quantizers.approx_sign's gradient, op for op
    abs_x = tf.math.abs(x)
    return tf.where(tf.math.less_equal(abs_x, 1.0), (1 - abs_x) * 2 * dy, tf.zeros_like(dy))


@fused_backward
def _ste_backward(x, dy, clip_value):  # larq.quantizers.ste_sign's gradient, clipped
    return tf.where(tf.math.less_equal(tf.math.abs(x), clip_value), dy, tf.zeros_like(dy))


def _clip(x):
    return tf.clip_by_value(x, -1.0, 1.0)


def hardtanh(x: tf.Tensor, fused: bool = True) -> tf.Tensor:
    """clip(x, -1, 1) (`tf.clip_by_value`, forward unchanged); with `fused` its backward
    pass, dy on [-1, 1] (ends included) and 0 outside as `tf.clip_by_value`'s, is one
    fused kernel (`tf.clip_by_value`'s own is several, slow in bfloat16). Layers pass
    `fused=fusing()` as it was when they were made."""
    if not fused:
        return _clip(x)
    return with_backward(_clip, x, _ste_backward, tf.constant(1.0, x.dtype))


def _ste_sign(x, clip_value):
    if clip_value is None:  # Larq's unclipped straight-through: dy itself, nothing to fuse
        return lq.quantizers.ste_sign(x, clip_value=None)
    return sign_with_backward(x, _ste_backward, tf.cast(clip_value, x.dtype))


@lq.utils.register_keras_custom_object
class FusedApproxSign(lq.quantizers.ApproxSign):
    """Larq's `approx_sign` (Bi-Real Net's ApproxSign), its backward pass fused."""

    def call(self, inputs):
        return lq.quantizers.Quantizer.call(self, sign_with_backward(inputs, _approx_sign_backward))


@lq.utils.register_keras_custom_object
class FusedSteSign(lq.quantizers.SteSign):
    """Larq's `ste_sign`, its backward pass fused."""

    def call(self, inputs):
        return lq.quantizers.Quantizer.call(self, _ste_sign(inputs, self.clip_value))


@lq.utils.register_keras_custom_object
class FusedMagnitudeAwareSign(lq.quantizers.MagnitudeAwareSign):
    """Larq's `magnitude_aware_sign` (Bi-Real Net's weights), its backward pass fused."""

    def call(self, inputs):
        scale = tf.stop_gradient(mean_abs(inputs, axis=list(range(len(inputs.shape) - 1))))
        return lq.quantizers.Quantizer.call(self, scale * _ste_sign(inputs, self.clip_value))


FUSED = {"approx_sign": FusedApproxSign, "ste_sign": FusedSteSign, "magnitude_aware_sign": FusedMagnitudeAwareSign}
_use_fused = [True]


@contextlib.contextmanager
def unfused():
    """Models built inside train as the zoo did before its faster paths: with Larq's own
    quantizers (op-by-op backward passes) and Group-Net's per-base convolutions, for
    benchmarks and tests to compare against."""
    _use_fused.append(False)
    try:
        yield
    finally:
        _use_fused.pop()


def fusing() -> bool:
    """False inside `unfused()`."""
    return _use_fused[-1]


def fused(options: dict) -> dict:
    """`QuantConv2D` keyword arguments with `input_quantizer` and `kernel_quantizer`
    named "approx_sign", "ste_sign" or "magnitude_aware_sign" (or given as Larq's own
    instances of them) replaced by the fused quantizers; everything else unchanged."""
    if not fusing():
        return options
    out = dict(options)
    for key in ("input_quantizer", "kernel_quantizer"):
        value = out.get(key)
        for name, cls in FUSED.items():
            if value == name:
                out[key] = cls()
            elif type(value) is cls.__bases__[0]:  # Larq's own class, exactly
                out[key] = cls.from_config(value.get_config())
    return out


def clear_session() -> None:
    """`tf.keras.backend.clear_session()`, and the gradients that `tf.custom_gradient`
    registered for the graphs it dropped: call it between models in a process that builds
    many (the tests, `zoo weights evaluate`, the benchmarks).

    Each sign quantizer traced in a graph (a Keras model's own, a `tf.function`'s)
    registers its gradient function in TensorFlow's global gradient registry under a new
    name, and that function holds the graph, and with it the model's variables: without
    this, every model built in the process stays in memory (measured: 45 MB more per
    Bi-Real-18 built and dropped, none with it). A graph traced before the call can no
    longer be differentiated afterwards: call it only once those models are dropped.
    """
    from tensorflow.python.framework import ops  # the registry has no public API

    tf.keras.backend.clear_session()
    registry = ops._gradient_registry._registry
    for name in [name for name in registry if name.startswith("CustomGradient-")]:
        del registry[name]
