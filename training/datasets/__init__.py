"""Datasets for training and evaluating the zoo's models (zookeeper components).

Every image classification dataset component provides, besides zookeeper's
`Dataset` API (`train(decoders)`, `validation(decoders)`, `test(decoders)`, each
returning a `(tf.data.Dataset, num_examples)` pair of `{"image", "label"}` elements):

- `num_classes`, `input_shape` and `num_examples(split)`;
- `decoders`: the tfds decoders to pass to `train()` / `validation()` / `test()`;
- `preprocess(data, training)`: one element's image as a float32 tensor of shape
  `input_shape`, values in [0, 255] (the models normalize), augmented when
  `training` and the field `augment` are both true.

The dense prediction datasets have no `preprocess`: `FashionMNISTScenes` (elements
`{"image", "mask", "boxes", "labels"}`, see `zoo.training.datasets.scenes`) and
`VocSegmentation` give `segmentation_pair(data, training)`; `FashionMNISTScenes` and
`CocoDetection` give `detection_pair(data, training)`. Which of these a model reads is
its task kind's business (`zoo.kinds.Kind.pair`).

`DATASETS` maps every name the CLI accepts (`dataset=Cifar10`) to its class; a
component is in it by the `@register_dataset` on its class, so importing this
package fills it.

Modules: `base` (errors, augmentation, `ImageDataset`), `registry`, `fashion_mnist`
(IDX files), `tfds_wrappers` (TensorFlow Datasets, CIFAR-10), `imagenet`, `scenes`,
`voc` (with its tfds builder), `coco`.
"""

from zoo.training.datasets.base import (  # noqa: F401
    IGNORE_LABEL,
    CorruptDatasetError,
    DatasetNotFoundError,
    ImageDataset,
    flip_together,
    flip_with_boxes,
    random_pad_crop_flip,
)
from zoo.training.datasets.coco import COCO_CLASSES, CocoDetection  # noqa: F401
from zoo.training.datasets.fashion_mnist import (  # noqa: F401
    DEBIAN_FASHION_MNIST_DIR,
    FASHION_MNIST_CLASSES,
    FASHION_MNIST_SPLITS,
    IDX_IMAGES_MAGIC,
    IDX_LABELS_MAGIC,
    FashionMNIST,
    FashionMNISTFiles,
    fashion_mnist_folder,
    load_fashion_mnist,
    read_idx,
)
from zoo.training.datasets.imagenet import ImageNet  # noqa: F401
from zoo.training.datasets.registry import DATASETS, get_dataset, register_dataset  # noqa: F401
from zoo.training.datasets.scenes import (  # noqa: F401
    SILHOUETTE_THRESHOLD,
    SPLIT_IDS,
    FashionMNISTScenes,
    Scene,
    box_iou,
    make_scene,
    resize_bilinear,
    scene,
    tight_box,
)
from zoo.training.datasets.tfds_wrappers import Cifar10  # noqa: F401
from zoo.training.datasets.voc import (  # noqa: F401
    TAR,
    VOC_CLASSES,
    VocSegmentation,
    VocSegmentation2012,
    voc_root,
)
