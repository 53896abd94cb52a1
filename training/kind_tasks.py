"""The tasks of the dense kinds, segmentation and detection, and the task each kind's
models train with unless their variant names a recipe (`KIND_TASKS`)."""
from zookeeper import ComponentField, Field
from zookeeper.core.component import base_getattr

from zoo.io import ZooError
from zoo.models.fcos import FCOSTargets
from zoo.training.datasets import FashionMNISTScenes, VocSegmentation
from zoo.training.evaluation import batches
from zoo.training.extra_loss import AuxiliaryLoss
from zoo.training.optimizers import Optimizer
from zoo.training.tasks import TrainTask


class SegmentationTask(TrainTask):
    """Semantic segmentation's defaults, for the 96x96 Fashion-MNIST scenes: batch 32,
    Adam lr 1e-3 with the "poly" (power 0.9) decay of the Group-Net recipe, no weight
    decay, one learning rate for every weight. The paper's VOC recipe (from an ImageNet
    backbone) is `dataset=VocSegmentation optimizer.learning_rate=1e-4
    optimizer.weight_decay=1e-4 batch_size=16 epochs=50`, the head's learning rate 10x
    the backbone's (the default on VOC).

    Attributes:
        head_lr_multiplier: the head's learning rate (and weight decay) over the
            backbone's: every weight but the backbone's (`backbone_variables`: the head,
            FCN-16s' skip, DeepLab's ASPP, the auxiliary head). Default 10 on
            `VocSegmentation` (the official code's parameter groups), else 1.
        aux_weight: the weight of the auxiliary FCN head's loss on the stage before the
            last (`auxiliary_head`, `AuxiliaryLoss`); 0 (the default, as the official
            code's `--aux`): none. The official `--aux` weight is 0.2.

    References:
        - Zhuang et al., Group-Net, CVPR 2019, Section 5; official segmentation code
          (`train.py`, `option.py`).
    """

    dataset = ComponentField(FashionMNISTScenes)
    batch_size = Field(32)
    shuffle_buffer = Field(20_000)
    optimizer = ComponentField(Optimizer, name="adam", learning_rate=1e-3, schedule="poly")
    aux_weight: float = Field(0.0)

    @Field
    def head_lr_multiplier(self) -> float:
        return 10.0 if isinstance(self.dataset, VocSegmentation) else 1.0

    def check_settings(self) -> None:
        super().check_settings()
        for key in ("aux_weight", "head_lr_multiplier"):
            if float(getattr(self, key)) < 0:
                raise ZooError(f"{key}={getattr(self, key)} is negative; pass a value >= 0 (e.g. {key}=0).")

    def training_model(self, model, attr):
        if float(self.aux_weight) == 0:
            return super().training_model(model, attr)
        return AuxiliaryLoss(model, base_getattr(self, attr).auxiliary_head(model), self.aux_weight)

    def rate_multipliers(self, trained, attr):
        model = getattr(trained, "student", trained)
        backbone = {v.ref() for v in base_getattr(self, attr).backbone_variables(model)}
        return [(v, 1.0 if v.ref() in backbone else float(self.head_lr_multiplier))
                for v in trained.trainable_variables]


class DetectionTask(TrainTask):
    """Object detection's defaults, for the Fashion-MNIST scenes: Adam lr 1e-3, linear
    decay, batch 32 (FCOS' own is SGD lr 0.01 with batch 16 on COCO, for a
    full-precision ResNet-50). The loss is `FCOSLoss` on targets made for the model's
    levels (`FCOSTargets`); mAP needs decoding, so it is measured on the test split at
    the end only.
    """

    dataset = ComponentField(FashionMNISTScenes)
    batch_size = Field(32)
    shuffle_buffer = Field(20_000)
    model_fields = {"decode": False}  # trains on the raw predictions

    def data(self, split: str, training: bool) -> tuple:
        return batches(self.dataset, split, training, self.batch_size, FCOSTargets(self.dataset, self.model),
                       self.shuffle_buffer, self.seed)


# The task every model of a kind trains with unless its variant names a recipe.
KIND_TASKS = {"classification": TrainTask, "segmentation": SegmentationTask, "detection": DetectionTask}
