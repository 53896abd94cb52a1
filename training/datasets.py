"""Datasets for training and evaluating the zoo's models (zookeeper components).

Every dataset component provides, besides zookeeper's `Dataset` API
(`train(decoders)`, `validation(decoders)`, `test(decoders)`, each returning a
`(tf.data.Dataset, num_examples)` pair of `{"image", "label"}` elements):

- `num_classes`, `input_shape` and `num_examples(split)`;
- `decoders`: the tfds decoders to pass to `train()` / `validation()` / `test()`;
- `preprocess(data, training)`: one element's image as a float32 tensor of shape
  `input_shape`, values in [0, 255] (the models normalize), augmented when
  `training` and the field `augment` are both true.

`ImageClassification` is the matching zookeeper `Preprocessing` component.

`FashionMNISTScenes` is not an image classification dataset: its elements are
`{"image", "mask", "boxes", "labels"}` scenes for segmentation and detection
(see `zoo.training.scenes`), and it has no `preprocess`.
"""

import gzip
import os
import struct
from pathlib import Path
from typing import Dict, Optional, Tuple, Type

import numpy as np
import tensorflow as tf
import tensorflow_datasets as tfds
from zookeeper import ComponentField, Field, component
from zookeeper.tf import Dataset, Preprocessing, TFDSDataset

from zoo import preprocessing
from zoo.training import scenes, voc


class DatasetNotFoundError(FileNotFoundError):
    """A dataset is not on this machine; the message says how to get it."""


class CorruptDatasetError(ValueError):
    """A dataset file is unreadable or does not hold what it should."""


def random_pad_crop_flip(
    image: tf.Tensor, padding: int, shape: Tuple[int, int, int]
) -> tf.Tensor:
    """Training augmentation for small images: random horizontal flip, then zero
    padding on every side and a random crop back to the original size.

    Arguments:
        image: an image tensor of shape `shape`.
        padding: how many pixels of zeros to add on each side.
        shape: the (height, width, channels) of the image and of the result.

    Returns:
        The augmented image, same shape and dtype as `image`.
    """
    image = tf.image.random_flip_left_right(image)
    image = tf.pad(image, [[padding, padding], [padding, padding], [0, 0]])
    return tf.image.random_crop(image, shape)


IGNORE_LABEL = 255  # pixels of this label count in no loss and no metric (VOC's boundaries)


def flip_together(image: tf.Tensor, mask: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """A random horizontal flip of an image (H, W, C) and its mask (H, W), the same for both."""
    flip = tf.random.uniform(()) < 0.5
    return (tf.cond(flip, lambda: tf.reverse(image, [1]), lambda: image),
            tf.cond(flip, lambda: tf.reverse(mask, [1]), lambda: mask))


def flip_with_boxes(image: tf.Tensor, boxes: tf.Tensor) -> Tuple[tf.Tensor, tf.Tensor]:
    """A random horizontal flip of an image (H, W, C) and its boxes `[ymin, xmin, ymax,
    xmax]` in pixels, the same for both."""
    width = tf.cast(tf.shape(image)[1], tf.float32)
    flip = tf.random.uniform(()) < 0.5
    flipped = tf.stack([boxes[:, 0], width - boxes[:, 3], boxes[:, 2], width - boxes[:, 1]], 1)
    return (tf.cond(flip, lambda: tf.reverse(image, [1]), lambda: image),
            tf.cond(flip, lambda: flipped, lambda: boxes))


@component
class ImageClassification(Preprocessing):
    """Preprocessing of `(image, label)` pairs by the dataset's own `preprocess`.

    Its `dataset` is the training task's (zookeeper passes a parent's field of the
    same name down), and so are `decoders` and `input_shape` by default.
    """

    dataset: Dataset = ComponentField(allow_missing=True)
    decoders = Field(lambda self: self.dataset.decoders)
    input_shape = Field(lambda self: self.dataset.input_shape)

    def input(self, data: Dict[str, tf.Tensor], training: bool) -> tf.Tensor:
        return self.dataset.preprocess(data, training)

    def output(self, data: Dict[str, tf.Tensor], training: bool) -> tf.Tensor:
        return data["label"]


class ImageDataset(Dataset):
    """What the training tasks need from a dataset beyond zookeeper's `Dataset`.

    Subclasses set `input_shape` and `augment_padding` (class attributes).
    """

    # Whether `preprocess(data, training=True)` augments the images.
    augment: bool = Field(True)

    input_shape: Tuple[int, int, int]
    augment_padding: int
    # The default tag of checkpoints trained on it (`zoo weights publish`).
    weights_tag: str

    @property
    def decoders(self) -> Optional[Dict[str, tfds.decode.Decoder]]:
        """The tfds decoders to pass to `train()`, `validation()` and `test()`."""
        return None

    def preprocess(self, data: Dict[str, tf.Tensor], training: bool) -> tf.Tensor:
        """The model input for one element.

        Arguments:
            data: one element of the dataset, `{"image": ..., "label": ...}`.
            training: whether to apply the training augmentation (only done when
                the field `augment` is true too).

        Returns:
            A float32 tensor of shape `input_shape`, values in [0, 255].
        """
        image = tf.cast(data["image"], tf.float32)
        if training and self.augment:
            image = random_pad_crop_flip(image, self.augment_padding, self.input_shape)
        return tf.ensure_shape(image, self.input_shape)


# --- Fashion-MNIST from the original IDX files ---

DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
IDX_IMAGES_MAGIC = 2051
IDX_LABELS_MAGIC = 2049
FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
# File prefix and number of examples of each split.
FASHION_MNIST_SPLITS = {"train": ("train", 60_000), "test": ("t10k", 10_000)}

# Parsed splits per folder: {folder: {split: (images, labels)}}.
_fashion_mnist_cache: Dict[Path, Dict[str, Tuple[np.ndarray, np.ndarray]]] = {}


def _find_idx_file(folder: Path, name: str) -> Optional[Path]:
    """`folder/name`, else `folder/name.gz`, else None."""
    for path in (folder / name, folder / f"{name}.gz"):
        if path.is_file():
            return path
    return None


def read_idx(path: Path, magic: int) -> np.ndarray:
    """Reads an IDX file of unsigned bytes (optionally gzipped).

    Arguments:
        path: the file.
        magic: the expected magic number (2051 for images, 2049 for labels).

    Returns:
        A uint8 array with the dimensions given in the header.

    Raises:
        CorruptDatasetError: if the file cannot be read or its header or size is
            not right.
    """
    try:
        with (gzip.open if path.suffix == ".gz" else open)(path, "rb") as file:
            raw = file.read()
    except (OSError, EOFError) as error:
        raise CorruptDatasetError(f"Cannot read {path}: {error}") from error
    num_dims = magic & 0xFF
    header_size = 4 + 4 * num_dims
    if len(raw) < header_size:
        raise CorruptDatasetError(f"{path} is truncated: only {len(raw)} bytes.")
    (found_magic,) = struct.unpack(">i", raw[:4])
    if found_magic != magic:
        raise CorruptDatasetError(
            f"{path} is not the expected IDX file: magic number {found_magic}, "
            f"expected {magic}."
        )
    dims = struct.unpack(f">{num_dims}I", raw[4:header_size])
    expected_size = header_size + int(np.prod(dims))
    if len(raw) != expected_size:
        raise CorruptDatasetError(
            f"{path} is truncated or corrupted: {len(raw)} bytes, but its header "
            f"(dimensions {dims}) requires {expected_size}."
        )
    return np.frombuffer(raw, np.uint8, offset=header_size).reshape(dims)


def _read_fashion_mnist_split(
    folder: Path, prefix: str, size: int
) -> Tuple[np.ndarray, np.ndarray]:
    """Reads and checks the images (size x 28 x 28) and balanced labels of a split."""
    labels_path = _find_idx_file(folder, f"{prefix}-labels-idx1-ubyte")
    images_path = _find_idx_file(folder, f"{prefix}-images-idx3-ubyte")
    labels = read_idx(labels_path, IDX_LABELS_MAGIC)
    num_classes = len(FASHION_MNIST_CLASSES)
    if labels.shape != (size,):
        raise CorruptDatasetError(
            f"{labels_path} holds {labels.shape[0]} labels, expected {size}."
        )
    if labels.max() >= num_classes:
        raise CorruptDatasetError(
            f"{labels_path} holds label {labels.max()}, expected 0 to "
            f"{num_classes - 1}."
        )
    counts = np.bincount(labels, minlength=num_classes)
    if np.any(counts != size // num_classes):
        raise CorruptDatasetError(
            f"{labels_path} is not balanced: {counts.tolist()} examples per class, "
            f"expected {size // num_classes} each."
        )
    images = read_idx(images_path, IDX_IMAGES_MAGIC)
    if images.shape != (size, 28, 28):
        raise CorruptDatasetError(
            f"{images_path} holds images of shape {images.shape}, expected "
            f"({size}, 28, 28)."
        )
    return images, labels


def fashion_mnist_folder(data_dir: Optional[str]) -> Path:
    """Where the Fashion-MNIST IDX files are looked for: `data_dir`, else
    `$ZOO_DATA_DIR`, else /usr/share/datasets/fashion-mnist."""
    return Path(data_dir or os.environ.get("ZOO_DATA_DIR") or DEBIAN_FASHION_MNIST_DIR)


def load_fashion_mnist(folder: Path) -> Dict[str, Tuple[np.ndarray, np.ndarray]]:
    """Reads and checks the four Fashion-MNIST IDX files of a folder (cached).

    Arguments:
        folder: the folder holding train-images-idx3-ubyte, train-labels-idx1-ubyte,
            t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (each optionally .gz).

    Returns:
        `{"train": (images, labels), "test": (images, labels)}`: uint8 images of
        shape (N, 28, 28) and uint8 labels of shape (N,).

    Raises:
        DatasetNotFoundError: if a file is missing.
        CorruptDatasetError: if a file does not hold what it should.
    """
    folder = Path(folder).resolve()
    if folder not in _fashion_mnist_cache:
        names = [
            f"{prefix}-{kind}"
            for prefix, _ in FASHION_MNIST_SPLITS.values()
            for kind in ("images-idx3-ubyte", "labels-idx1-ubyte")
        ]
        missing = [name for name in names if _find_idx_file(folder, name) is None]
        if missing:
            raise DatasetNotFoundError(
                f"Fashion-MNIST is missing from {folder}: no {', '.join(missing)} "
                "(nor .gz). Install it with `sudo apt-get install "
                "dataset-fashion-mnist` (files in "
                f"{DEBIAN_FASHION_MNIST_DIR}), or download the four IDX files and "
                "`export ZOO_DATA_DIR=/path/to/the/four/IDX/files` (or set the "
                "field `dataset.data_dir`)."
            )
        _fashion_mnist_cache[folder] = {
            split: _read_fashion_mnist_split(folder, prefix, size)
            for split, (prefix, size) in FASHION_MNIST_SPLITS.items()
        }
    return _fashion_mnist_cache[folder]


class FashionMNISTFiles(Dataset):
    """What the datasets built from the Fashion-MNIST IDX files share: where the files
    are (the field `data_dir`, else `$ZOO_DATA_DIR`, else Debian's folder), the
    split they read ("validation" is the test split), and `train()` / `validation()`
    / `test()` over the subclass's `_split(split)`. The data are made decoded:
    `decoders` are accepted and ignored."""

    data_dir: Optional[str] = Field(None)
    class_names: Tuple[str, ...]

    @property
    def folder(self) -> Path:
        """The folder the IDX files are read from."""
        return fashion_mnist_folder(self.data_dir)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @staticmethod
    def _file_split(split: str) -> str:
        if split not in ("train", "validation", "test"):
            raise ValueError(
                f"Unknown split '{split}': use 'train', 'validation' or 'test'."
            )
        return "train" if split == "train" else "test"

    def _split(self, split: str) -> Tuple[tf.data.Dataset, int]:
        raise NotImplementedError

    def train(self, decoders=None) -> Tuple[tf.data.Dataset, int]:
        return self._split("train")

    def validation(self, decoders=None) -> Tuple[tf.data.Dataset, int]:
        return self._split("validation")

    def test(self, decoders=None) -> Tuple[tf.data.Dataset, int]:
        return self._split("test")


@component
class FashionMNIST(FashionMNISTFiles, ImageDataset):
    """Fashion-MNIST (60,000 training and 10,000 test images of 28x28x1, 10
    classes) read from the original IDX files.

    The files are looked for in the field `data_dir`, else in `$ZOO_DATA_DIR`, else
    in /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist). The
    validation and test splits are both the 10,000 test images. Nothing is
    shuffled here. Training augmentation: random flip, pad 2 and random crop.
    """

    input_shape = (28, 28, 1)
    augment_padding = 2
    weights_tag = "fashion_mnist"
    class_names = FASHION_MNIST_CLASSES

    def num_examples(self, split: str) -> int:
        """The number of examples of "train", "validation" or "test"."""
        return FASHION_MNIST_SPLITS[self._file_split(split)][1]

    def _split(self, split: str) -> Tuple[tf.data.Dataset, int]:
        images, labels = load_fashion_mnist(self.folder)[self._file_split(split)]
        dataset = tf.data.Dataset.from_tensor_slices(
            {"image": images[..., np.newaxis], "label": labels.astype(np.int64)}
        )
        return dataset, len(labels)


@component
class FashionMNISTScenes(FashionMNISTFiles):
    """Scenes of 2 to 5 Fashion-MNIST garments on a black 96x96x1 canvas, for
    semantic segmentation and object detection (see `zoo.training.scenes`).

    Elements are `{"image": uint8 (96, 96, 1), "mask": uint8 (96, 96), "boxes":
    float32 (n, 4), "labels": int64 (n,)}`: mask values 0 = background and
    `1 + Fashion-MNIST class` (1 to 10); boxes `[ymin, xmin, ymax, xmax]` in
    pixels (max exclusive), one per garment, in pasting order; labels in the
    mask's numbering, so `class_names[label]` names a box too.

    The "train" scenes use only Fashion-MNIST's 60,000 training images, the
    "test" scenes (and "validation", the same scenes) only its 10,000 test
    images. Scenes are made on the fly (about 2 ms each, on `map` workers),
    deterministically: scene `i` of a split depends only on the field `seed`,
    the split and `i`. Nothing is shuffled here. The IDX files are looked for
    as by `FashionMNIST`.
    """

    seed: int = Field(0)
    num_train: int = Field(20_000)
    num_test: int = Field(2_000)

    input_shape = (96, 96, 1)
    class_names = ("background", *FASHION_MNIST_CLASSES)
    weights_tag = "fashion_mnist_scenes"
    decoders = None  # the scenes are made decoded
    num_detection_classes = len(FASHION_MNIST_CLASSES)  # boxes have no background class

    def num_examples(self, split: str) -> int:
        """The number of scenes of "train", "validation" or "test"."""
        if self._file_split(split) == "train":
            return self.num_train
        return self.num_test

    def scene(self, split: str, index: int) -> scenes.Scene:
        """Scene `index` of a split as numpy arrays, with its garments' indices
        in the Fashion-MNIST split (`sources`).

        Arguments:
            split: "train", "validation" or "test".
            index: the scene's index, from 0.

        Returns:
            The `zoo.training.scenes.Scene`.

        Raises:
            ValueError: for an unknown split.
            DatasetNotFoundError: if the Fashion-MNIST files are missing.
        """
        file_split = self._file_split(split)
        images, labels = load_fashion_mnist(self.folder)[file_split]
        size = self.input_shape[0]
        return scenes.scene(images, labels, self.seed, split, index, size=size)

    def detection_pair(self, data: Dict[str, tf.Tensor], training: bool) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """(image float32 0-255, boxes float32 (n, 4), class ids int32 (n,) from 0: the
        garment's Fashion-MNIST class) of a scene; training flips the image and its
        boxes at random."""
        image, boxes = tf.cast(data["image"], tf.float32), tf.cast(data["boxes"], tf.float32)
        classes = tf.cast(data["labels"], tf.int32) - 1
        if training:
            image, boxes = flip_with_boxes(image, boxes)
        return image, boxes, classes

    def segmentation_pair(self, data: Dict[str, tf.Tensor], training: bool) -> Tuple[tf.Tensor, tf.Tensor]:
        """(image float32 0-255, mask int32) of a scene; training flips both at random."""
        image, mask = tf.cast(data["image"], tf.float32), tf.cast(data["mask"], tf.int32)
        if training:
            return flip_together(image, mask)
        return image, mask

    def _split(self, split: str) -> Tuple[tf.data.Dataset, int]:
        count = self.num_examples(split)
        load_fashion_mnist(self.folder)  # Raise here if the files are missing.

        def generate(index: np.ndarray):
            scene = self.scene(split, int(index))
            return scene.image, scene.mask, scene.boxes, scene.labels

        def element(index: tf.Tensor) -> Dict[str, tf.Tensor]:
            types = (tf.uint8, tf.uint8, tf.float32, tf.int64)
            image, mask, boxes, labels = tf.numpy_function(
                generate, [index], types, stateful=False
            )
            return {
                "image": tf.ensure_shape(image, self.input_shape),
                "mask": tf.ensure_shape(mask, self.input_shape[:2]),
                "boxes": tf.ensure_shape(boxes, (None, 4)),
                "labels": tf.ensure_shape(labels, (None,)),
            }

        dataset = tf.data.Dataset.range(count).map(
            element, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True
        )
        return dataset, count


# --- TensorFlow Datasets: CIFAR-10, ImageNet ---


class _TFDS(TFDSDataset):
    """A TFDS dataset whose missing data raises a `DatasetNotFoundError`; with the field
    `manual_dir` set, the first load prepares it from the files there."""

    manual_dir: Optional[str] = Field(None)

    def _load_kwargs(self) -> dict:
        """The `tfds.load` arguments on how to get the data."""
        if not self.manual_dir:
            return {"download": self.download}
        config = tfds.download.DownloadConfig(manual_dir=self.manual_dir)
        return {"download": True, "download_and_prepare_kwargs": {"download_config": config}}

    def _not_found_hint(self) -> str:
        """How to make the dataset available."""
        return (
            "Set `dataset.download=True` to download it (needs internet), or point "
            "`dataset.data_dir` at a folder where it is prepared."
        )

    def load(self, split: str, decoders, shuffle: bool) -> tf.data.Dataset:
        try:
            dataset = tfds.load(
                name=self.name,
                split=split,
                data_dir=self.data_dir,
                decoders=decoders,
                as_dataset_kwargs={"shuffle_files": shuffle},
                **self._load_kwargs(),
            )
        except AssertionError as error:  # What tfds raises for missing data.
            raise DatasetNotFoundError(
                f"{self.__class__.__name__} ({self.name}) is not available: {error}\n"
                f"{self._not_found_hint()}"
            ) from error
        # Loading may have prepared the dataset: forget split sizes read before.
        vars(self).pop("_info", None)
        return dataset

    def num_examples(self, split: str) -> int:
        try:
            return super().num_examples(split)
        except KeyError as error:  # The dataset info has no splits yet.
            raise DatasetNotFoundError(
                f"{self.__class__.__name__} ({self.name}) is not prepared, so the "
                f"size of split '{split}' is unknown. {self._not_found_hint()}"
            ) from error


class _TFDSImageDataset(ImageDataset, _TFDS):
    """An image classification dataset of TFDS."""


@component
class Cifar10(_TFDSImageDataset):
    """CIFAR-10 from TensorFlow Datasets (32x32x3, 10 classes).

    Training augmentation: random flip, pad 4 and random crop.
    """

    name = Field("cifar10:3.*.*")
    train_split = Field("train")
    validation_split = Field("test")
    test_split = Field("test")

    input_shape = (32, 32, 3)
    augment_padding = 4
    weights_tag = "cifar10"


@component
class ImageNet(_TFDSImageDataset):
    """ILSVRC2012 (ImageNet) from TensorFlow Datasets, 224x224x3, 1000 classes.

    ImageNet cannot be downloaded automatically: download ILSVRC2012_img_train.tar
    and ILSVRC2012_img_val.tar from https://image-net.org and set the field
    `manual_dir` (default `$IMAGENET_MANUAL_DIR`) to their folder; the first load
    then prepares the dataset in `data_dir`. Images stay JPEG-encoded
    (`decoders`) and are decoded and cropped by `preprocess`: a random crop and
    flip for training, the center crop for evaluation.
    """

    name = Field("imagenet2012:5.*.*")
    train_split = Field("train")
    validation_split = Field("validation")
    test_split = Field("validation")
    manual_dir: Optional[str] = Field(lambda: os.environ.get("IMAGENET_MANUAL_DIR"))

    input_shape = (preprocessing.IMAGENET_SIZE, preprocessing.IMAGENET_SIZE, 3)
    weights_tag = "imagenet"

    @property
    def decoders(self) -> Dict[str, tfds.decode.Decoder]:
        return {"image": tfds.decode.SkipDecoding()}

    def _not_found_hint(self) -> str:
        if self.manual_dir:
            return (
                f"Check that {self.manual_dir} holds ILSVRC2012_img_train.tar and "
                "ILSVRC2012_img_val.tar."
            )
        return (
            "ImageNet cannot be downloaded automatically: download "
            "ILSVRC2012_img_train.tar and ILSVRC2012_img_val.tar from "
            "https://image-net.org and pass `dataset.manual_dir=/path/to/ILSVRC2012 "
            "tars` (or `export IMAGENET_MANUAL_DIR=...`) to prepare the dataset."
        )

    def preprocess(self, data: Dict[str, tf.Tensor], training: bool) -> tf.Tensor:
        """The model input for one element (JPEG bytes or a decoded image).

        Arguments:
            data: one element of the dataset, `{"image": ..., "label": ...}`.
            training: whether to apply the training augmentation (random crop and
                flip; only done when the field `augment` is true too).

        Returns:
            A float32 tensor of shape (224, 224, 3), values in [0, 255].
        """
        image = data["image"]
        size = preprocessing.IMAGENET_SIZE
        augment = training and self.augment
        encoded = image.dtype == tf.string  # The decoders skip decoding.
        if augment:
            crop = (
                preprocessing.decode_and_random_crop
                if encoded
                else preprocessing.random_resized_crop
            )
        else:
            crop = (
                preprocessing.decode_and_center_crop
                if encoded
                else preprocessing.center_crop
            )
        image = crop(image, size)
        if augment:
            image = tf.image.random_flip_left_right(image)
        return tf.ensure_shape(image, self.input_shape)


class _DenseTFDS(_TFDS):
    """A TFDS dataset for dense prediction: square inputs of `image_size` pixels, made
    from decoded images; `class_names` name the classes."""

    image_size: int = Field(512)
    class_names: Tuple[str, ...]
    decoders = None

    @property
    def input_shape(self) -> Tuple[int, int, int]:
        return (self.image_size, self.image_size, 3)

    @property
    def num_classes(self) -> int:
        return len(self.class_names)


COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase",
    "scissors", "teddy bear", "hair drier", "toothbrush",
)


@component
class CocoDetection(_DenseTFDS):
    """COCO 2017 object detection from tensorflow-datasets (`coco/2017`: 118,287
    training and 5,000 validation images, 80 classes), for `TrainGroupNetFCOS`.

    Images are letterboxed to `image_size` squares: scaled so that the longer side
    fits, then padded right and below with the mean pixel. Crowd annotations are
    dropped. Training flips at random. tensorflow-datasets downloads COCO itself
    (`dataset.download=True`, about 25 GB) or reads it prepared in `dataset.data_dir`.
    """

    name = Field("coco/2017:1.*.*")
    train_split = Field("train")
    validation_split = Field("validation")
    test_split = Field("validation")

    class_names = COCO_CLASSES
    num_detection_classes = len(COCO_CLASSES)
    weights_tag = "coco"

    def detection_pair(self, data: Dict[str, tf.Tensor], training: bool) -> Tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
        """(letterboxed image float32 0-255, boxes in its pixels (n, 4), class ids (n,))."""
        image = tf.cast(data["image"], tf.float32)
        objects = data["objects"]
        keep = tf.logical_not(objects["is_crowd"])
        hw = tf.cast(tf.shape(image)[:2], tf.float32)
        boxes = tf.boolean_mask(objects["bbox"], keep) * tf.concat([hw, hw], 0)
        classes = tf.cast(tf.boolean_mask(objects["label"], keep), tf.int32)
        scale = self.image_size / tf.reduce_max(hw)
        size = tf.cast(tf.round(hw * scale), tf.int32)
        image = tf.image.resize(image, size)
        mean = tf.constant(preprocessing.IMAGENET_MEAN_RGB, tf.float32)
        image = tf.image.pad_to_bounding_box(image - mean, 0, 0, self.image_size, self.image_size) + mean
        boxes = boxes * scale
        if training:
            image, boxes = flip_with_boxes(image, boxes)
        return tf.ensure_shape(image, self.input_shape), boxes, classes


@component
class VocSegmentation(_DenseTFDS):
    """PASCAL VOC 2012 semantic segmentation (21 classes with background; 255 marks
    unlabelled boundaries), from the `voc_segmentation2012` builder of
    `zoo.training.voc`, prepared from the manually downloaded tar (field
    `manual_dir`, default `$VOC_MANUAL_DIR`).

    Pairs are `image_size` squares (default 512, so that every VOC image, at most
    500 pixels a side, is evaluated whole; the paper trains on 480): training scales
    an image and its mask by a random factor in [0.5, 2], pads (image with the mean
    pixel, mask with 255), crops at random and flips; evaluation pads and takes the
    center crop.
    """

    name = Field("voc_segmentation2012:1.*.*")
    train_split = Field("train")
    validation_split = Field("validation")
    test_split = Field("validation")
    manual_dir: Optional[str] = Field(lambda: os.environ.get("VOC_MANUAL_DIR"))
    augment: bool = Field(True)

    class_names = voc.VOC_CLASSES
    weights_tag = "voc2012"

    def _not_found_hint(self) -> str:
        return voc.VocSegmentation2012.MANUAL_DOWNLOAD_INSTRUCTIONS + (
            " Then pass `dataset.manual_dir=/that/folder` (or `export VOC_MANUAL_DIR=...`)."
        )

    def segmentation_pair(self, data: Dict[str, tf.Tensor], training: bool) -> Tuple[tf.Tensor, tf.Tensor]:
        """(image float32 0-255, mask int32) of `image_size`, augmented when training."""
        image, mask = tf.cast(data["image"], tf.float32), tf.cast(data["mask"][..., 0], tf.int32)
        augment = training and self.augment
        if augment:
            scale = tf.random.uniform((), 0.5, 2.0)
            size = tf.cast(tf.round(tf.cast(tf.shape(image)[:2], tf.float32) * scale), tf.int32)
            image = tf.image.resize(image, size)
            mask = tf.image.resize(mask[..., None], size, method="nearest")[..., 0]
        # Pad to at least image_size: the image with the mean pixel, the mask with 255.
        crop = self.image_size
        shape = tf.shape(image)
        pad_h, pad_w = tf.maximum(crop - shape[0], 0), tf.maximum(crop - shape[1], 0)
        paddings = [[pad_h // 2, pad_h - pad_h // 2], [pad_w // 2, pad_w - pad_w // 2]]
        mean = tf.constant(preprocessing.IMAGENET_MEAN_RGB, tf.float32)
        image = tf.pad(image - mean, paddings + [[0, 0]]) + mean
        mask = tf.pad(mask, paddings, constant_values=IGNORE_LABEL)
        both = tf.concat([image, tf.cast(mask, tf.float32)[..., None]], -1)
        if augment:
            both = tf.image.random_crop(both, (crop, crop, 4))
        else:
            shape = tf.shape(both)
            both = tf.image.crop_to_bounding_box(both, (shape[0] - crop) // 2, (shape[1] - crop) // 2, crop, crop)
        image, mask = both[..., :3], tf.cast(both[..., 3], tf.int32)
        if augment:
            image, mask = flip_together(image, mask)
        return tf.ensure_shape(image, self.input_shape), tf.ensure_shape(mask, self.input_shape[:2])


# --- Preprocessing ---

@component
class Segmentation(Preprocessing):
    """Preprocessing of `(image, mask)` pairs by the dataset's own `segmentation_pair`
    (augmentation applied to both alike); masks keep `IGNORE_LABEL` for pixels that
    count in no loss and no metric."""

    dataset: Dataset = ComponentField(allow_missing=True)
    decoders = Field(lambda self: self.dataset.decoders)
    input_shape = Field(lambda self: self.dataset.input_shape)

    def __call__(self, data: Dict[str, tf.Tensor], training: bool = False) -> Tuple[tf.Tensor, tf.Tensor]:
        return self.dataset.segmentation_pair(data, training)


DATASETS: Dict[str, Type[Dataset]] = {
    "FashionMNIST": FashionMNIST,
    "Cifar10": Cifar10,
    "ImageNet": ImageNet,
    "FashionMNISTScenes": FashionMNISTScenes,  # Segmentation and detection.
    "VocSegmentation": VocSegmentation,
    "CocoDetection": CocoDetection,
}


def get_dataset(name: str) -> Type[Dataset]:
    """The dataset component class called `name` (case-insensitive).

    Arguments:
        name: "FashionMNIST", "Cifar10", "ImageNet", "FashionMNISTScenes",
            "VocSegmentation" or "CocoDetection".

    Returns:
        The component class (instantiate and configure it to use it).

    Raises:
        ValueError: for an unknown name.
    """
    for known, cls in DATASETS.items():
        if known.lower() == name.lower():
            return cls
    raise ValueError(f"Unknown dataset '{name}'; valid names: {', '.join(DATASETS)}.")
