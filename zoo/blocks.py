"""Blocks shared by the model families (one binary convolution with its real shortcut)."""
from typing import Optional

import larq as lq
import tensorflow as tf

from zoo.models.base import batch_norm


def real_projection(x: tf.Tensor, filters: int, strides: int, name: str) -> tf.Tensor:
    """Bi-Real's downsampling shortcut: AvgPool(strides) -> full-precision 1x1 -> BN."""
    if strides > 1:
        x = tf.keras.layers.AvgPool2D(strides, strides, padding="same", name=f"{name}_pool")(x)
    x = tf.keras.layers.Conv2D(
        filters, 1, use_bias=False, kernel_initializer="glorot_normal", name=f"{name}_conv"
    )(x)
    return batch_norm(f"{name}_bn")(x)


def binary_conv_bn(
    x: tf.Tensor,
    filters: int,
    kernel_size: int,
    strides: int,
    name: str,
    quantizers: dict,
) -> tf.Tensor:
    """QuantConv2D (no bias, 'same' padding) followed by batch normalization.

    `quantizers` holds QuantConv2D's `input_quantizer`, `kernel_quantizer` and
    `kernel_constraint` (and any other QuantConv2D keyword, e.g. `pad_values`).
    """
    x = lq.layers.QuantConv2D(
        filters,
        kernel_size,
        strides=strides,
        padding="same",
        use_bias=False,
        kernel_initializer="glorot_normal",
        name=f"{name}_conv",
        **quantizers,
    )(x)
    return batch_norm(f"{name}_bn")(x)


def bireal_unit(
    x: tf.Tensor,
    filters: int,
    strides: int,
    name: str,
    quantizers: dict,
    shortcut: Optional[tf.Tensor] = None,
) -> tf.Tensor:
    """out = BN(BinaryConv3x3(sign(x))) + shortcut(x).

    The shortcut is the identity, or `real_projection` when the shape changes.
    """
    if shortcut is None:
        shortcut = x
        if strides > 1 or x.shape[-1] != filters:
            shortcut = real_projection(x, filters, strides, f"{name}_shortcut")
    y = binary_conv_bn(x, filters, 3, strides, name, quantizers)
    return tf.keras.layers.Add(name=f"{name}_add")([y, shortcut])
