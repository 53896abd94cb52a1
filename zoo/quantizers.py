"""Quantizers of the zoo's papers, registered with Larq.

Each quantizer is a `larq.quantizers.Quantizer` registered with
`larq.utils.register_keras_custom_object` and an alias, so that its string name works
in `QuantConv2D(input_quantizer=..., kernel_quantizer=...)` and a whole-model h5 file
reloads. `precision` tells `zoo.complexity` (and `larq.models.summary`) whether the
layer's multiply-accumulates are binary (1) or full precision (32).

Bi-Real Net's own quantizers are Larq's: `"approx_sign"` (activations) and
`"magnitude_aware_sign"` (weights, per output channel, with `"weight_clip"`).
"""
import larq as lq
import tensorflow as tf


@lq.utils.register_alias("clip")
@lq.utils.register_keras_custom_object
class Clip(lq.quantizers.Quantizer):
    r"""Full-precision stand-in for a sign quantizer: clip(x, -1, 1).

    Used by the real-valued pre-training stage of Bi-Real Net, whose twin network
    replaces every sign by clip(-1, x, 1); the gradient is 1 inside [-1, 1], 0 outside.

    References:
        - Liu et al., Bi-Real Net, ECCV 2018, Section 3.4 (real-valued initialisation).
    """

    precision = 32

    def call(self, inputs):
        return tf.clip_by_value(inputs, -1.0, 1.0)


@lq.utils.register_alias("leaky_clip")
@lq.utils.register_keras_custom_object
class LeakyClip(lq.quantizers.Quantizer):
    r"""Full-precision leaky clip: x inside [-1, 1], slope 0.1 outside.

    Bi-Real Net 50's official code puts it before the one full-precision 1x1
    convolution of the first bottleneck (the only real-valued conv of the body).
    """

    precision = 32

    def call(self, inputs):
        clipped = tf.clip_by_value(inputs, -1.0, 1.0)
        return clipped + 0.1 * (inputs - clipped)
