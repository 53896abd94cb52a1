"""IR-Net (Qin et al., CVPR 2020): forward and backward information retention.

Weights are binarized with Libra-PB (balanced, standardized, sign, power-of-two scale
per output channel) and every sign's gradient uses the Error Decay Estimator, whose t
and k one `EDESchedule` per model holds and the training callback drives. As in the
official code, all convolutions and dense layers are binary except the first
convolution, the last dense layer and the 1x1 downsampling convolutions; latent weights
are not clipped.

The 1W/1A models (binary weights and activations; activations sign with EDE backward,
hardtanh for ReLU; the official `1w1a` code):

- `IRNetResNet18/34` (ImageNet): 7x7/2 stem -> BN -> hardtanh -> max-pool; Bi-Real-style
  blocks `hardtanh(BN(conv(x)) + shortcut)`, a shortcut around every binary conv;
  downsampling by a full-precision strided 1x1 conv -> BN; head avgpool -> BN -> dense.
- `IRNetResNet20` (CIFAR layout, 16/32/64 channels): 3x3 stem -> BN -> hardtanh; the
  same blocks with the parameter-free "option A" shortcut; head avgpool -> BN -> dense.
- `IRNetVGGSmall`: full-precision 3x3 conv (128) -> BN -> hardtanh, then binary convs
  128, pool, 256, 256, pool, 512, 512, pool (conv -> [pool] -> BN -> hardtanh), dense.

The 1W/32A models (binary weights, real activations) are the official `1w32a` code's
own network, standard ResNet basic blocks with ReLU, one shortcut per two binary convs:
`relu(BN(conv(relu(BN(conv(x))))) + shortcut)`.

- `IRNetResNet18W1A32/34W1A32` (`ImageNet/ResNet18/1w32a/models/resnet.py`): 7x7/2 stem
  -> BN -> ReLU -> max-pool; downsampling by a full-precision strided 1x1 conv -> BN;
  head avgpool -> BN -> dense. The official model also builds a `BatchNorm1d(1000)` it
  never calls (2,000 parameters more than this one's); it is left out.
- `IRNetResNet20W1A32` (`CIFAR-10/ResNet20/1w32a/resnet.py`): 3x3 stem -> BN with no
  nonlinearity; option-A shortcuts; head avgpool -> BN -> ReLU -> dense.

The stem and binary convolutions start from He-normal weights: fan-out for the ImageNet
ResNets and VGG-Small (`normal(0, sqrt(2 / (k*k*out)))`), fan-in for the CIFAR
ResNet-20s (PyTorch's `kaiming_normal`), whose dense layer starts He-normal too. sign(0) is +1 here (larq and
LCE) where PyTorch's `torch.sign` gives 0: it differs only on exact zeros (docs/quantizers.md).

`libra_pb=False` and `ede=False` give the paper's ablations: plain sign weights (EDE or
straight-through gradient) and the straight-through estimator instead of EDE.
`binary_activations=False` on a 1W/1A model keeps its activations real: an ablation of
this zoo, not the paper's 1W/32A network (those are the `W1A32` models).
`IRNetVGGSmallFP` is VGG-Small with neither quantizer (`binary_weights=False` too), the
same hardtanh network in float: the robustness track's float twin of `IRNetVGGSmall`.
"""
import logging
from typing import ClassVar, Optional, Tuple

import larq as lq
import tensorflow as tf
from zookeeper import Field

from zoo.blocks import (
    HardTanh,
    SubsampleZeroPad,
    batch_norm,
    binary_conv_bn,
    bireal_unit,
    real_projection,
)
from zoo.fused import fused
from zoo.models.base import ModelFactory, classifier
from zoo.models.family import IMAGENET, SMALL, Family, Paper, Reported, Variant
from zoo.quantizers import T_MAX, T_MIN, EDESchedule, EDESign, LibraPBSign, ede_t_k

PAPER = Paper(
    title="Forward and Backward Information Retention for Accurate Binary Neural Networks",
    authors="Haotong Qin, Ruihao Gong, Xianglong Liu, Mingzhu Shen, Ziran Wei, Fengwei Yu, Jingkuan Song",
    venue="CVPR",
    year=2020,
    url="https://arxiv.org/abs/1909.10788",
    bibtex="""@inproceedings{qin2020irnet,
  title={Forward and Backward Information Retention for Accurate Binary Neural Networks},
  author={Qin, Haotong and Gong, Ruihao and Liu, Xianglong and Shen, Mingzhu and Wei, Ziran and Yu, Fengwei
          and Song, Jingkuan},
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


class IRNetFactory(ModelFactory):
    """IR-Net's quantizers and ablation switches, shared by its architectures."""

    libra_pb: bool = Field(True)
    ede: bool = Field(True)
    binary_activations: bool = Field(True)
    binary_weights: bool = Field(True)
    variant_fields = ("libra_pb", "ede", "binary_activations", "binary_weights")
    variant_fields_added = {"binary_weights": True}
    constructor_fields = ("binary_activations",)
    constructor_doc = """
    `binary_activations=False` keeps the activations real (an ablation of the 1W/1A
    network, not the paper's 1W/32A one: that is the model named `...W1A32`).
"""
    # The EDE schedule of training: t from ede_t_min to ede_t_max, per epoch (None) or
    # every ede_update_every steps (the ImageNet code's 100).
    ede_t_min: float = Field(T_MIN)
    ede_t_max: float = Field(T_MAX)
    ede_update_every: Optional[int] = Field(None)
    # The convolutions' He-normal fan, and the dense layer's (None: Keras' Glorot), as
    # the official code of each architecture initialises them.
    kernel_fan: ClassVar[str] = "fan_out"
    dense_fan: ClassVar[Optional[str]] = None

    def callbacks(self) -> list:
        return [EDEUpdate(self.ede_t_min, self.ede_t_max, self.ede_update_every)]

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
            kernel_quantizer=kernel if self.binary_weights else None,
            kernel_constraint=None,
            kernel_initializer=he_normal(self.kernel_fan),
        )

    def classifier(self, x: tf.Tensor, num_classes: int) -> tf.Tensor:
        return classifier(x, num_classes, he_normal(self.dense_fan) if self.dense_fan else "glorot_uniform")

    def activation(self, x: tf.Tensor, name: str) -> tf.Tensor:
        """The nonlinearity after a BN (layer `{name}_hardtanh`): hardtanh in 1W/1A."""
        return HardTanh(name=f"{name}_hardtanh")(x)

    def stem_conv(self, x: tf.Tensor, filters: int, kernel_size: int, strides: int,
                  activation: bool = True) -> tf.Tensor:
        """Full-precision conv -> BN [-> the nonlinearity]."""
        x = tf.keras.layers.Conv2D(
            filters, kernel_size, strides=strides, padding="same", use_bias=False,
            kernel_initializer=he_normal(self.kernel_fan), name="stem_conv",
        )(x)
        x = batch_norm("stem_bn")(x)
        return self.activation(x, "stem") if activation else x


def he_normal(fan: str) -> tf.keras.initializers.Initializer:
    """He-normal weights, normal(0, sqrt(2 / fan)), with the fan in or out (PyTorch's
    `kaiming_normal_`, untruncated)."""
    return tf.keras.initializers.VarianceScaling(2.0, fan, "untruncated_normal")


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
                x = self.block(x, filters, strides, name, shortcut)
        return x

    def block(self, x: tf.Tensor, filters: int, strides: int, name: str, shortcut: tf.Tensor) -> tf.Tensor:
        """1W/1A: hardtanh(BN(conv(x)) + shortcut), then the same around the second conv."""
        x = bireal_unit(x, filters, strides, f"{name}_conv1", self.quantizers(), shortcut)
        x = self.activation(x, f"{name}_conv1")
        x = bireal_unit(x, filters, 1, f"{name}_conv2", self.quantizers())
        return self.activation(x, f"{name}_conv2")

    def top(self, x: tf.Tensor, num_classes: int, image: tf.Tensor) -> tf.Tensor:
        """Average pooling -> BN -> full-precision dense -> softmax."""
        x = tf.keras.layers.GlobalAveragePooling2D(name="pool")(x)
        return self.classifier(batch_norm("pool_bn")(x), num_classes)


class SmallIRNetResNetFactory(IRNetResNetFactory):
    """The CIFAR layout: a 3x3 stem, three stages of 16/32/64 channels, option-A shortcuts."""

    min_input_size = 8
    blocks = Field((3, 3, 3))
    filters = Field((16, 32, 64))
    kernel_fan = dense_fan = "fan_in"

    def stem(self, x: tf.Tensor) -> tf.Tensor:
        return self.stem_conv(x, self.filters[0], 3, 1)

    def shortcut(self, x: tf.Tensor, filters: int, strides: int, name: str) -> tf.Tensor:
        return SubsampleZeroPad(filters, strides, name=name)(x)


class IRNetW1A32Factory(IRNetResNetFactory):
    """The official 1W/32A ResNet: real activations, standard basic blocks with ReLU."""

    binary_activations = Field(False)
    variant_fields = ("libra_pb", "ede")
    constructor_fields = ()
    constructor_doc = ""

    def activation(self, x: tf.Tensor, name: str) -> tf.Tensor:
        return tf.keras.layers.ReLU(name=f"{name}_relu")(x)

    def block(self, x: tf.Tensor, filters: int, strides: int, name: str, shortcut: tf.Tensor) -> tf.Tensor:
        """relu(BN(conv(relu(BN(conv(x))))) + shortcut): one shortcut per two binary convs."""
        y = self.activation(binary_conv_bn(x, filters, 3, strides, f"{name}_conv1", self.quantizers()),
                            f"{name}_conv1")
        y = binary_conv_bn(y, filters, 3, 1, f"{name}_conv2", self.quantizers())
        return self.activation(tf.keras.layers.Add(name=f"{name}_add")([y, shortcut]), name)


class SmallIRNetW1A32Factory(IRNetW1A32Factory, SmallIRNetResNetFactory):
    """The official CIFAR 1W/32A ResNet-20: stem conv -> BN (no nonlinearity), option-A
    shortcuts, head avgpool -> BN -> ReLU -> dense (He-normal, fan-in)."""

    def stem(self, x: tf.Tensor) -> tf.Tensor:
        return self.stem_conv(x, self.filters[0], 3, 1, activation=False)

    def top(self, x: tf.Tensor, num_classes: int, image: tf.Tensor) -> tf.Tensor:
        x = tf.keras.layers.GlobalAveragePooling2D(name="pool")(x)
        return self.classifier(self.activation(batch_norm("pool_bn")(x), "pool"), num_classes)


class IRNetVGGFactory(IRNetFactory):
    """VGG-Small: a full-precision conv, five binary convs, three max-pools, a dense."""

    min_input_size = 8
    # (filters, followed by a 2x2 max-pool) of each binary conv.
    layers: Tuple[Tuple[int, bool], ...] = Field(
        lambda: ((128, True), (256, False), (256, True), (512, False), (512, True))
    )

    def features(self, x: tf.Tensor) -> tf.Tensor:
        x = self.stem_conv(x, 128, 3, 1)
        for i, (filters, pool) in enumerate(self.layers, start=1):
            x = lq.layers.QuantConv2D(filters, 3, padding="same", use_bias=False,
                                      name=f"conv{i}_conv", **fused(self.quantizers()))(x)
            if pool:
                x = tf.keras.layers.MaxPool2D(2, name=f"conv{i}_pool")(x)
            x = self.activation(batch_norm(f"conv{i}_bn")(x), f"conv{i}")
        return x

    def top(self, x: tf.Tensor, num_classes: int, image: tf.Tensor) -> tf.Tensor:
        """Flatten -> full-precision dense -> softmax (the official 1W1A VGG-Small)."""
        return self.classifier(tf.keras.layers.Flatten(name="flatten")(x), num_classes)


def ede_schedules(model: tf.keras.Model) -> list:
    """The distinct `EDESchedule`s that the quantizers of `model` read."""
    found = {}
    for layer in model.submodules:
        if isinstance(layer, (EDESign, LibraPBSign)):
            found[id(layer.schedule)] = layer.schedule
    return list(found.values())


class EDEUpdate(tf.keras.callbacks.Callback):
    """IR-Net's Error Decay Estimator schedule: sets t and k of every EDE quantizer.

    t = T_min * 10^(p * log10(T_max / T_min)), k = max(1/t, 1), with p the training
    progress: epoch / epochs at the start of each epoch (`update_every=None`, the CIFAR
    code), or step / steps, refreshed every `update_every` steps (the ImageNet code).
    The values derive from the epoch and the optimizer's step, so a resumed run picks
    up the schedule where it stopped.
    """

    def __init__(self, t_min: float = T_MIN, t_max: float = T_MAX, update_every: Optional[int] = None):
        super().__init__()
        self.t_min, self.t_max, self.update_every = t_min, t_max, update_every
        self.value = None

    def set_progress(self, progress: float) -> None:
        t, k = ede_t_k(min(max(progress, 0.0), 1.0), self.t_min, self.t_max)
        if (t, k) != self.value and self.schedules:  # a model without EDE quantizers has none
            for schedule in self.schedules:
                schedule.assign(t, k)
            self.value = (t, k)

    def on_train_begin(self, logs=None):
        self.value = None
        self.schedules = ede_schedules(self.model)
        self.total_steps = self.params["epochs"] * self.params["steps"]

    def on_epoch_begin(self, epoch, logs=None):
        if self.update_every is None:
            self.set_progress(epoch / self.params["epochs"])

    def on_train_batch_begin(self, batch, logs=None):
        if self.update_every is not None:
            step = int(self.model.optimizer.iterations)
            self.set_progress((step - step % self.update_every) / self.total_steps)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.value is not None:
            logs["ede_t"], logs["ede_k"] = self.value


FAMILY = Family("IR-Net", PAPER, (
    Variant("IRNetResNet18", IRNetResNetFactory, IMAGENET,
            "IR-Net ResNet-18 1W/1A: Libra-PB weights, EDE, Bi-Real-style blocks (ImageNet).",
            reported=(Reported("ImageNet", 58.1, 80.0, note="1W/1A"),), recipe="irnet_imagenet"),
    Variant("IRNetResNet34", IRNetResNetFactory, IMAGENET,
            "IR-Net ResNet-34 1W/1A: Libra-PB weights, EDE, Bi-Real-style blocks (ImageNet).",
            fields=dict(blocks=(3, 4, 6, 3)),
            reported=(Reported("ImageNet", 62.9, 84.1, note="1W/1A"),), recipe="irnet_imagenet"),
    Variant("IRNetResNet20", SmallIRNetResNetFactory, SMALL,
            "IR-Net ResNet-20 1W/1A (CIFAR layout, option-A shortcuts) for 28x28 or 32x32 images.",
            fields=dict(ede_t_min=1e-3),  # the official 1W/1A CIFAR script's T_min
            reported=(Reported("CIFAR-10", 86.5, note="1W/1A"),), recipe="irnet_resnet20", twin="BiRealNet20FP"),
    Variant("IRNetVGGSmall", IRNetVGGFactory, SMALL,
            "IR-Net VGG-Small 1W/1A: five binary 3x3 convs between a real conv and a real dense.",
            reported=(Reported("CIFAR-10", 90.4, note="1W/1A; full precision 91.7"),), recipe="irnet_vgg_small",
            twin="IRNetVGGSmallFP"),
    Variant("IRNetVGGSmallFP", IRNetVGGFactory, SMALL,
            "Full-precision twin of IRNetVGGSmall (no quantizers, the same hardtanh network): the baseline.",
            fields=dict(binary_activations=False, binary_weights=False), recipe="irnet_vgg_small"),
    Variant("IRNetResNet18W1A32", IRNetW1A32Factory, IMAGENET,
            "IR-Net ResNet-18 1W/32A: Libra-PB weights, real activations, ReLU basic blocks (ImageNet).",
            reported=(Reported("ImageNet", 66.5, 86.8, note="1W/32A"),), recipe="irnet_imagenet"),
    Variant("IRNetResNet34W1A32", IRNetW1A32Factory, IMAGENET,
            "IR-Net ResNet-34 1W/32A: Libra-PB weights, real activations, ReLU basic blocks (ImageNet).",
            fields=dict(blocks=(3, 4, 6, 3)),
            reported=(Reported("ImageNet", 70.4, 89.5, note="1W/32A"),), recipe="irnet_imagenet"),
    Variant("IRNetResNet20W1A32", SmallIRNetW1A32Factory, SMALL,
            "IR-Net ResNet-20 1W/32A: Libra-PB weights, real activations, ReLU basic blocks (CIFAR layout).",
            reported=(Reported("CIFAR-10", 90.8, note="1W/32A"),), recipe="irnet_resnet20"),
))
