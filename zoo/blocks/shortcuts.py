"""One binary convolution with its real shortcut, and the pieces around it (Bi-Real Net,
IR-Net and Group-Net's shortcuts)."""
from typing import Optional

import larq as lq
import tensorflow as tf

from zoo.fused import fused, fusing, hardtanh


def batch_norm(name: str) -> tf.keras.layers.BatchNormalization:
    """The zoo's batch normalization (PyTorch's defaults, as the papers' code)."""
    return tf.keras.layers.BatchNormalization(momentum=0.9, epsilon=1e-5, name=name)


def real_projection(
    x: tf.Tensor, filters: int, strides: int, name: str, avg_pool: bool = True
) -> tf.Tensor:
    """Full-precision downsampling shortcut: AvgPool(strides) -> 1x1 conv -> BN (Bi-Real),
    or with `avg_pool=False` a strided 1x1 conv -> BN (IR-Net's ImageNet code)."""
    if strides > 1 and avg_pool:
        x = tf.keras.layers.AvgPool2D(strides, strides, padding="same", name=f"{name}_pool")(x)
    x = tf.keras.layers.Conv2D(
        filters, 1, strides=1 if avg_pool else strides, use_bias=False,
        kernel_initializer="glorot_normal", name=f"{name}_conv",
    )(x)
    return batch_norm(f"{name}_bn")(x)


@tf.keras.utils.register_keras_serializable(package="zoo")
class HardTanh(tf.keras.layers.Layer):
    """clip(x, -1, 1) as a layer (a plain function activation does not reload from h5),
    its backward pass fused (`zoo.fused.hardtanh`) unless made inside `zoo.fused.unfused()`."""

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.fused = fusing()

    def call(self, inputs):
        return hardtanh(inputs, self.fused)


@tf.keras.utils.register_keras_serializable(package="zoo")
class SubsampleZeroPad(tf.keras.layers.Layer):
    """ResNet's parameter-free "option A" shortcut: x[:, ::s, ::s] with the new channels
    zero-padded equally on both sides (as the CIFAR ResNets of He et al. and IR-Net)."""

    def __init__(self, filters: int, strides: int = 2, **kwargs):
        super().__init__(**kwargs)
        self.filters, self.strides = filters, strides

    def call(self, inputs):
        x = inputs[:, :: self.strides, :: self.strides, :]
        extra = self.filters - inputs.shape[-1]
        return tf.pad(x, [[0, 0], [0, 0], [0, 0], [extra // 2, extra - extra // 2]])

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "strides": self.strides}


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
    `kernel_constraint` (and any other QuantConv2D keyword, e.g. `pad_values` or
    `kernel_initializer`, default glorot normal).
    """
    options = fused({"kernel_initializer": "glorot_normal", **quantizers})
    x = lq.layers.QuantConv2D(
        filters, kernel_size, strides=strides, padding="same", use_bias=False,
        name=f"{name}_conv", **options,
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


# -- Group-Net (Zhuang et al., CVPR 2019) ---------------------------------------------
# A tensor of K "branch streams" holds the K bases' feature maps side by side on the
# channel axis, shape (batch, height, width, K * C): base k owns channels [k*C, (k+1)*C).
