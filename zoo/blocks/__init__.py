"""Blocks the model families build with: `shortcuts` (a binary convolution with its real
shortcut, the shortcuts themselves, the zoo's batch normalization) and `groups`
(Group-Net's K-base groups)."""
from zoo.blocks.groups import (  # noqa: F401
    AGGREGATIONS,
    AggregateBranches,
    GroupedQuantConv2D,
    RepeatBranches,
    SoftGate,
    grouped_binary_conv_layer,
    groupnet_basic_block,
    groupnet_bottleneck_block,
    groupnet_conv_unit,
    groupnet_shortcut,
)
from zoo.blocks.shortcuts import (  # noqa: F401
    HardTanh,
    SubsampleZeroPad,
    batch_norm,
    binary_conv_bn,
    bireal_unit,
    real_projection,
)
