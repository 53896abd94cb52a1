"""Group-Net's recipes: classification (two stages), segmentation and detection.

References:
    - Zhuang et al., Group-Net, CVPR 2019 (and arXiv 1909.09934 for the detector);
      official code.
"""
from zookeeper import ComponentField, Field

from zoo.training.datasets import ImageNet
from zoo.training.kind_tasks import DetectionTask, SegmentationTask
from zoo.training.optimizers import Optimizer
from zoo.training.recipes import recipe
from zoo.training.tasks import TrainTask


@recipe("groupnet_small")
class GroupNetSmall(TrainTask):
    """The official two stages, on small images (default Fashion-MNIST). Stage 1 trains
    the K-branch net with real weights and tanh instead of sign: SGD, momentum 0.9, lr
    0.05, weight decay 1e-4, 40 epochs, divided by 10 at epochs 25 and 35. Stage 2
    fine-tunes the binary net from it: Adam, lr 5e-4, no weight decay, 40 epochs,
    divided by 10 at epochs 20 and 30; no distillation. `pretrain_epochs=0` trains the
    binary net in one stage.

    `num_bases` (K, default 5), `aggregation` ("scales" or "mean") and `soft_gates` are
    set on the task, so that both stages build the same architecture
    (`zoo TrainGroupNetResNet20 num_bases=3`).
    """

    pretrain_twin = dict(input_quantizer="tanh", kernel_quantizer=None)
    num_bases: int = Field(5)
    aggregation: str = Field("scales")
    soft_gates: bool = Field(True)
    epochs = Field(40)
    pretrain_epochs = Field(40)
    optimizer = ComponentField(Optimizer, name="adam", learning_rate=5e-4, schedule="steps", decay_epochs=(20, 30))
    pretrain_optimizer = ComponentField(
        Optimizer, name="sgd", learning_rate=0.05, weight_decay=1e-4, schedule="steps", decay_epochs=(25, 35)
    )


@recipe("groupnet_imagenet")
class GroupNetImageNet(GroupNetSmall):
    """The same two stages on ImageNet, the paper's dataset."""

    dataset = ComponentField(ImageNet)


# The small dense variants for the 96x96 scenes: the ResNet-20 layout with a stride-2
# stem, its last stage dilated with BPAC (output stride 4, 24x24 features).
SCENES_BACKBONE = dict(backbone="GroupNetResNet20", backbone_options=lambda: {"stem_strides": 2}, output_stride=4)


@recipe("groupnet_fcn_scenes")
class GroupNetFCNScenes(SegmentationTask):
    """On Fashion-MNIST scenes, the small variant; for VOC use `dataset=VocSegmentation
    model.backbone=GroupNetResNet18 model.backbone_options={} model.output_stride=8`.
    `model.backbone_weights=TAG` starts the backbone from a classification checkpoint;
    `model.num_bases=K` sets K."""

    model_fields = SCENES_BACKBONE


@recipe("groupnet_deeplab_scenes")
class GroupNetDeepLabScenes(SegmentationTask):
    """On Fashion-MNIST scenes, ASPP rates (4, 8, 12) for the 24x24 features (the
    paper's (12, 24, 36) are for 60x60 ones: `model.aspp_rates=[12,24,36]`)."""

    model_fields = {**SCENES_BACKBONE, "aspp_rates": (4, 8, 12)}


@recipe("groupnet_fcos_scenes")
class GroupNetFCOSScenes(DetectionTask):
    """On Fashion-MNIST scenes, the small variant: the ResNet-20 layout with a stride-2
    stem, FPN on its last two stages (strides 4 and 8) plus one extra level (16), 64
    channels, 2 convolutions per head tower. For COCO: `dataset=CocoDetection
    model.backbone=GroupNetResNet18 model.backbone_options={} model.fpn_stages=[2,3,4]
    model.extra_levels=2 model.fpn_channels=256 model.head_convs=4`."""

    model_fields = {**DetectionTask.model_fields, **SCENES_BACKBONE, "output_stride": None,
                    "fpn_stages": (2, 3), "extra_levels": 1, "fpn_channels": 64, "head_convs": 2}
