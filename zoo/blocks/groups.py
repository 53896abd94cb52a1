"""Group-Net's K-base groups: the bases of a block as one grouped convolution, their
aggregation and the soft gates between blocks.

The K convolutions of the bases become one grouped convolution (groups=K), whose group k
reads and writes exactly base k's channels; a batch normalization over K*C channels is
K per-base batch normalizations.
"""
from typing import Callable, Optional, Sequence

import larq as lq
import tensorflow as tf

from zoo import stack
from zoo.blocks.shortcuts import batch_norm
from zoo.fused import fused, fusing


@tf.keras.utils.register_keras_serializable(package="zoo")
class GroupedQuantConv2D(lq.layers.QuantConv2D):
    """`lq.layers.QuantConv2D` with `groups > 1`, without Keras' XLA-compiled grouped path.

    The same layer as larq's grouped QuantConv2D (arguments, config, one kernel of
    shape (kh, kw, in / groups, filters), weights and cost), computed differently.
    Keras compiles grouped convolutions with XLA, whose CPU forward and backward pass
    was 25x slower than `groups` plain convolutions (TensorFlow 2.15). Instead:

    - in training, one `tf.nn.convolution` with the grouped kernel, TensorFlow's own
      grouped convolution, which needs oneDNN (`zoo.stack.onednn()`; its backward
      fails without it);
    - otherwise (inference, export, dilations per group, or without oneDNN) the input is
      split into `groups` channel slices, and each slice is quantized, padded and
      convolved with its slice of the quantized kernel, then the results are
      concatenated (bias and activation follow). Larq Compute Engine 0.16 converts a
      grouped binary convolution to `LceBconv2d` only with a multiple of 32 input
      channels per group, and its default kernel rejects grouped ones; every per-group
      convolution here becomes an ordinary `LceBconv2d`.

    The two paths agree to float rounding (tests/test_groupnet.py).

    `group_dilations` gives each group its own dilation rate (Group-Net's Binary
    Parallel Atrous Convolution: base k of a block dilated by rate k), with stride 1
    and "same" padding; the layer's `dilation_rate` is then unused.

    Arguments:
        group_dilations: an optional dilation rate per group (`groups` integers).
        **kwargs: as `lq.layers.QuantConv2D`; only `data_format="channels_last"` is
            supported with `groups > 1`.

    Returns:
        The same outputs (and gradients) as `lq.layers.QuantConv2D`, or, with
        `group_dilations`, as one such convolution per group at its own rate.

    Raises:
        ValueError: `group_dilations` that do not fit `groups`, stride 1 and "same".
    """

    def __init__(self, *args, group_dilations=None, **kwargs):
        super().__init__(*args, **kwargs)
        if self.groups > 1 and self.data_format != "channels_last":
            raise ValueError("GroupedQuantConv2D with groups > 1 needs data_format='channels_last'.")
        self.group_dilations = tuple(int(d) for d in group_dilations) if group_dilations else None
        self.native_training = fusing()  # False when built inside `zoo.fused.unfused()`
        if self.group_dilations and (len(self.group_dilations) != self.groups or self.strides != (1, 1)
                                     or self.padding != "same" or min(self.group_dilations) < 1):
            raise ValueError(
                f"group_dilations={group_dilations!r} needs one positive rate per group ({self.groups}), "
                f"strides=1 and padding='same'; got strides={self.strides}, padding={self.padding!r}."
            )

    def _dilations(self):
        """The dilation rate (2 integers) of each group."""
        return [(d, d) for d in self.group_dilations] if self.group_dilations else [self.dilation_rate] * self.groups

    def _pad(self, x, dilation):
        """Pads `x` for a stride-1 "same" convolution at `dilation` with `pad_values`."""
        sizes = [d * (k - 1) for d, k in zip(dilation, self.kernel_size)]
        pads = [[0, 0]] + [[n // 2, n - n // 2] for n in sizes] + [[0, 0]]
        return tf.pad(x, pads, constant_values=self.pad_values)

    def get_config(self):
        return {**super().get_config(), "group_dilations": self.group_dilations}

    def call(self, inputs, training=None):
        if self.groups == 1 and not self.group_dilations:
            return super().call(inputs)
        with lq.context.quantized_scope(True):
            kernel = tf.convert_to_tensor(self.kernel)
        if training and self.native_training and not self.group_dilations and stack.onednn():
            # Training: TensorFlow's grouped convolution (oneDNN), one kernel for all groups.
            outputs = self._convolve(inputs, kernel, self.dilation_rate)
        else:
            outputs = tf.concat([
                self._convolve(x, k, dilation) for x, k, dilation in
                zip(tf.split(inputs, self.groups, axis=-1), tf.split(kernel, self.groups, axis=-1), self._dilations())
            ], axis=-1)
        if self.use_bias:
            outputs = tf.nn.bias_add(outputs, self.bias)
        return self.activation(outputs) if self.activation is not None else outputs

    def _convolve(self, x, kernel, dilation):
        """Quantizes `x`, pads it, convolves it with `kernel` (one group's, or all of them)."""
        if self.input_quantizer:
            x = self.input_quantizer(x)
        padding = self.padding
        if self.group_dilations:
            x, padding = self._pad(x, dilation), "valid"
        elif not self._is_native_padding:
            x = tf.pad(x, self._get_padding_same(x), constant_values=self.pad_values)
            padding = "valid"
        return tf.nn.convolution(x, kernel, strides=self.strides, padding=padding.upper(), dilations=dilation)


def grouped_binary_conv_layer(
    channels: int,
    filters: int,
    kernel_size: int,
    strides: int,
    num_bases: int,
    name: str,
    quantizers: dict,
    dilations: Optional[Sequence[int]] = None,
) -> "GroupedQuantConv2D":
    """The K bases' binary convolutions as one grouped QuantConv2D, not yet applied
    (a layer several inputs can share, as the detector's head does across levels).

    Binary inputs are padded with +1 (`pad_values=1.0`, the official code's padding).
    The kernel starts as K independent Glorot-uniform kernels (the official code's
    Xavier initialisation of each base's convolution): Keras would count the fused
    layer's K*filters outputs in the fan, so the variance is rescaled to one base's fan.

    Arguments:
        channels: input channels of all bases together (num_bases * channels per base).
        filters: output channels of each base.
        kernel_size: square kernel size.
        strides: convolution stride.
        num_bases: K, the number of bases (groups).
        name: the layer's name is `{name}_conv`.
        quantizers: QuantConv2D's `input_quantizer`, `kernel_quantizer` and
            `kernel_constraint`.
        dilations: an optional dilation rate per base (Binary Parallel Atrous
            Convolution; stride 1).

    Returns:
        A `GroupedQuantConv2D` of `num_bases * filters` outputs.
    """
    fan_in = kernel_size * kernel_size * channels // num_bases
    fan_out = kernel_size * kernel_size * filters
    initializer = tf.keras.initializers.VarianceScaling(
        (fan_in + num_bases * fan_out) / (fan_in + fan_out), "fan_avg", "uniform"
    )
    return GroupedQuantConv2D(
        num_bases * filters, kernel_size, strides=strides, groups=num_bases,
        padding="same", pad_values=1.0, use_bias=False, kernel_initializer=initializer,
        group_dilations=dilations if kernel_size > 1 else None, name=f"{name}_conv", **fused(quantizers),
    )


def groupnet_conv_unit(
    x: tf.Tensor,
    filters: int,
    kernel_size: int,
    strides: int,
    num_bases: int,
    name: str,
    quantizers: dict,
    dilations: Optional[Sequence[int]] = None,
) -> tf.Tensor:
    """BN_k(ReLU(BinaryConv(sign(x_k)))) for every base k, Group-Net's order
    conv -> ReLU -> BN (layers `{name}_conv`, `{name}_relu`, `{name}_bn`); base k's
    convolution dilated by `dilations[k]` when given."""
    x = grouped_binary_conv_layer(x.shape[-1], filters, kernel_size, strides, num_bases, name, quantizers, dilations)(x)
    x = tf.keras.layers.ReLU(name=f"{name}_relu")(x)
    return batch_norm(f"{name}_bn")(x)


def groupnet_shortcut(
    x: tf.Tensor, filters: int, strides: int, num_bases: int, name: str, quantizers: Callable[..., dict],
    shared: bool = False,
) -> tf.Tensor:
    """The residual of every base: x_k itself, or when the block changes the shape
    Group-Net's binarized downsampling BN_ds(BinaryConv1x1_strided(sign(x_k))) (layers
    `{name}_conv`, `{name}_bn`): each base's own, or with `shared` one convolution and one
    BN applied to every base's input in turn (the official code's `downsample_layer`,
    one per stage; the BN normalizes each base by its own batch statistics in training,
    and updates its moving statistics once per base, as PyTorch's module called K times)."""
    if strides == 1 and x.shape[-1] == num_bases * filters:
        return x
    if not shared:
        x = grouped_binary_conv_layer(x.shape[-1], filters, 1, strides, num_bases, name, quantizers())(x)
        return batch_norm(f"{name}_bn")(x)
    conv = grouped_binary_conv_layer(x.shape[-1] // num_bases, filters, 1, strides, 1, name, quantizers(groups=1))
    bn = batch_norm(f"{name}_bn")
    outputs = [bn(conv(base)) for base in _split_bases(x, num_bases)]
    return tf.keras.layers.Concatenate(name=f"{name}_bases")(outputs) if num_bases > 1 else outputs[0]


def groupnet_basic_block(
    x: tf.Tensor,
    filters: int,
    strides: int,
    num_bases: int,
    name: str,
    quantizers: Callable[..., dict],
    dilations: Optional[Sequence[int]] = None,
    shared_downsample: bool = False,
) -> tf.Tensor:
    """One Group-Net "group": a ResNet basic block rebuilt from K binary bases.

    For every base k, on its input x_k:

        r   = x_k, or BN_ds(BinaryConv1x1_s(sign(x_k))) when the block downsamples
        u_k = BN1_k(ReLU(BinaryConv3x3_s(sign(x_k)))) + r
        y_k = BN2_k(ReLU(BinaryConv3x3(sign(u_k)))) + u_k

    Arguments:
        x: the K bases' inputs as branch streams, (batch, H, W, num_bases * channels).
        filters: output channels of each base.
        strides: stride of the first convolution (and of the downsampling).
        num_bases: K.
        name: prefix of the layer names (`{name}_conv1_conv`, `{name}_shortcut_bn`, ...).
        quantizers: a function returning fresh QuantConv2D quantizer arguments (for
            `groups=1` convolutions when called with `groups=1`).
        dilations: an optional dilation rate per base for both 3x3 convolutions
            (Binary Parallel Atrous Convolution, in a stride-1 block).
        shared_downsample: one downsampling for all bases (`groupnet_shortcut`).

    Returns:
        The K bases' outputs y_k as branch streams, (batch, H', W', num_bases * filters).
    """
    shortcut = groupnet_shortcut(x, filters, strides, num_bases, f"{name}_shortcut", quantizers, shared_downsample)
    u = groupnet_conv_unit(x, filters, 3, strides, num_bases, f"{name}_conv1", quantizers(), dilations)
    u = tf.keras.layers.Add(name=f"{name}_conv1_add")([u, shortcut])
    y = groupnet_conv_unit(u, filters, 3, 1, num_bases, f"{name}_conv2", quantizers(), dilations)
    return tf.keras.layers.Add(name=f"{name}_conv2_add")([y, u])


def groupnet_bottleneck_block(
    x: tf.Tensor,
    filters: int,
    strides: int,
    num_bases: int,
    name: str,
    quantizers: Callable[..., dict],
    expansion: int = 4,
    dilations: Optional[Sequence[int]] = None,
    shared_downsample: bool = False,
) -> tf.Tensor:
    """A ResNet bottleneck rebuilt from K binary bases (for Group-Net ResNet-50).

    For every base k, with m = filters / expansion:

        a_k = BN1_k(ReLU(BinaryConv1x1(sign(x_k))))       -> m channels
        b_k = BN2_k(ReLU(BinaryConv3x3_s(sign(a_k))))     -> m channels, stride s
        y_k = BN3_k(ReLU(BinaryConv1x1(sign(b_k)))) + r   -> filters channels

    with r = x_k, or BN_ds(BinaryConv1x1_s(sign(x_k))) when the shape changes. Every
    base has its own three binary convolutions; the stride sits on the 3x3 convolution
    (torchvision's ResNet-50, the paper's full-precision reference).

    Arguments:
        x: the K bases' inputs as branch streams, (batch, H, W, num_bases * channels).
        filters: output channels of each base (4x the bottleneck width).
        strides: stride of the 3x3 convolution and of the downsampling.
        num_bases: K.
        name: prefix of the layer names.
        quantizers: a function returning fresh QuantConv2D quantizer arguments.
        expansion: ratio of output to bottleneck width.
        dilations: an optional dilation rate per base for the 3x3 convolution.
        shared_downsample: one downsampling for all bases (`groupnet_shortcut`).

    Returns:
        The K bases' outputs as branch streams, (batch, H', W', num_bases * filters).
    """
    mid = filters // expansion
    shortcut = groupnet_shortcut(x, filters, strides, num_bases, f"{name}_shortcut", quantizers, shared_downsample)
    x = groupnet_conv_unit(x, mid, 1, 1, num_bases, f"{name}_conv1", quantizers())
    x = groupnet_conv_unit(x, mid, 3, strides, num_bases, f"{name}_conv2", quantizers(), dilations)
    x = groupnet_conv_unit(x, filters, 1, 1, num_bases, f"{name}_conv3", quantizers())
    return tf.keras.layers.Add(name=f"{name}_conv3_add")([x, shortcut])


def _split_bases(x: tf.Tensor, num_bases: int):
    return tf.split(x, num_bases, axis=-1) if num_bases > 1 else [x]


def _repeat_bases(x: tf.Tensor, num_bases: int) -> tf.Tensor:
    # A concatenation, not tf.tile: OpenVINO 2026.4's transpose sinking mis-permutes a
    # Tile's repeats when it moves an NHWC-to-NCHW transpose through it.
    return tf.concat([x] * num_bases, axis=-1) if num_bases > 1 else x


@tf.keras.utils.register_keras_serializable(package="zoo")
class RepeatBranches(tf.keras.layers.Layer):
    """The same input for every base: Y repeated K times on the channel axis.

    The first Group-Net block feeds the stem output to all K bases; without soft gates
    every block's bases read the previous block's aggregate Y.

    Arguments:
        num_bases: K.

    Returns:
        (batch, H, W, C) -> (batch, H, W, K * C).
    """

    def __init__(self, num_bases: int, **kwargs):
        super().__init__(**kwargs)
        self.num_bases = num_bases

    def call(self, inputs):
        return _repeat_bases(inputs, self.num_bases)

    def get_config(self):
        return {**super().get_config(), "num_bases": self.num_bases}


@tf.keras.utils.register_keras_serializable(package="zoo")
class SoftGate(tf.keras.layers.Layer):
    """Group-Net's soft connection between groups, one learnable scalar g per block:

        x_k(l) = sigmoid(g) * y_k(l-1) + (1 - sigmoid(g)) * Y(l-1)

    shared by the K bases. Called on `[branches, aggregate]`: the previous block's
    branch streams y (batch, H, W, K*C) and its aggregate Y (batch, H, W, C).

    Arguments:
        num_bases: K.
        gate_initializer: initializer of g; the official code's `torch.rand(1)`,
            uniform in [0, 1), by default.

    Returns:
        The K bases' inputs as branch streams, (batch, H, W, K * C).
    """

    def __init__(self, num_bases: int, gate_initializer=None, **kwargs):
        super().__init__(**kwargs)
        self.num_bases = num_bases
        self.gate_initializer = tf.keras.initializers.get(
            gate_initializer or tf.keras.initializers.RandomUniform(0.0, 1.0)
        )

    def build(self, input_shape):
        self.gate = self.add_weight("gate", shape=(), initializer=self.gate_initializer)
        super().build(input_shape)

    def call(self, inputs):
        branches, aggregate = inputs
        s = tf.cast(tf.sigmoid(self.gate), branches.dtype)
        return s * branches + (1.0 - s) * _repeat_bases(aggregate, self.num_bases)

    def get_config(self):
        return {
            **super().get_config(),
            "num_bases": self.num_bases,
            "gate_initializer": tf.keras.initializers.serialize(self.gate_initializer),
        }


AGGREGATIONS = ("scales", "mean")


@tf.keras.utils.register_keras_serializable(package="zoo")
class AggregateBranches(tf.keras.layers.Layer):
    """The aggregate Y of a block's K bases.

    - `"scales"` (conference version): Y = sum_k lambda_k y_k, one learnable,
      unconstrained scalar per base;
    - `"mean"` (journal version): Y = mean_k y_k.

    Arguments:
        num_bases: K.
        aggregation: "scales" or "mean".
        scale_initializer: initializer of the lambdas; the official code's
            `torch.rand(1)` per base, uniform in [0, 1), by default.

    Returns:
        (batch, H, W, K * C) -> (batch, H, W, C).

    Raises:
        ValueError: for an unknown `aggregation`.
    """

    def __init__(self, num_bases: int, aggregation: str = "scales", scale_initializer=None, **kwargs):
        if aggregation not in AGGREGATIONS:
            raise ValueError(
                f'aggregation must be "scales" (learnable lambda per base, the conference '
                f'version) or "mean" (the journal version), not {aggregation!r}.'
            )
        super().__init__(**kwargs)
        self.num_bases = num_bases
        self.aggregation = aggregation
        self.scale_initializer = tf.keras.initializers.get(
            scale_initializer or tf.keras.initializers.RandomUniform(0.0, 1.0)
        )

    def build(self, input_shape):
        if self.aggregation == "scales":
            self.scales = self.add_weight(
                "scales", shape=(self.num_bases,), initializer=self.scale_initializer
            )
        super().build(input_shape)

    def call(self, inputs):
        bases = _split_bases(inputs, self.num_bases)
        if self.aggregation == "mean":
            return tf.add_n(bases) / float(self.num_bases) if self.num_bases > 1 else bases[0]
        scales = tf.cast(self.scales, inputs.dtype)
        return tf.add_n([scales[k] * y for k, y in enumerate(bases)])

    def get_config(self):
        return {
            **super().get_config(),
            "num_bases": self.num_bases,
            "aggregation": self.aggregation,
            "scale_initializer": tf.keras.initializers.serialize(self.scale_initializer),
        }
