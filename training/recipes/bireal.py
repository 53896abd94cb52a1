"""Bi-Real Net's recipes.

References:
    - Liu et al., Bi-Real Net, ECCV 2018, Section 3.4 (real-valued initialisation) and
      Section 4.1 (training details).
"""
from zookeeper import ComponentField, Field

from zoo.models.bireal import REAL_VALUED
from zoo.training.datasets import ImageNet
from zoo.training.optimizers import Optimizer
from zoo.training.recipes import recipe
from zoo.training.tasks import TrainTask


@recipe("bireal_small")
class BiRealSmall(TrainTask):
    """Small images (default Fashion-MNIST). One stage by default: Adam, lr 1e-3
    decayed linearly to 0, batch 128 (the PyTorch re-training recipe, which reports the
    paper's accuracy without pre-training). `pretrain_epochs=N` adds the paper's
    real-valued clip pre-training first."""

    pretrain_twin = REAL_VALUED


@recipe("bireal_imagenet")
class BiRealImageNet(BiRealSmall):
    """The paper's two stages on ImageNet. Stage 1 trains the real-valued twin with
    clip(-1, x, 1) instead of sign (SGD, momentum 0.9, lr 0.1, weight decay 1e-4,
    cosine, `pretrain_epochs` epochs); stage 2 trains the binary net from it: SGD
    momentum 0.9, batch 128, lr 0.01 divided by 10 at epochs 10 and 15, 20 epochs, no
    weight decay. For the later PyTorch re-training recipe use `pretrain_epochs=0
    epochs=256 batch_size=512 optimizer.name=adam optimizer.learning_rate=1e-3
    optimizer.schedule=linear label_smoothing=0.1`."""

    dataset = ComponentField(ImageNet)
    epochs = Field(20)
    optimizer = ComponentField(Optimizer, name="sgd", learning_rate=0.01, schedule="steps", decay_epochs=(10, 15))
    pretrain_epochs = Field(90)
    pretrain_optimizer = ComponentField(Optimizer, name="sgd", learning_rate=0.1, weight_decay=1e-4,
                                        schedule="cosine")
