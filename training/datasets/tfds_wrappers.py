"""Datasets of TensorFlow Datasets: the wrappers that turn missing data into a
`DatasetNotFoundError` and prepare manually downloaded data, their image
classification and dense prediction bases, and CIFAR-10."""

from typing import Optional, Tuple

import tensorflow as tf
import tensorflow_datasets as tfds
from zookeeper import Field, component
from zookeeper.tf import TFDSDataset

from zoo.training.datasets.base import DatasetNotFoundError, ImageDataset
from zoo.training.datasets.registry import register_dataset


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


@register_dataset
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
