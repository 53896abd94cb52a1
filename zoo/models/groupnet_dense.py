"""Group-Net for semantic segmentation: a dilated K-base backbone with BPAC, FCN and ASPP heads.

The Group-Net paper (Section 5, and the official segmentation code,
github.com/bohanzhuang/Group-Net-semantic-segmentation) turns its binary backbone
into a segmentation network:

- **Dilated backbone, output stride 8.** The stages that would take the stride past
  8 (ResNet-18/34: the last two) run at stride 1 and are dilated instead.
- **Binary Parallel Atrous Convolution (BPAC).** In a dilated stage every base of a
  group has its own dilation rate: with K=5, [2, 3, 4, 5, 6] in the third stage and
  [6, 7, 8, 9, 10] in the fourth (`zoo.models.groupnet.bpac_rates`). The official
  code overwrites its rate list in a loop and so gives every base the last rate; this
  module implements the per-base rates the paper describes.
- **FCN head** (`GroupNetFCN`, full precision, the official `FCNHead`): 3x3 conv to
  C/4 channels -> BN -> ReLU -> dropout 0.1 -> 1x1 conv to the classes, then bilinear
  upsampling to the input size.
- **DeepLab head** (`GroupNetDeepLab`, the official `binary_deeplab.py`): ASPP whose
  five branches (1x1, three 3x3 atrous at `aspp_rates`, image pooling + 1x1) are each K
  binary convolutions averaged, then BN; the fusion is full precision: concat -> 1x1
  conv to C/8 -> BN -> ReLU -> 3x3 conv -> BN -> ReLU -> 1x1 conv to the classes ->
  bilinear upsampling.

The models return per-pixel class probabilities (batch, H, W, classes) at the input
size; `include_top=False` returns the backbone's last feature map.

Where this module differs from the official code, on purpose:
- the ASPP branches binarize their input with sign (ApproxSign gradient) and pad it
  with +1, like every binary convolution of the backbone; the official ASPP uses
  DoReFa's {0, 1} activations with zero padding, which Larq Compute Engine cannot run
  as binary convolutions;
- no auxiliary FCN loss on the third stage (the official training flag `--aux` is off
  by default).

The small variants trained here on Fashion-MNIST scenes (96x96) use the ResNet-20
layout as backbone with a stride-2 stem (`backbone_options={"stem_strides": 2}`), so
that the garments (20-56 pixels) reach the blocks at about the size the Fashion-MNIST
classifier saw, and `output_stride=4`: the last stage is dilated, with BPAC.

References:
    - Zhuang et al. Structured Binary Neural Networks for Accurate Image
      Classification and Semantic Segmentation. CVPR 2019, Section 5.
    - Official code: github.com/bohanzhuang/Group-Net-semantic-segmentation
      (`encoding/models/binary_deeplab.py`, `fcn.py`, `resnet_binary_dilated.py`).
"""
from typing import Any, Dict, Optional, Tuple

import tensorflow as tf
from zookeeper import Field, factory

from zoo import registry, weights as weights_index
from zoo.blocks import AggregateBranches, RepeatBranches, grouped_binary_conv_layer
from zoo.models.base import ModelFactory, batch_norm, options_from_json
from zoo.models.groupnet import PAPER, GroupNetFactory, groupnet_constructor
from zoo.registry import Reported, register_family

# The backbone's Group-Net fields, set on the dense model and passed to its backbone.
BACKBONE_FIELDS = ("num_bases", "aggregation", "soft_gates", "input_quantizer", "kernel_quantizer",
                   "output_stride", "dilation_rates")


@tf.keras.utils.register_keras_serializable(package="zoo")
class ResizeLike(tf.keras.layers.Layer):
    """Bilinear resize of the first input to the height and width of the second.

    Returns:
        `[x, reference]` -> x resized to reference's (height, width).
    """

    def call(self, inputs):
        x, reference = inputs
        return tf.image.resize(x, tf.shape(reference)[1:3], method="bilinear")


class GroupNetDenseFactory(ModelFactory):
    """A dense-prediction model on a dilated Group-Net backbone: the shared options.

    `backbone` names a registered Group-Net classifier (its factory builds the
    backbone); `backbone_options` are further fields of that factory (e.g.
    `{"stem_strides": 2}` for the ResNet-20 layout); `backbone_weights` is a
    classification checkpoint (tag or path) of that backbone to start from.
    """

    backbone: str = Field("GroupNetResNet18")
    backbone_options: Dict[str, Any] = Field(lambda: {})
    backbone_weights: Optional[str] = Field(None)
    num_bases: int = Field(5)
    aggregation: str = Field("scales")
    soft_gates: bool = Field(True)
    input_quantizer: Optional[str] = Field("approx_sign")
    kernel_quantizer: Optional[str] = Field("groupnet_weight_sign")
    output_stride: Optional[int] = Field(8)
    dilation_rates: Optional[Tuple[Tuple[int, ...], ...]] = Field(None)
    variant_fields = ("backbone", "backbone_options", *BACKBONE_FIELDS)

    def backbone_factory(self, **fields) -> GroupNetFactory:
        """The backbone's factory with the dense model's Group-Net options.

        Raises:
            ValueError: `backbone` is not a registered Group-Net classifier.
        """
        spec = registry.get(self.backbone)
        if not issubclass(spec.factory, GroupNetFactory):
            raise ValueError(
                f"{self.name}: backbone must be a Group-Net classifier (GroupNetResNet18, "
                f"GroupNetResNet34, GroupNetResNet50 or GroupNetResNet20), not {self.backbone!r}."
            )
        options = {name: getattr(self, name) for name in BACKBONE_FIELDS}
        return spec.factory(**{**options, **dict(self.backbone_options), **fields})

    @property
    def min_input_size(self) -> int:
        return registry.get(self.backbone).factory.min_input_size

    def backbone_outputs(self, x: tf.Tensor):
        """Every stage's aggregate Y of the dilated backbone."""
        factory_ = self.backbone_factory()
        factory_.check_options()
        return factory_.stage_outputs(x)

    def features(self, x: tf.Tensor) -> tf.Tensor:
        object.__setattr__(self, "_image", x)  # the input size, for the head's upsampling
        return self.backbone_outputs(x)[-1]

    def head(self, x: tf.Tensor, num_classes: int) -> tf.Tensor:
        raise NotImplementedError

    def top(self, x: tf.Tensor, num_classes: int) -> tf.Tensor:
        """The head, upsampled bilinearly to the input size, then a per-pixel softmax."""
        x = self.head(x, num_classes)
        x = ResizeLike(name="upsample")([x, self._image])
        return tf.keras.layers.Activation("softmax", dtype="float32", name="predictions")(x)

    def build(self) -> tf.keras.Model:
        if self.backbone_weights is not None and self.weights is not None:
            raise ValueError(
                f"{self.name}: pass weights= (a whole {self.name} checkpoint) or backbone_weights= "
                "(a classifier's checkpoint for the backbone), not both."
            )
        model = super().build()
        if self.backbone_weights is not None:
            self.load_backbone(model)
        return model

    def load_backbone(self, model: tf.keras.Model) -> None:
        """Copies a classification checkpoint's backbone weights into `model`, layer by name.

        Raises:
            ValueError: the checkpoint is not of this backbone's variant (e.g. another K).
        """
        spec = registry.get(self.backbone)
        _, entry = weights_index.resolve(spec.name, self.backbone_weights, False, spec.task)
        # Quantizers may differ (same weights, as Group-Net's stage 1 starts stage 2); not the shapes.
        options = options_from_json(entry.options if entry else {})
        different = {k: v for k, v in options.items()
                     if k not in ("input_quantizer", "kernel_quantizer") and getattr(self, k, v) != v}
        if different:
            raise ValueError(
                f'{self.name}: backbone_weights="{self.backbone_weights}" are a {spec.name} trained '
                f"with {different}; build the model with those options or drop backbone_weights."
            )
        classifier = self.backbone_factory(
            weights=self.backbone_weights, include_top=False, input_shape=model.input_shape[1:],
            include_preprocessing=self.include_preprocessing, output_stride=None, dilation_rates=None,
        ).build()
        for layer in classifier.layers:
            if not layer.weights:
                continue
            target = model.get_layer(layer.name)
            shapes = [tuple(w.shape) for w in target.weights], [tuple(w.shape) for w in layer.weights]
            if shapes[0] != shapes[1]:
                raise ValueError(
                    f'{self.name}: backbone_weights="{self.backbone_weights}" are a {self.backbone} '
                    f"of another variant ({layer.name}: weights {shapes[1]}, this model {shapes[0]}); "
                    f"build the model with the checkpoint's options (num_bases=...) or drop backbone_weights."
                )
            target.set_weights(layer.get_weights())


@factory
class GroupNetFCNFactory(GroupNetDenseFactory):
    """FCN head on the dilated Group-Net backbone."""

    name = "GroupNetFCN"
    dropout: float = Field(0.1)

    def head(self, x: tf.Tensor, num_classes: int) -> tf.Tensor:
        """Full precision: 3x3 conv (C/4) -> BN -> ReLU -> dropout -> 1x1 conv to classes."""
        x = tf.keras.layers.Conv2D(x.shape[-1] // 4, 3, padding="same", use_bias=False, name="head_conv")(x)
        x = batch_norm("head_bn")(x)
        x = tf.keras.layers.ReLU(name="head_relu")(x)
        x = tf.keras.layers.SpatialDropout2D(self.dropout, name="head_dropout")(x)
        return tf.keras.layers.Conv2D(num_classes, 1, name="logits")(x)


@factory
class GroupNetDeepLabFactory(GroupNetDenseFactory):
    """DeepLab-v3 head (ASPP of K-base binary branches) on the dilated Group-Net backbone."""

    name = "GroupNetDeepLab"
    aspp_rates: Tuple[int, ...] = Field((12, 24, 36))
    variant_fields = (*GroupNetDenseFactory.variant_fields, "aspp_rates")

    def aspp_branch(self, x: tf.Tensor, filters: int, kernel_size: int, rate: int, name: str) -> tf.Tensor:
        """K binary convolutions of sign(Y) at one rate, averaged, then BN."""
        k = self.num_bases
        x = RepeatBranches(k, name=f"{name}_inputs")(x)
        conv = grouped_binary_conv_layer(x.shape[-1], filters, kernel_size, 1, k, name,
                                         self.backbone_factory().quantizers(), dilations=(rate,) * k)
        x = AggregateBranches(k, "mean", name=f"{name}_mean")(conv(x))
        return batch_norm(f"{name}_bn")(x)

    def head(self, x: tf.Tensor, num_classes: int) -> tf.Tensor:
        """ASPP (binary branches), then full-precision fusion and classifier."""
        filters = x.shape[-1] // 8
        branches = [self.aspp_branch(x, filters, 1, 1, "aspp_b0")]
        for i, rate in enumerate(self.aspp_rates, start=1):
            branches.append(self.aspp_branch(x, filters, 3, rate, f"aspp_b{i}"))
        pooled = tf.keras.layers.GlobalAveragePooling2D(keepdims=True, name="aspp_pool")(x)
        pooled = self.aspp_branch(pooled, filters, 1, 1, f"aspp_b{len(branches)}")
        branches.append(ResizeLike(name="aspp_pool_resize")([pooled, x]))
        x = tf.keras.layers.Concatenate(name="aspp_concat")(branches)
        for name, size in (("aspp_project", 1), ("head", 3)):
            x = tf.keras.layers.Conv2D(filters, size, padding="same", use_bias=False, name=f"{name}_conv")(x)
            x = batch_norm(f"{name}_bn")(x)
            x = tf.keras.layers.ReLU(name=f"{name}_relu")(x)
        return tf.keras.layers.Conv2D(num_classes, 1, name="logits")(x)


DENSE_DOC = """
    `backbone` names the Group-Net classifier the backbone is built as (default
    "GroupNetResNet18"), `backbone_options` sets more of its fields (e.g.
    `{"stem_strides": 2}` for "GroupNetResNet20"), `backbone_weights` starts the
    backbone from one of its classification checkpoints (a tag or a path).
    `output_stride` is the backbone's stride: later stages are dilated, each base at
    its own rate (`dilation_rates`, default `bpac_rates`); None keeps the classifier's.
"""

SEGMENTATION_DOC = DENSE_DOC + """
    The model returns per-pixel class probabilities at the input size;
    `include_top=False` returns the backbone's last feature map.
"""


def dense_constructor(doc: str):
    """A decorator appending `doc`, then Group-Net's and the shared sections."""
    def decorate(fn):
        fn.__doc__ = (fn.__doc__ or "").rstrip() + "\n" + doc
        return groupnet_constructor(fn)
    return decorate


segmentation_constructor = dense_constructor(SEGMENTATION_DOC)


@segmentation_constructor
def GroupNetFCN(*, input_shape=None, input_tensor=None, weights=None, include_top=True, num_classes=None, include_preprocessing=True, backbone="GroupNetResNet18", backbone_options=None, backbone_weights=None, num_bases=5, aggregation="scales", soft_gates=True, output_stride=8, dilation_rates=None) -> tf.keras.Model:
    """Group-Net FCN: a dilated K-base binary backbone with BPAC and a full-precision FCN head."""
    backbone_options = backbone_options or {}
    return GroupNetFCNFactory(**locals()).build()


@segmentation_constructor
def GroupNetDeepLab(*, input_shape=None, input_tensor=None, weights=None, include_top=True, num_classes=None, include_preprocessing=True, backbone="GroupNetResNet18", backbone_options=None, backbone_weights=None, num_bases=5, aggregation="scales", soft_gates=True, output_stride=8, dilation_rates=None, aspp_rates=(12, 24, 36)) -> tf.keras.Model:
    """Group-Net DeepLab: the dilated BPAC backbone and an ASPP of K-base binary branches."""
    backbone_options = backbone_options or {}
    return GroupNetDeepLabFactory(**locals()).build()


register_family(
    "Group-Net",
    PAPER,
    [
        (GroupNetFCN, GroupNetFCNFactory, registry.VOC_SEGMENTATION, [
            Reported("PASCAL VOC 2012", miou=65.1, note="ResNet-18 backbone, K=5, FCN-32s"),
        ]),
        (GroupNetDeepLab, GroupNetDeepLabFactory, registry.VOC_SEGMENTATION, []),
    ],
)
