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
- training's auxiliary FCN loss and the head's 10x learning rate are the segmentation
  task's settings (`SegmentationTask`, `auxiliary_head`, `backbone_variables`).

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
from zookeeper import Field

from zoo import weights as weights_index
from zoo.blocks import (
    AggregateBranches,
    RepeatBranches,
    batch_norm,
    grouped_binary_conv_layer,
)
from zoo.models import groupnet
from zoo.models.base import ModelFactory, options_from_json, task_name
from zoo.models.family import VOC, Family, Reported, Variant

# A dense model's float twin (the robustness track's, the train_table suite's "full
# precision"): one base, real weights and activations, the blocks' ReLUs kept.
FLOAT_TWIN = dict(num_bases=1, input_quantizer=None, kernel_quantizer=None)

# The backbone's Group-Net fields, set on the dense model and passed to its backbone.
BACKBONE_FIELDS = ("num_bases", "aggregation", "soft_gates", "input_quantizer", "kernel_quantizer",
                   "output_stride", "dilation_rates")


DENSE_DOC = """
    `backbone` names the Group-Net classifier the backbone is built as (default
    "GroupNetResNet18"), `backbone_options` sets more of its fields (e.g.
    `{"stem_strides": 2}` for "GroupNetResNet20"), `backbone_weights` starts the
    backbone from one of its classification checkpoints (a tag or a path).
    `output_stride` is the backbone's stride: later stages are dilated, each base at
    its own rate (`dilation_rates`, default `bpac_rates`); None keeps the classifier's.
"""


# The official FCNHead's dropout rate (its `nn.Dropout2d(0.1)`).
FCN_DROPOUT = 0.1


def fcn_head(x: tf.Tensor, num_classes: int, dropout: float, prefix: str, logits: str) -> tf.Tensor:
    """The official `FCNHead`, full precision: 3x3 conv (C/4) -> BN -> ReLU -> dropout ->
    1x1 conv to the classes; its layers are named `prefix`_conv, ... and `logits`."""
    x = tf.keras.layers.Conv2D(x.shape[-1] // 4, 3, padding="same", use_bias=False, name=f"{prefix}_conv")(x)
    x = batch_norm(f"{prefix}_bn")(x)
    x = tf.keras.layers.ReLU(name=f"{prefix}_relu")(x)
    x = tf.keras.layers.SpatialDropout2D(dropout, name=f"{prefix}_dropout")(x)
    return tf.keras.layers.Conv2D(num_classes, 1, name=logits)(x)


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
    constructor_fields = ("backbone", "backbone_options", "backbone_weights", "num_bases", "aggregation",
                          "soft_gates", "output_stride", "dilation_rates")
    constructor_doc = groupnet.GroupNetFactory.constructor_doc + DENSE_DOC + """
    The model returns per-pixel class probabilities at the input size;
    `include_top=False` returns the backbone's last feature map.
"""

    def backbone_factory(self, **fields) -> groupnet.GroupNetFactory:
        """The backbone's factory with the dense model's Group-Net options.

        Raises:
            ValueError: `backbone` is not a registered Group-Net classifier.
        """
        classifiers = groupnet.FAMILY.factories()
        if self.backbone not in classifiers:
            raise ValueError(f"{self.name}: backbone must be a Group-Net classifier ({', '.join(classifiers)}), "
                             f"not {self.backbone!r}.")
        options = {name: getattr(self, name) for name in BACKBONE_FIELDS}
        return classifiers[self.backbone](**{**options, **dict(self.backbone_options), **fields})

    @property
    def min_input_size(self) -> int:
        return self.backbone_factory().min_input_size

    def backbone_outputs(self, x: tf.Tensor):
        """Every stage's aggregate Y of the dilated backbone."""
        factory_ = self.backbone_factory()
        factory_.check_options()
        return factory_.stage_outputs(x)

    def features(self, x: tf.Tensor) -> tf.Tensor:
        return self.backbone_outputs(x)[-1]

    def head(self, x: tf.Tensor, num_classes: int) -> tf.Tensor:
        raise NotImplementedError

    def stage_output(self, model: tf.keras.Model, stage: int) -> tf.Tensor:
        """The output of one backbone stage in `model` (a Python index: -1 the last)."""
        blocks = self.backbone_factory().blocks
        s = range(1, len(blocks) + 1)[stage]
        return model.get_layer(f"stage{s}_block{blocks[s - 1]}_aggregate").output

    def backbone_variables(self, model: tf.keras.Model) -> list:
        """The backbone's trainable variables in `model`: those its last stage's output
        depends on. The rest (the head, a skip, ASPP) are the head's."""
        return tf.keras.Model(model.inputs, self.stage_output(model, -1)).trainable_variables

    def auxiliary_head(self, model: tf.keras.Model) -> tf.keras.Model:
        """The auxiliary head of the official segmentation training (`--aux`): an FCN
        head on the stage before the last, upsampled to the input size, softmax; a model
        from `model`'s inputs, sharing its layers. PyTorch-Encoding's is
        `FCNHead(1024, classes)` on ResNet stage 3, so it runs with ResNet-50 only (the
        ResNet-18 and -34 stage has 256 channels); here it takes the stage's own width."""
        x = fcn_head(self.stage_output(model, -2), model.output_shape[-1], FCN_DROPOUT, "aux", "aux_logits")
        x = ResizeLike(name="aux_upsample")([x, model.inputs[0]])
        x = tf.keras.layers.Activation("softmax", dtype="float32", name="aux_predictions")(x)
        return tf.keras.Model(model.inputs, x)

    def top(self, x: tf.Tensor, num_classes: int, image: tf.Tensor) -> tf.Tensor:
        """The head, upsampled bilinearly to the input size, then a per-pixel softmax."""
        x = self.head(x, num_classes)
        x = ResizeLike(name="upsample")([x, image])
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
        _, entry = weights_index.resolve(self.backbone, self.backbone_weights, False, task_name(self.backbone))
        # Quantizers may differ (same weights, as Group-Net's stage 1 starts stage 2); not the shapes.
        options = options_from_json(entry.options if entry else {})
        different = {k: v for k, v in options.items()
                     if k not in ("input_quantizer", "kernel_quantizer") and getattr(self, k, v) != v}
        if different:
            raise ValueError(
                f'{self.name}: backbone_weights="{self.backbone_weights}" are a {self.backbone} trained '
                f"with {different}; build the model with those options or drop backbone_weights."
            )
        quantizers = {k: v for k, v in options.items() if k in ("input_quantizer", "kernel_quantizer")}
        classifier = self.backbone_factory(
            weights=self.backbone_weights, include_top=False, input_shape=model.input_shape[1:],
            include_preprocessing=self.include_preprocessing, output_stride=None, dilation_rates=None,
            **quantizers,  # the checkpoint's: only its weights are copied
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


class FCNFactory(GroupNetDenseFactory):
    """FCN head on the dilated Group-Net backbone.

    `skip=True` makes it FCN-16s in the sense of Long et al. (CVPR 2015): a 1x1
    full-precision convolution scores the output of the stage before the last (zero at
    the start, as FCN's), and the head's logits, resized to it bilinearly, are added.
    With `output_stride=None` that stage has stride 16 and the head 32; in the dilated
    backbone (output stride 8) both have stride 8. The official segmentation code has
    no FCN-16s and the paper does not say where its skip joins: this is FCN's.
    """

    dropout: float = Field(FCN_DROPOUT)
    skip: bool = Field(False)
    variant_fields = (*GroupNetDenseFactory.variant_fields, "skip")
    variant_fields_added = {"skip": False}
    constructor_fields = (*GroupNetDenseFactory.constructor_fields, "skip")
    constructor_doc = GroupNetDenseFactory.constructor_doc + """
    `skip=True` adds FCN-16s' skip: the previous stage's 1x1 class scores, added to the
    head's logits.
"""

    def features(self, x: tf.Tensor) -> tf.Tensor:
        *earlier, last = self.backbone_outputs(x)
        self._skip_input = earlier[-1]
        return last

    def head(self, x: tf.Tensor, num_classes: int) -> tf.Tensor:
        """The FCN head (`fcn_head`) [+ the skip's scores]."""
        x = fcn_head(x, num_classes, self.dropout, "head", "logits")
        if not self.skip:
            return x
        scores = tf.keras.layers.Conv2D(num_classes, 1, kernel_initializer="zeros", name="skip_logits")(
            self._skip_input)
        return tf.keras.layers.Add(name="skip_add")([ResizeLike(name="skip_resize")([x, scores]), scores])


class DeepLabFactory(GroupNetDenseFactory):
    """DeepLab-v3 head (ASPP of K-base binary branches) on the dilated Group-Net backbone."""

    aspp_rates: Tuple[int, ...] = Field((12, 24, 36))
    variant_fields = (*GroupNetDenseFactory.variant_fields, "aspp_rates")
    constructor_fields = (*GroupNetDenseFactory.constructor_fields, "aspp_rates")

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


FAMILY = Family("Group-Net", groupnet.PAPER, (
    Variant("GroupNetFCN", FCNFactory, VOC,
            "Group-Net FCN: a dilated K-base binary backbone with BPAC and a full-precision FCN head.",
            reported=(Reported("PASCAL VOC 2012", miou=65.1, note="ResNet-18 backbone, K=5, FCN-32s"),),
            recipe="groupnet_fcn_scenes", twin="GroupNetFCNFP"),
    Variant("GroupNetFCN16s", FCNFactory, VOC,
            "Group-Net FCN-16s: GroupNetFCN plus FCN's skip, the previous stage's class scores added.",
            fields=dict(skip=True),
            reported=(Reported("PASCAL VOC 2012", miou=67.7, note="ResNet-18 backbone, K=5, FCN-16s"),),
            recipe="groupnet_fcn_scenes"),
    Variant("GroupNetDeepLab", DeepLabFactory, VOC,
            "Group-Net DeepLab: the dilated BPAC backbone and an ASPP of K-base binary branches.",
            recipe="groupnet_deeplab_scenes", twin="GroupNetDeepLabFP"),
    Variant("GroupNetFCNFP", FCNFactory, VOC,
            "Full-precision twin of GroupNetFCN (one base, real weights and activations): the baseline.",
            fields=FLOAT_TWIN, recipe="groupnet_fcn_scenes"),
    Variant("GroupNetDeepLabFP", DeepLabFactory, VOC,
            "Full-precision twin of GroupNetDeepLab (one base, real weights and activations): the baseline.",
            fields=FLOAT_TWIN, recipe="groupnet_deeplab_scenes"),
))
