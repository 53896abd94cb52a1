"""IR-Net's recipes (the official code's). The EDE schedule is the model's
(`model.ede_t_min`, `model.ede_t_max`, `model.ede_update_every`).

References:
    - Qin et al., IR-Net, CVPR 2020, Section 3.2 (EDE); official code (CIFAR and
      ImageNet recipes).
"""
from zookeeper import ComponentField, Field

from zoo.training.datasets import ImageNet
from zoo.training.optimizers import Optimizer
from zoo.training.recipes import recipe
from zoo.training.tasks import TrainTask


@recipe("irnet_imagenet")
class IRNetImageNet(TrainTask):
    """ImageNet: global batch 2048, SGD (Nesterov, momentum 0.9, weight decay 1e-4), lr
    warmed up from 0.2 to 0.8 over 4 epochs, then divided by 10 at epochs 30, 60 and 90
    of 100; EDE refreshed every 100 steps."""

    model_fields = {"ede_update_every": 100}
    dataset = ComponentField(ImageNet)
    epochs = Field(100)
    batch_size = Field(2048)
    optimizer = ComponentField(
        Optimizer, name="sgd", nesterov=True, learning_rate=0.8, weight_decay=1e-4,
        schedule="steps", decay_epochs=(30, 60, 90), warmup_epochs=4.0, warmup_from=0.2,
    )


@recipe("irnet_resnet20")
class IRNetResNet20Cifar(TrainTask):
    """ResNet-20 on small images (default Fashion-MNIST): 400 epochs, batch 128, SGD
    momentum 0.9, lr 0.1, weight decay 1e-4, cosine to 0; EDE per epoch. Ablations:
    model.libra_pb=False, model.ede=False."""

    epochs = Field(400)
    optimizer = ComponentField(Optimizer, name="sgd", learning_rate=0.1, weight_decay=1e-4, schedule="cosine")


@recipe("irnet_vgg_small")
class IRNetVGGSmallCifar(TrainTask):
    """VGG-Small: 300 epochs, batch 128, SGD momentum 0.9, lr 0.007, weight decay 1e-4,
    cosine to 0; EDE per epoch."""

    epochs = Field(300)
    optimizer = ComponentField(Optimizer, name="sgd", learning_rate=0.007, weight_decay=1e-4, schedule="cosine")
