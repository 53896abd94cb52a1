"""Group-Net (Zhuang et al., CVPR 2019): each ResNet block rebuilt from K binary bases.

"Structure approximation": instead of approximating each real weight or activation
by binary values, every residual block (a "group") of a full-precision ResNet is
approximated by K homogeneous binary copies of it (bases), whose outputs are
aggregated, with learnable soft connections between consecutive groups.

Block l, base k, input x_k (official code, `model_ablation_1.py`):

    r   = x_k, or BN_ds(BinaryConv1x1_s(sign(x_k))) when the block downsamples
    u_k = BN1_k(ReLU(BinaryConv3x3(sign(x_k)))) + r
    y_k = BN2_k(ReLU(BinaryConv3x3(sign(u_k)))) + u_k

- Aggregation: `aggregation="scales"` (conference paper) Y = sum_k lambda_k y_k with
  one learnable, unconstrained scalar per base and block, initialised like the
  official code's `torch.rand(1)`: uniform in [0, 1); `aggregation="mean"` (journal
  extension) Y = mean_k y_k.
- Soft gates (`soft_gates=True`): one learnable scalar g per block, shared by its
  bases, x_k(l) = sigmoid(g) y_k(l-1) + (1 - sigmoid(g)) Y(l-1); g starts uniform in
  [0, 1) (`torch.rand(1)`). The first block has no gate: all bases read the stem
  output. Without gates every base of a block reads Y(l-1). The K streams persist
  through the network; the classifier reads avgpool(Y) of the last block.
- Quantizers: activations sign forward, ApproxSign backward (`"approx_sign"`);
  weights sign(W) mean|W| with one scale per base layer and an identity gradient
  (`"groupnet_weight_sign"`, `zoo.quantizers.GroupNetWeightSign`); latent weights are
  not clipped. Binary 3x3 convolutions pad their binarized input with +1.
- Full precision: the stem, 7x7/2 conv (64) -> 3x3/2 max-pool -> BN (no ReLU), and the
  final dense layer. Everything between is binary, the 1x1 downsampling included.

Implementation: the K bases of a block run fused. A "branch streams" tensor holds the
K bases' feature maps side by side on the channels (batch, H, W, K*C); each binary
convolution of the K bases is one grouped QuantConv2D with `groups=K` (base k is
group k), one batch normalization over K*C channels is the K per-base ones, and the
weight scale is per group (`GroupNetWeightSign(groups=K)`). The result is identical to
K separate branches (tests/test_groupnet.py checks it against an unfused reference).
The grouped convolution is `zoo.blocks.GroupedQuantConv2D`, which computes one plain
convolution per group: Keras' XLA-compiled grouped convolution trained 40x slower
at K=5 than at K=1 on CPU, and Larq Compute Engine 0.16 cannot run grouped binary
convolutions with its default kernel (nor convert 16-channel groups); per group, every
base becomes an ordinary `LceBconv2d`.
The real-valued stage 1 of the recipe is the same network with
`input_quantizer="tanh", kernel_quantizer=None` (same weights, so stage 2 loads it).

Where the fact sheet and the official code differ, this module follows the sheet:
- the binarized downsampling has its own weights in every base; `shared_downsample=True`
  builds the official code's instead, one `downsample_layer` per stage (binary 1x1 conv
  and BN) applied to every base's input in turn (`model.py`, `_make_layer`): K - 1
  fewer downsampling convolutions and BNs per stage, the same BOPs;
- the stem conv has no bias (the official conv has one, but max-pool and BN follow,
  so it only shifts BN's input and changes nothing).

Group-Net ResNet-50 (not in the official code) uses K-base bottlenecks: for every base,
BN(ReLU(BinaryConv1x1)) to width m -> BN(ReLU(BinaryConv3x3, stride s)) -> BN(ReLU(
BinaryConv1x1)) to 4m, plus r (x_k, or the binarized 1x1 downsampling when the shape
changes), i.e. the full-precision bottleneck with each of its three convolutions
binary and Group-Net's conv -> ReLU -> BN order; lambda starts at 1/K.

`GroupNetResNet20` is the ResNet-20 layout for 28x28 / 32x32 images: 3x3 full-precision
stem (16) -> BN, then the same blocks in stages of 3 at 16, 32 and 64 channels.

References:
    - Zhuang, Shen, Tan, Liu, Reid. Structured Binary Neural Networks for Accurate
      Image Classification and Semantic Segmentation. CVPR 2019 (arXiv 1811.10413).
    - Journal extension: Structured Binary Neural Networks for Image Recognition
      (arXiv 1909.09934), with mean aggregation.
    - Official code: github.com/bohanzhuang/Group-Net-image-classification.
    - Independent re-implementations of Group-Net-18 with 5 bases report 62.3 - 63.9 %
      top-1 on ImageNet (the paper: 64.8 %).
"""
from typing import ClassVar, List, Optional, Tuple

import larq as lq
import tensorflow as tf
from zookeeper import Field

from zoo.blocks import (
    AGGREGATIONS,
    AggregateBranches,
    RepeatBranches,
    SoftGate,
    batch_norm,
    groupnet_basic_block,
    groupnet_bottleneck_block,
)
from zoo.models.base import ModelFactory
from zoo.models.family import IMAGENET, SMALL, Family, Paper, Reported, Variant
from zoo.quantizers import GroupNetWeightSign

PAPER = Paper(
    title="Structured Binary Neural Networks for Accurate Image Classification and "
    "Semantic Segmentation",
    authors="Bohan Zhuang, Chunhua Shen, Mingkui Tan, Lingqiao Liu, Ian Reid",
    venue="CVPR",
    year=2019,
    url="https://arxiv.org/abs/1811.10413",
    bibtex="""@inproceedings{zhuang2019structured,
  title={Structured Binary Neural Networks for Accurate Image Classification and Semantic Segmentation},
  author={Zhuang, Bohan and Shen, Chunhua and Tan, Mingkui and Liu, Lingqiao and Reid, Ian},
  booktitle={IEEE/CVF Conference on Computer Vision and Pattern Recognition (CVPR)},
  year={2019}
}""",
)


class GroupNetFactory(ModelFactory):
    """Group-Net of K-base basic blocks: the options shared by every architecture."""

    num_bases: int = Field(5)
    aggregation: str = Field("scales")
    soft_gates: bool = Field(True)
    shared_downsample: bool = Field(False)
    variant_fields = ("num_bases", "aggregation", "soft_gates", "input_quantizer", "kernel_quantizer",
                      "shared_downsample")
    # Checkpoints published before the option existed were trained without it.
    variant_fields_added = {"shared_downsample": False}
    constructor_fields = ("num_bases", "aggregation", "soft_gates", "shared_downsample")
    constructor_doc = """
    `num_bases` is K, the binary bases per block; `aggregation` is "scales" (a
    learnable lambda per base, the conference version) or "mean" (the journal
    version), anything else raises a ValueError; `soft_gates` adds the learnable
    gate between consecutive blocks; `shared_downsample=True` gives each stage one
    binarized downsampling that all bases share (the official code's), False each base
    its own (the fact sheet's, and the published checkpoints').
"""
    # Stage 1 of the recipe: input_quantizer="tanh", kernel_quantizer=None.
    input_quantizer: Optional[str] = Field("approx_sign")
    kernel_quantizer: Optional[str] = Field("groupnet_weight_sign")

    stem_filters: int = Field(64)
    blocks: Tuple[int, ...] = Field((2, 2, 2, 2))
    filters: Tuple[int, ...] = Field((64, 128, 256, 512))
    stem_stride: ClassVar[int] = 4  # the 7x7/2 conv and the 3x3/2 max-pool

    # Dense prediction (the backbone of zoo.GroupNetFCN, ...): the stages that would take
    # the output stride past `output_stride` run at stride 1, dilated, each base at its
    # own rate (Binary Parallel Atrous Convolution): `dilation_rates` holds K rates per
    # dilated stage, by default `bpac_rates(K, stages)`. None keeps the classifier's strides.
    output_stride: Optional[int] = Field(None)
    dilation_rates: Optional[Tuple[Tuple[int, ...], ...]] = Field(None)

    def check_options(self) -> None:
        """Raises a ValueError naming a bad `num_bases` or `aggregation`."""
        if isinstance(self.num_bases, bool) or not isinstance(self.num_bases, int) or self.num_bases < 1:
            raise ValueError(f"{self.name}: num_bases must be a positive integer, not {self.num_bases!r}.")
        if self.aggregation not in AGGREGATIONS:
            raise ValueError(
                f'{self.name}: aggregation must be "scales" (a learnable lambda per base, '
                f'the conference version) or "mean" (the journal version), not '
                f"{self.aggregation!r}."
            )

    def build(self) -> tf.keras.Model:
        self.check_options()
        return super().build()

    def stage_layout(self) -> List[Tuple[int, Optional[Tuple[int, ...]]]]:
        """(stride, per-base dilation rates or None) of every stage, for `output_stride`.

        Raises:
            ValueError: an `output_stride` the layout cannot give (it must be a power of
                two from the stem's stride up to the classifier's), or `dilation_rates`
                that do not give K positive rates to every dilated stage.
        """
        strides = [1] + [2] * (len(self.blocks) - 1)
        natural = self.stem_stride * 2 ** (len(self.blocks) - 1)
        target = self.output_stride or natural
        if target not in [self.stem_stride * 2**i for i in range(len(self.blocks))]:
            raise ValueError(
                f"{self.name}: output_stride must be a power of two from {self.stem_stride} "
                f"to {natural} (the stem's stride to the classifier's), not {self.output_stride!r}."
            )
        dilated = [i for i in range(len(strides)) if self.stem_stride * 2**i > target]
        rates = self.dilation_rates
        if rates is None:
            rates = bpac_rates(self.num_bases, len(dilated))
        rates = tuple(tuple(int(r) for r in stage) for stage in rates)
        if len(rates) != len(dilated) or any(len(r) != self.num_bases or min(r) < 1 for r in rates):
            raise ValueError(
                f"{self.name}: dilation_rates needs {self.num_bases} positive rates (one per base) "
                f"for each of the {len(dilated)} dilated stages at output_stride={target}; "
                f"got {self.dilation_rates!r}."
            )
        layout = [(s, None) for s in strides]
        for i, r in zip(dilated, rates):
            layout[i] = (1, r)
        return layout

    def quantizers(self, groups: Optional[int] = None) -> dict:
        """Fresh QuantConv2D quantizer arguments for one fused convolution of `groups`
        groups (default K, the bases).

        Group-Net's weight scale is one per base, so in a fused convolution it is one
        per group: `"groupnet_weight_sign"` becomes `GroupNetWeightSign(groups=K)`.
        """
        kernel = self.kernel_quantizer
        if isinstance(lq.quantizers.get(kernel), GroupNetWeightSign):
            kernel = GroupNetWeightSign(groups=groups or self.num_bases)
        return dict(input_quantizer=self.input_quantizer, kernel_quantizer=kernel, kernel_constraint=None)

    def scale_initializer(self) -> tf.keras.initializers.Initializer:
        """Initial lambdas: uniform in [0, 1), as the official code's `torch.rand(1)`."""
        return tf.keras.initializers.RandomUniform(0.0, 1.0)

    def stem(self, x: tf.Tensor) -> tf.Tensor:
        """Full-precision 7x7/2 conv -> 3x3/2 max-pool -> BN (no ReLU)."""
        x = tf.keras.layers.Conv2D(
            self.stem_filters, 7, strides=2, padding="same", use_bias=False,
            kernel_initializer="glorot_uniform", name="stem_conv",
        )(x)
        x = tf.keras.layers.MaxPool2D(3, strides=2, padding="same", name="stem_pool")(x)
        return batch_norm("stem_bn")(x)

    def block(self, x: tf.Tensor, filters: int, strides: int, name: str, dilations=None) -> tf.Tensor:
        """One K-base group on branch streams; returns the bases' outputs."""
        return groupnet_basic_block(x, filters, strides, self.num_bases, name, self.quantizers, dilations,
                                    self.shared_downsample)

    def features(self, x: tf.Tensor) -> tf.Tensor:
        """Stem, then the groups; returns the last block's aggregate Y."""
        return self.stage_outputs(x)[-1]

    def stage_outputs(self, x: tf.Tensor) -> List[tf.Tensor]:
        """Stem, then the groups; returns every stage's last aggregate Y."""
        aggregate, branches, outputs = self.stem(x), None, []
        layout = self.stage_layout()
        for s, (blocks, filters) in enumerate(zip(self.blocks, self.filters), start=1):
            stage_stride, dilations = layout[s - 1]
            for b in range(1, blocks + 1):
                name = f"stage{s}_block{b}"
                strides = stage_stride if b == 1 else 1
                if branches is None or not self.soft_gates:
                    inputs = RepeatBranches(self.num_bases, name=f"{name}_inputs")(aggregate)
                else:
                    inputs = SoftGate(self.num_bases, name=f"{name}_gate")([branches, aggregate])
                branches = self.block(inputs, filters, strides, name, dilations)
                aggregate = AggregateBranches(
                    self.num_bases, self.aggregation, self.scale_initializer(),
                    name=f"{name}_aggregate",
                )(branches)
            outputs.append(aggregate)
        return outputs


def bpac_rates(num_bases: int, stages: int) -> Tuple[Tuple[int, ...], ...]:
    """Default per-base dilation rates of the dilated stages (Binary Parallel Atrous Convolution).

    Base k of the first dilated stage has rate 2 + k; each later stage starts where the
    previous one ended, and at least at twice its first rate. With K=5 and two dilated
    stages this gives the paper's [2, 3, 4, 5, 6] and [6, 7, 8, 9, 10] (the official
    code overwrites its list and uses only the last rate); with K=1 the usual dilated
    ResNet's 2 and 4.

    Arguments:
        num_bases: K.
        stages: the number of dilated stages.

    Returns:
        One tuple of K rates per dilated stage.
    """
    rates, start = [], 2
    for _ in range(stages):
        rates.append(tuple(range(start, start + num_bases)))
        start = max(2 * start, start + num_bases - 1)
    return tuple(rates)


class GroupNetBottleneckFactory(GroupNetFactory):
    """K-base bottlenecks (three binary convs per base), lambda initialised to 1/K."""

    blocks = Field((3, 4, 6, 3))
    filters = Field((256, 512, 1024, 2048))  # output width of each stage
    expansion: int = Field(4)

    def scale_initializer(self) -> tf.keras.initializers.Initializer:
        return tf.keras.initializers.Constant(1.0 / self.num_bases)

    def block(self, x: tf.Tensor, filters: int, strides: int, name: str, dilations=None) -> tf.Tensor:
        return groupnet_bottleneck_block(
            x, filters, strides, self.num_bases, name, self.quantizers, self.expansion, dilations,
            self.shared_downsample,
        )


class SmallGroupNetFactory(GroupNetFactory):
    """ResNet-20 layout for small images: 3x3 full-precision stem -> BN, three stages."""

    min_input_size = 8
    stem_filters = Field(16)
    blocks = Field((3, 3, 3))
    filters = Field((16, 32, 64))
    # 2 for larger images (the dense models on 96x96 Fashion-MNIST scenes: garments of
    # 20-56 pixels then reach the blocks at about the 28 pixels of the classifier's).
    stem_strides: int = Field(1)

    @property
    def stem_stride(self) -> int:
        return self.stem_strides

    def stem(self, x: tf.Tensor) -> tf.Tensor:
        x = tf.keras.layers.Conv2D(
            self.stem_filters, 3, strides=self.stem_strides, padding="same", use_bias=False,
            kernel_initializer="glorot_uniform", name="stem_conv",
        )(x)
        return batch_norm("stem_bn")(x)


FAMILY = Family("Group-Net", PAPER, (
    Variant("GroupNetResNet18", GroupNetFactory, IMAGENET,
            "Group-Net ResNet-18: 8 basic blocks, each of K binary bases (ImageNet).",
            reported=(Reported("ImageNet", 64.8, 85.7, note="K=5"), Reported("ImageNet", 55.6, 78.6, note="K=1"),
                      Reported("ImageNet", 62.5, 84.2, note="K=3"), Reported("ImageNet", 64.2, 85.6, note="K=4"),
                      Reported("ImageNet", 67.5, 88.0, note="K=8")),
            recipe="groupnet_imagenet"),
    Variant("GroupNetResNet34", GroupNetFactory, IMAGENET,
            "Group-Net ResNet-34: 16 basic blocks (3, 4, 6, 3), each of K binary bases (ImageNet).",
            fields=dict(blocks=(3, 4, 6, 3)),
            reported=(Reported("ImageNet", 68.5, 88.0, note="K=5"), Reported("ImageNet", 71.8, 90.4, note="K=8")),
            recipe="groupnet_imagenet"),
    Variant("GroupNetResNet50", GroupNetBottleneckFactory, IMAGENET,
            "Group-Net ResNet-50: 16 bottlenecks, each of K bases with three binary convs (ImageNet).",
            reported=(Reported("ImageNet", 69.5, 89.2, note="K=5"), Reported("ImageNet", 72.8, 90.5, note="K=8")),
            recipe="groupnet_imagenet"),
    Variant("GroupNetResNet20", SmallGroupNetFactory, SMALL,
            "Group-Net in the ResNet-20 layout (16/32/64 channels) for 28x28 or 32x32 images.",
            recipe="groupnet_small", twin="BiRealNet20FP"),
))
