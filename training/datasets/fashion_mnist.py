"""Fashion-MNIST from the original IDX files: the IDX reader, the checked and cached
splits, `FashionMNISTFiles` (what every dataset made from those files shares) and the
`FashionMNIST` classification dataset."""

import gzip
import os
import struct
from pathlib import Path
from typing import Dict, Optional, Tuple

import numpy as np
import tensorflow as tf
from zookeeper import Field, component
from zookeeper.tf import Dataset

from zoo.training.datasets.base import (
    CorruptDatasetError,
    DatasetNotFoundError,
    ImageDataset,
)
from zoo.training.datasets.registry import register_dataset

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


@register_dataset
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
