"""Bi-Real Net (Liu et al., ECCV 2018): a real shortcut around every binary convolution.

Every binary 3x3 convolution is `BN(BinaryConv(sign(x))) + shortcut(x)`, so the real
activations of each block reach the next one. Activations use ApproxSign (the
derivative of a piecewise polynomial); weights use the magnitude-aware sign
(per-output-channel mean |W| times sign(W), latent weights clipped to [-1, 1]).
Downsampling shortcuts are AvgPool(2) -> full-precision 1x1 conv -> BN (as the paper's
PyTorch code and larq-zoo; the Caffe prototxt uses a biased 1x1 conv without BN).
The stem is a full-precision 7x7/2 conv -> BN -> 3x3/2 max-pool, with no ReLU.

Bi-Real Net 50 follows the official PyTorch code (`BiReal_50/birealnet.py`): each
bottleneck keeps a shortcut around each of its three binary convolutions, with a
second, narrow stream carrying the 1x1-reduced activations from block to block.
"""
from typing import Optional, Tuple

import tensorflow as tf
from zookeeper import Field

from zoo.blocks import batch_norm, binary_conv_bn, bireal_unit, real_projection
from zoo.models.base import ModelFactory
from zoo.models.family import IMAGENET, SMALL, Family, Paper, Reported, Variant

PAPER = Paper(
    title="Bi-Real Net: Enhancing the Performance of 1-bit CNNs with Improved "
    "Representational Capability and Advanced Training Algorithm",
    authors="Zechun Liu, Baoyuan Wu, Wenhan Luo, Xin Yang, Wei Liu, Kwang-Ting Cheng",
    venue="ECCV",
    year=2018,
    url="https://arxiv.org/abs/1808.00278",
    bibtex="""@inproceedings{liu2018bireal,
  title={Bi-Real Net: Enhancing the Performance of 1-bit CNNs with Improved Representational Capability
         and Advanced Training Algorithm},
  author={Liu, Zechun and Wu, Baoyuan and Luo, Wenhan and Yang, Xin and Liu, Wei and Cheng, Kwang-Ting},
  booktitle={European Conference on Computer Vision (ECCV)},
  year={2018}
}""",
)


class BiRealNetFactory(ModelFactory):
    """Bi-Real Net with one binary 3x3 convolution per block."""

    input_quantizer: Optional[str] = Field("approx_sign")
    kernel_quantizer: Optional[str] = Field("magnitude_aware_sign")
    kernel_constraint: Optional[str] = Field("weight_clip")
    variant_fields = ("input_quantizer", "kernel_quantizer", "kernel_constraint")

    # Binary convolutions per stage, and the stages' widths.
    stem_filters: int = Field(64)
    stages: Tuple[int, ...] = Field((4, 4, 4, 4))
    filters: Tuple[int, ...] = Field((64, 128, 256, 512))

    @property
    def quantizers(self) -> dict:
        return dict(
            input_quantizer=self.input_quantizer,
            kernel_quantizer=self.kernel_quantizer,
            kernel_constraint=self.kernel_constraint,
        )

    def stem(self, x: tf.Tensor) -> tf.Tensor:
        """Full-precision 7x7/2 conv -> BN -> 3x3/2 max-pool (no ReLU)."""
        x = tf.keras.layers.Conv2D(
            self.stem_filters, 7, strides=2, padding="same", use_bias=False,
            kernel_initializer="glorot_normal", name="stem_conv",
        )(x)
        x = batch_norm("stem_bn")(x)
        return tf.keras.layers.MaxPool2D(3, strides=2, padding="same", name="stem_pool")(x)

    def features(self, x: tf.Tensor) -> tf.Tensor:
        x = self.stem(x)
        for s, (convs, filters) in enumerate(zip(self.stages, self.filters), start=1):
            for i in range(1, convs + 1):
                strides = 2 if i == 1 and s > 1 else 1
                x = bireal_unit(x, filters, strides, f"stage{s}_conv{i}", self.quantizers)
        return x


class SmallBiRealNetFactory(BiRealNetFactory):
    """ResNet-20 layout for small images: a 3x3 full-precision stem, three stages."""

    min_input_size = 8
    stem_filters = Field(16)
    stages = Field((6, 6, 6))
    filters = Field((16, 32, 64))

    def stem(self, x: tf.Tensor) -> tf.Tensor:
        x = tf.keras.layers.Conv2D(
            self.stem_filters, 3, padding="same", use_bias=False,
            kernel_initializer="glorot_normal", name="stem_conv",
        )(x)
        return batch_norm("stem_bn")(x)


# The real-valued twin: every sign replaced by clip(-1, x, 1), real weights (no
# quantizer, no clipping). Stage 1 of the paper's two-stage recipe, and the
# full-precision baseline that the binary nets are compared with.
REAL_VALUED = dict(input_quantizer="clip", kernel_quantizer=None, kernel_constraint=None)


class BiRealBottleneckFactory(BiRealNetFactory):
    """Bottleneck blocks, a shortcut around each of the three binary convolutions.

    Stream `wide` carries the block outputs (256..2048 channels); stream `narrow` the
    output of each block's 3x3 stage (64..512 channels), which becomes the shortcut of
    the next block's first (1x1, reducing) binary convolution.
    """

    stages = Field((3, 4, 6, 3))  # bottleneck blocks per stage
    filters = Field((256, 512, 1024, 2048))  # output width of each stage
    expansion: int = Field(4)

    def bottleneck(self, narrow, wide, filters, strides, first_in_stage, first_in_net, name):
        mid = filters // self.expansion
        q = self.quantizers
        if first_in_net:
            # The official code's one real-valued conv: leaky clip, then a float 1x1.
            a = binary_conv_bn(
                wide, mid, 1, 1, f"{name}_conv1",
                dict(input_quantizer="leaky_clip", kernel_quantizer=None, kernel_constraint=None),
            )
        else:
            a = binary_conv_bn(wide, mid, 1, 1, f"{name}_conv1", q)
            if first_in_stage:
                narrow = tf.keras.layers.Conv2D(
                    mid, 1, use_bias=False, kernel_initializer="glorot_normal",
                    name=f"{name}_narrow_shortcut_conv",
                )(narrow)
            a = tf.keras.layers.Add(name=f"{name}_conv1_add")([a, narrow])
        mid_shortcut = a
        if strides > 1:
            mid_shortcut = tf.keras.layers.AvgPool2D(
                strides, strides, padding="same", name=f"{name}_conv2_shortcut_pool"
            )(a)
        b = bireal_unit(a, mid, strides, f"{name}_conv2", q, shortcut=mid_shortcut)
        wide_shortcut = wide
        if first_in_stage:
            wide_shortcut = real_projection(wide, filters, strides, f"{name}_shortcut")
        c = binary_conv_bn(b, filters, 1, 1, f"{name}_conv3", q)
        c = tf.keras.layers.Add(name=f"{name}_conv3_add")([c, wide_shortcut])
        return b, c

    def features(self, x: tf.Tensor) -> tf.Tensor:
        narrow = wide = self.stem(x)
        for s, (blocks, filters) in enumerate(zip(self.stages, self.filters), start=1):
            for i in range(1, blocks + 1):
                strides = 2 if i == 1 and s > 1 else 1
                narrow, wide = self.bottleneck(
                    narrow, wide, filters, strides, first_in_stage=i == 1,
                    first_in_net=(s, i) == (1, 1), name=f"stage{s}_block{i}",
                )
        return wide


FAMILY = Family("Bi-Real Net", PAPER, (
    Variant("BiRealNet18", BiRealNetFactory, IMAGENET,
            "Bi-Real Net 18: 16 binary 3x3 convolutions, each with a real shortcut (ImageNet).",
            reported=(Reported("ImageNet", 56.4, 79.5, ops=1.63e8, memory_mbit=33.6),
                      Reported("ImageNet", 57.47, 79.84, source="larq-zoo weights")),
            recipe="bireal_imagenet"),
    Variant("BiRealNet34", BiRealNetFactory, IMAGENET,
            "Bi-Real Net 34: 32 binary 3x3 convolutions in stages of 6, 8, 12, 6 (ImageNet).",
            fields=dict(stages=(6, 8, 12, 6)),
            reported=(Reported("ImageNet", 62.2, 83.9, ops=1.93e8, memory_mbit=43.7),), recipe="bireal_imagenet"),
    Variant("BiRealNet50", BiRealBottleneckFactory, IMAGENET,
            "Bi-Real Net 50: bottlenecks with a real shortcut around each binary conv (ImageNet).",
            reported=(Reported("ImageNet", 62.6, 83.9),), recipe="bireal_imagenet"),
    Variant("BiRealNet20", SmallBiRealNetFactory, SMALL,
            "Bi-Real Net in the ResNet-20 layout (16/32/64 channels) for 28x28 or 32x32 images.",
            recipe="bireal_small", twin="BiRealNet20FP"),
    Variant("BiRealNet20FP", SmallBiRealNetFactory, SMALL,
            "Full-precision twin of BiRealNet20 (clip for sign, real weights): the baseline.",
            fields=REAL_VALUED, recipe="bireal_small"),
))
