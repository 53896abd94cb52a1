"""IR-Net (Qin et al., CVPR 2020): forward and backward information retention.

Weights are binarized with Libra-PB (balanced, standardized, sign, power-of-two scale
per output channel) and every sign's gradient uses the Error Decay Estimator, whose t
and k one `EDESchedule` per model holds and the training callback drives. Activations
are sign (EDE backward); `binary_activations=False` keeps them real (the paper's
1W/32A variants). Hardtanh replaces ReLU. As in the official code, all convolutions
and dense layers are binary except the first convolution, the last dense layer and the
1x1 downsampling convolutions; latent weights are not clipped; binary kernels start
from He-normal (fan-out) weights.

- `IRNetResNet18/34` (ImageNet): 7x7/2 stem -> BN -> hardtanh -> max-pool; Bi-Real-style
  blocks `hardtanh(BN(conv(x)) + shortcut)`, a shortcut around every binary conv;
  downsampling by a full-precision strided 1x1 conv -> BN; head avgpool -> BN -> dense.
- `IRNetResNet20` (CIFAR layout, 16/32/64 channels): 3x3 stem -> BN -> hardtanh; the
  same blocks with the parameter-free "option A" shortcut; head avgpool -> BN -> dense.
- `IRNetVGGSmall`: full-precision 3x3 conv (128) -> BN -> hardtanh, then binary convs
  128, pool, 256, 256, pool, 512, 512, pool (conv -> [pool] -> BN -> hardtanh), dense.

`libra_pb=False` and `ede=False` give the paper's ablations: plain sign weights (EDE or
straight-through gradient) and the straight-through estimator instead of EDE.
"""
import logging
from typing import Tuple

import larq as lq
import tensorflow as tf
from zookeeper import Field, factory

from zoo.blocks import HardTanh, SubsampleZeroPad, bireal_unit, real_projection
from zoo.models.base import ModelFactory, batch_norm, classifier, keras_constructor
from zoo.quantizers import EDESchedule, EDESign, LibraPBSign
from zoo.registry import IMAGENET_INPUT, SMALL_INPUT, Paper, Reported, register_family

PAPER = Paper(
    title="Forward and Backward Information Retention for Accurate Binary Neural Networks",
    authors="Haotong Qin, Ruihao Gong, Xianglong Liu, Mingzhu Shen, Ziran Wei, Fengwei Yu, Jingkuan Song",
    venue="CVPR",
    year=2020,
    url="https://arxiv.org/abs/1909.10788",
    bibtex="""@inproceedings{qin2020irnet,
  title={Forward and Backward Information Retention for Accurate Binary Neural Networks},
  author={Qin, Haotong and Gong, Ruihao and Liu, Xianglong and Shen, Mingzhu and Wei, Ziran and Yu, Fengwei and Song, Jingkuan},
  booktitle={IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  year={2020}
}""",
)


class _UnclippedLatentWeights(logging.Filter):
    """IR-Net leaves latent weights unclipped on purpose (Libra-PB standardizes them),
    so larq's warning about a binary kernel without `kernel_constraint` does not apply."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "kernel_constraint" not in record.getMessage()


logging.getLogger("larq.layers_base").addFilter(_UnclippedLatentWeights())


def hard_tanh(x: tf.Tensor, name: str) -> tf.Tensor:
    return HardTanh(name=name)(x)


class IRNetFactory(ModelFactory):
    """IR-Net's quantizers and ablation switches, shared by its architectures."""

    libra_pb: bool = Field(True)
    ede: bool = Field(True)
    binary_activations: bool = Field(True)
    variant_fields = ("libra_pb", "ede", "binary_activations")

    def quantizers(self) -> dict:
        """Fresh QuantConv2D arguments for one layer; all share the model's schedule."""
        if not hasattr(self, "_schedule"):
            self._schedule = EDESchedule(name="ede_schedule")
        schedule = self._schedule
        if self.libra_pb:
            kernel = LibraPBSign(schedule, estimator="ede" if self.ede else "ste")
        else:
            kernel = EDESign(schedule) if self.ede else lq.quantizers.SteSign(clip_value=1.0)
        inputs = EDESign(schedule) if self.ede else lq.quantizers.SteSign(clip_value=1.0)
        return dict(
            input_quantizer=inputs if self.binary_activations else None,
            kernel_quantizer=kernel,
            kernel_constraint=None,
            kernel_initializer=tf.keras.initializers.VarianceScaling(2.0, "fan_out", "untruncated_normal"),
        )

    def stem_conv(self, x: tf.Tensor, filters: int, kernel_size: int, strides: int) -> tf.Tensor:
        """Full-precision conv -> BN -> hardtanh."""
        x = tf.keras.layers.Conv2D(
            filters, kernel_size, strides=strides, padding="same", use_bias=False,
            kernel_initializer="he_normal", name="stem_conv",
        )(x)
        return hard_tanh(batch_norm("stem_bn")(x), "stem_hardtanh")


class IRNetResNetFactory(IRNetFactory):
    """ResNet of basic blocks, each binary conv with its own shortcut and hardtanh."""

    blocks: Tuple[int, ...] = Field((2, 2, 2, 2))
    filters: Tuple[int, ...] = Field((64, 128, 256, 512))

    def stem(self, x: tf.Tensor) -> tf.Tensor:
        x = self.stem_conv(x, self.filters[0], 7, 2)
        return tf.keras.layers.MaxPool2D(3, strides=2, padding="same", name="stem_pool")(x)

    def shortcut(self, x: tf.Tensor, filters: int, strides: int, name: str) -> tf.Tensor:
        return real_projection(x, filters, strides, name, avg_pool=False)

    def features(self, x: tf.Tensor) -> tf.Tensor:
        x = self.stem(x)
        for s, (blocks, filters) in enumerate(zip(self.blocks, self.filters), start=1):
            for b in range(1, blocks + 1):
                name = f"stage{s}_block{b}"
                strides = 2 if b == 1 and s > 1 else 1
                shortcut = x
                if strides > 1 or x.shape[-1] != filters:
                    shortcut = self.shortcut(x, filters, strides, f"{name}_shortcut")
                x = bireal_unit(x, filters, strides, f"{name}_conv1", self.quantizers(), shortcut)
                x = hard_tanh(x, f"{name}_conv1_hardtanh")
                x = bireal_unit(x, filters, 1, f"{name}_conv2", self.quantizers())
                x = hard_tanh(x, f"{name}_conv2_hardtanh")
        return x

    def top(self, x: tf.Tensor, num_classes: int) -> tf.Tensor:
        """Average pooling -> BN -> full-precision dense -> softmax."""
        x = tf.keras.layers.GlobalAveragePooling2D(name="pool")(x)
        return classifier(batch_norm("pool_bn")(x), num_classes)


@factory
class IRNetResNet18Factory(IRNetResNetFactory):
    name = "IRNetResNet18"


@factory
class IRNetResNet34Factory(IRNetResNetFactory):
    name = "IRNetResNet34"
    blocks = Field((3, 4, 6, 3))


@factory
class IRNetResNet20Factory(IRNetResNetFactory):
    name = "IRNetResNet20"
    min_input_size = 8
    blocks = Field((3, 3, 3))
    filters = Field((16, 32, 64))

    def stem(self, x: tf.Tensor) -> tf.Tensor:
        return self.stem_conv(x, self.filters[0], 3, 1)

    def shortcut(self, x: tf.Tensor, filters: int, strides: int, name: str) -> tf.Tensor:
        return SubsampleZeroPad(filters, strides, name=name)(x)


@factory
class IRNetVGGSmallFactory(IRNetFactory):
    """VGG-Small: a full-precision conv, five binary convs, three max-pools, a dense."""

    name = "IRNetVGGSmall"
    min_input_size = 8
    # (filters, followed by a 2x2 max-pool) of each binary conv.
    layers: Tuple[Tuple[int, bool], ...] = Field(
        lambda: ((128, True), (256, False), (256, True), (512, False), (512, True))
    )

    def features(self, x: tf.Tensor) -> tf.Tensor:
        x = self.stem_conv(x, 128, 3, 1)
        for i, (filters, pool) in enumerate(self.layers, start=1):
            x = lq.layers.QuantConv2D(filters, 3, padding="same", use_bias=False,
                                      name=f"conv{i}_conv", **self.quantizers())(x)
            if pool:
                x = tf.keras.layers.MaxPool2D(2, name=f"conv{i}_pool")(x)
            x = hard_tanh(batch_norm(f"conv{i}_bn")(x), f"conv{i}_hardtanh")
        return x

    def top(self, x: tf.Tensor, num_classes: int) -> tf.Tensor:
        """Flatten -> full-precision dense -> softmax (the official 1W1A VGG-Small)."""
        return classifier(tf.keras.layers.Flatten(name="flatten")(x), num_classes)


@keras_constructor
def IRNetResNet18(*, input_shape=None, input_tensor=None, weights=None, include_top=True, num_classes=None, include_preprocessing=True, binary_activations=True) -> tf.keras.Model:
    """IR-Net ResNet-18: Libra-PB weights, EDE, Bi-Real-style blocks (ImageNet).

    `binary_activations=False` keeps activations real (1W/32A).
    """
    return IRNetResNet18Factory(**locals()).build()


@keras_constructor
def IRNetResNet34(*, input_shape=None, input_tensor=None, weights=None, include_top=True, num_classes=None, include_preprocessing=True, binary_activations=True) -> tf.keras.Model:
    """IR-Net ResNet-34: Libra-PB weights, EDE, Bi-Real-style blocks (ImageNet).

    `binary_activations=False` keeps activations real (1W/32A).
    """
    return IRNetResNet34Factory(**locals()).build()


@keras_constructor
def IRNetResNet20(*, input_shape=None, input_tensor=None, weights=None, include_top=True, num_classes=None, include_preprocessing=True, binary_activations=True) -> tf.keras.Model:
    """IR-Net ResNet-20 (CIFAR layout, option-A shortcuts) for 28x28 or 32x32 images.

    `binary_activations=False` keeps activations real (1W/32A).
    """
    return IRNetResNet20Factory(**locals()).build()


@keras_constructor
def IRNetVGGSmall(*, input_shape=None, input_tensor=None, weights=None, include_top=True, num_classes=None, include_preprocessing=True, binary_activations=True) -> tf.keras.Model:
    """IR-Net VGG-Small: five binary 3x3 convs between a real conv and a real dense.

    `binary_activations=False` keeps activations real (1W/32A).
    """
    return IRNetVGGSmallFactory(**locals()).build()


register_family(
    "IR-Net",
    PAPER,
    [
        (IRNetResNet18, IRNetResNet18Factory, IMAGENET_INPUT, [
            Reported("ImageNet", 58.1, 80.0, note="1W/1A"),
            Reported("ImageNet", 66.5, 86.8, note="1W/32A"),
        ]),
        (IRNetResNet34, IRNetResNet34Factory, IMAGENET_INPUT, [
            Reported("ImageNet", 62.9, 84.1, note="1W/1A"),
            Reported("ImageNet", 70.4, 89.5, note="1W/32A"),
        ]),
        (IRNetResNet20, IRNetResNet20Factory, SMALL_INPUT, [
            Reported("CIFAR-10", 86.5, note="1W/1A"),
            Reported("CIFAR-10", 90.8, note="1W/32A"),
        ]),
        (IRNetVGGSmall, IRNetVGGSmallFactory, SMALL_INPUT, [
            Reported("CIFAR-10", 90.4, note="1W/1A; full precision 91.7"),
        ]),
    ],
)
