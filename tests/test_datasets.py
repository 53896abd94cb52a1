import gzip
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from zookeeper import ComponentField, component, configure
from zookeeper.tf import Dataset

from zoo import kinds
from zoo.preprocessing import center_crop
from zoo.training import datasets
from zoo.training.datasets import (
    DATASETS,
    Cifar10,
    CorruptDatasetError,
    DatasetNotFoundError,
    FashionMNIST,
    ImageNet,
    get_dataset,
)
from zoo.training.datasets.base import SEED
from zoo.training.evaluation import batches, make_dataset

IDX_NAMES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


def configured(instance, **conf):
    configure(instance, conf)
    return instance


@pytest.fixture(scope="module")
def fashion_mnist() -> FashionMNIST:
    return configured(FashionMNIST())


def batch_of(dataset: tf.data.Dataset, size: int):
    return next(iter(dataset.batch(size)))


# --- Fashion-MNIST data ---


@pytest.mark.parametrize(
    "split, size", [("train", 60_000), ("validation", 10_000), ("test", 10_000)]
)
def test_fashion_mnist_splits(fashion_mnist, split, size):
    dataset, num_examples = getattr(fashion_mnist, split)()
    assert num_examples == size == fashion_mnist.num_examples(split)
    assert dataset.cardinality().numpy() == size
    assert dataset.element_spec == {
        "image": tf.TensorSpec((28, 28, 1), tf.uint8),
        "label": tf.TensorSpec((), tf.int64),
    }
    labels = batch_of(dataset.map(lambda data: data["label"]), size).numpy()
    assert np.bincount(labels).tolist() == [size // 10] * 10


def test_fashion_mnist_metadata(fashion_mnist):
    assert fashion_mnist.num_classes == 10
    assert fashion_mnist.input_shape == (28, 28, 1)
    assert fashion_mnist.decoders is None
    assert fashion_mnist.class_names[0] == "T-shirt/top"
    assert fashion_mnist.class_names[9] == "Ankle boot"
    with pytest.raises(ValueError, match="validation"):
        fashion_mnist.num_examples("dev")


def test_fashion_mnist_images_are_real(fashion_mnist):
    images = batch_of(fashion_mnist.test()[0], 100)["image"].numpy()
    assert images.min() == 0 and images.max() == 255
    assert len(np.unique(images.reshape(100, -1), axis=0)) == 100


def test_fashion_mnist_is_read_once_per_folder(fashion_mnist, monkeypatch):
    fashion_mnist.train()
    first = datasets.load_fashion_mnist(fashion_mnist.folder)

    def fail(*args):
        raise AssertionError("the IDX files were read again")

    monkeypatch.setattr(datasets.fashion_mnist, "read_idx", fail)
    assert datasets.load_fashion_mnist(fashion_mnist.folder) is first
    assert configured(FashionMNIST()).test()[1] == 10_000


@pytest.mark.parametrize("augment", [True, False])
def test_fashion_mnist_preprocess(augment):
    dataset = configured(FashionMNIST(), augment=augment)
    data = batch_of(dataset.train()[0], 64)
    images = tf.cast(data["image"], tf.float32).numpy()
    for training in (True, False):
        result = tf.map_fn(
            lambda image: dataset.preprocess({"image": image}, training),
            data["image"],
            fn_output_signature=tf.float32,
        ).numpy()
        assert result.shape == (64, 28, 28, 1) and result.dtype == np.float32
        assert result.min() >= 0.0 and result.max() <= 255.0
        if training and augment:
            assert not np.array_equal(result, images)
            # Flip, pad and crop move pixels but add no new values but zeros.
            assert set(np.unique(result)) <= set(np.unique(images)) | {0.0}
        else:
            np.testing.assert_array_equal(result, images)


def test_training_batches_are_augmented_alike_in_every_pipeline_and_each_example_its_own_way(fashion_mnist):
    kind = kinds.get("classification")

    def first_batches(dataset, seed=0):
        data = batches(dataset, "train", True, 64, partial(kind.pair, dataset), 1000, seed)[0]
        return [x.numpy() for x, _ in data.take(3)]

    augmented = first_batches(fashion_mnist)
    for again, batch in zip(first_batches(configured(FashionMNIST())), augmented):  # a pipeline of its own
        np.testing.assert_array_equal(again, batch)
    plain = first_batches(configured(FashionMNIST(), augment=False))
    assert all(not np.array_equal(a, p) for a, p in zip(augmented, plain))
    assert not np.array_equal(first_batches(fashion_mnist, seed=1)[0], augmented[0])
    # One image, seen at many places in the stream, is flipped and cropped many ways.
    same = {"image": tf.repeat(plain[0][:1].astype("uint8"), 32, 0), "label": tf.zeros(32, tf.int64)}
    one = tf.data.Dataset.from_tensor_slices(same).enumerate().map(
        lambda i, example: fashion_mnist.preprocess({**example, SEED: tf.stack([tf.constant(0, tf.int64), i])}, True))
    assert len({image.numpy().tobytes() for image in one}) > 8


def test_a_classifiers_pairs_of_fashion_mnist(fashion_mnist):
    kind = kinds.get("classification")
    dataset = fashion_mnist.train()[0].map(lambda data: kind.pair(fashion_mnist, data, True))
    assert dataset.element_spec == (tf.TensorSpec((28, 28, 1), tf.float32), tf.TensorSpec((), tf.int64))
    image, label = next(iter(dataset))
    assert label.numpy() == next(iter(fashion_mnist.train()[0]))["label"].numpy()


def test_missing_fashion_mnist(tmp_path):
    with pytest.raises(DatasetNotFoundError) as error:
        configured(FashionMNIST(), data_dir=str(tmp_path)).train()
    message = str(error.value)
    assert isinstance(error.value, FileNotFoundError)
    assert str(tmp_path) in message
    assert "train-images-idx3-ubyte" in message
    assert "apt-get install dataset-fashion-mnist" in message
    assert "ZOO_DATA_DIR" in message


def test_zoo_data_dir_is_where_fashion_mnist_is_looked_for(tmp_path, monkeypatch):
    monkeypatch.setenv("ZOO_DATA_DIR", str(tmp_path / "elsewhere"))
    with pytest.raises(DatasetNotFoundError, match="elsewhere"):
        configured(FashionMNIST()).validation()


@pytest.fixture
def fashion_mnist_copy(fashion_mnist, tmp_path) -> Path:
    """A folder linking to the real (gzipped) IDX files."""
    for name in IDX_NAMES:
        source = datasets.fashion_mnist._find_idx_file(fashion_mnist.folder, name)
        (tmp_path / source.name).symlink_to(source)
    return tmp_path


def real_bytes(folder: Path, name: str) -> bytes:
    return gzip.decompress((folder / f"{name}.gz").read_bytes())


def truncated(raw: bytes) -> bytes:
    return raw[: len(raw) // 2]


def wrong_magic(raw: bytes) -> bytes:
    return (2051).to_bytes(4, "big") + raw[4:]


def unbalanced(raw: bytes) -> bytes:
    labels = bytearray(raw)
    labels[8] = (labels[8] + 1) % 10
    return bytes(labels)


def out_of_range(raw: bytes) -> bytes:
    labels = bytearray(raw)
    labels[8] = 10
    return bytes(labels)


@pytest.mark.parametrize(
    "corrupt, problem",
    [
        (truncated, "truncated"),
        (wrong_magic, "magic number 2051, expected 2049"),
        (unbalanced, "not balanced"),
        (out_of_range, "label 10"),
    ],
)
def test_corrupted_labels_file(fashion_mnist_copy, corrupt, problem):
    name = "t10k-labels-idx1-ubyte"
    # An uncompressed file is preferred to the .gz next to it.
    (fashion_mnist_copy / name).write_bytes(
        corrupt(real_bytes(fashion_mnist_copy, name))
    )
    with pytest.raises(CorruptDatasetError, match=problem) as error:
        configured(FashionMNIST(), data_dir=str(fashion_mnist_copy)).train()
    assert str(fashion_mnist_copy / name) in str(error.value)


def test_truncated_gzip_file(fashion_mnist_copy):
    path = fashion_mnist_copy / "t10k-images-idx3-ubyte.gz"
    compressed = path.read_bytes()
    path.unlink()
    path.write_bytes(truncated(compressed))
    with pytest.raises(CorruptDatasetError, match="Cannot read") as error:
        configured(FashionMNIST(), data_dir=str(fashion_mnist_copy)).test()
    assert str(path) in str(error.value)


def test_images_of_the_wrong_size(fashion_mnist_copy):
    name = "t10k-images-idx3-ubyte"
    header = b"\x00\x00\x08\x03" + b"".join(
        n.to_bytes(4, "big") for n in (10_000, 32, 32)
    )
    (fashion_mnist_copy / name).write_bytes(header + bytes(10_000 * 32 * 32))
    with pytest.raises(CorruptDatasetError, match=r"\(10000, 32, 32\)"):
        configured(FashionMNIST(), data_dir=str(fashion_mnist_copy)).test()


# --- CIFAR-10, ImageNet ---


@pytest.fixture
def mock_tfds(monkeypatch):
    # Mocked datasets have no split sizes in their info.
    for cls in (Cifar10, ImageNet):
        monkeypatch.setattr(cls, "num_examples", lambda self, split: 3)
    with tfds.testing.mock_data(num_examples=3):
        yield


@pytest.mark.parametrize(
    "cls, shape, num_classes",
    [(Cifar10, (32, 32, 3), 10), (ImageNet, (224, 224, 3), 1000)],
)
@pytest.mark.parametrize("split", ["train", "validation", "test"])
def test_tfds_datasets_preprocess(mock_tfds, cls, shape, num_classes, split):
    dataset = configured(cls())
    assert dataset.input_shape == shape
    assert dataset.num_classes == num_classes
    data, num_examples = getattr(dataset, split)(decoders=dataset.decoders)
    assert num_examples == 3
    for training in (True, False):
        images = list(data.map(lambda element: dataset.preprocess(element, training)))
        assert len(images) == 3
        for image in images:
            assert image.shape == shape and image.dtype == tf.float32
            assert 0.0 <= tf.reduce_min(image) <= tf.reduce_max(image) <= 255.0
            assert tf.reduce_max(image) > 1.0  # Not normalized.


def test_imagenet_images_stay_encoded(mock_tfds):
    imagenet = configured(ImageNet())
    element = next(iter(imagenet.train(decoders=imagenet.decoders)[0]))
    assert element["image"].dtype == tf.string
    assert element["label"].dtype == tf.int64
    # Decoded images (no decoders) are preprocessed too.
    decoded = next(iter(imagenet.validation()[0]))
    assert decoded["image"].dtype == tf.uint8
    assert imagenet.preprocess(decoded, training=False).shape == (224, 224, 3)
    np.testing.assert_array_equal(
        imagenet.preprocess(decoded, training=False), center_crop(decoded["image"])
    )
    augmented = imagenet.preprocess(decoded, training=True)
    assert augmented.shape == (224, 224, 3) and augmented.dtype == tf.float32


def test_cifar10_augmentation(mock_tfds):
    cifar10 = configured(Cifar10())
    image = tf.cast(next(iter(cifar10.train()[0]))["image"], tf.float32)
    augmented = [cifar10.preprocess({"image": image}, training=True) for _ in range(8)]
    assert any(not np.array_equal(result, image) for result in augmented)
    no_augment = configured(Cifar10(), augment=False)
    np.testing.assert_array_equal(no_augment.preprocess({"image": image}, True), image)


@pytest.fixture
def recorded_tfds_load(monkeypatch):
    calls = []

    def load(**kwargs):
        calls.append(kwargs)
        return tf.data.Dataset.from_tensors({"image": "", "label": 0})

    monkeypatch.setattr(tfds, "load", load)
    return calls


def test_imagenet_manual_dir_prepares_the_dataset(recorded_tfds_load, tmp_path):
    imagenet = configured(ImageNet(), manual_dir=str(tmp_path))
    imagenet.load("train", imagenet.decoders, shuffle=True)
    (kwargs,) = recorded_tfds_load
    assert kwargs["name"] == "imagenet2012:5.*.*" and kwargs["split"] == "train"
    assert kwargs["download"] is True
    config = kwargs["download_and_prepare_kwargs"]["download_config"]
    assert isinstance(config, tfds.download.DownloadConfig)
    assert str(config.manual_dir) == str(tmp_path)


def test_imagenet_manual_dir_from_the_environment(recorded_tfds_load, monkeypatch):
    monkeypatch.setenv("IMAGENET_MANUAL_DIR", "/data/ILSVRC2012")
    configured(ImageNet()).load("validation", None, shuffle=False)
    config = recorded_tfds_load[0]["download_and_prepare_kwargs"]["download_config"]
    assert str(config.manual_dir) == "/data/ILSVRC2012"


def test_imagenet_without_manual_dir_does_not_download(recorded_tfds_load, monkeypatch):
    monkeypatch.delenv("IMAGENET_MANUAL_DIR", raising=False)
    configured(ImageNet()).load("validation", None, shuffle=False)
    (kwargs,) = recorded_tfds_load
    assert kwargs["download"] is False
    assert "download_and_prepare_kwargs" not in kwargs


def test_missing_imagenet_tells_to_pass_manual_dir(tmp_path, monkeypatch):
    monkeypatch.delenv("IMAGENET_MANUAL_DIR", raising=False)
    imagenet = configured(ImageNet(), data_dir=str(tmp_path))
    with pytest.raises(DatasetNotFoundError, match="dataset.manual_dir=") as error:
        imagenet.train(decoders=imagenet.decoders)
    assert str(tmp_path) in str(error.value)


def test_imagenet_manual_dir_without_the_tars(tmp_path):
    manual_dir = tmp_path / "empty"
    imagenet = configured(
        ImageNet(), data_dir=str(tmp_path / "data"), manual_dir=str(manual_dir)
    )
    with pytest.raises(DatasetNotFoundError, match="ILSVRC2012_img_train.tar") as error:
        imagenet.validation(decoders=imagenet.decoders)
    assert str(manual_dir) in str(error.value)


def test_missing_cifar10(tmp_path):
    with pytest.raises(DatasetNotFoundError, match="dataset.download=True"):
        configured(Cifar10(), data_dir=str(tmp_path)).train()


# --- Registry ---


def test_get_dataset():
    assert get_dataset("FashionMNIST") is FashionMNIST
    assert get_dataset("cifar10") is Cifar10
    assert get_dataset("ImageNet") is ImageNet
    with pytest.raises(ValueError, match="Cifar10, CocoDetection, FashionMNIST, FashionMNISTScenes, ImageNet"):
        get_dataset("MNIST")


def test_registry_has_the_dense_datasets():
    assert {"FashionMNISTScenes", "VocSegmentation", "CocoDetection"} <= set(DATASETS)


@pytest.mark.parametrize("name", list(DATASETS))
def test_every_registered_name_resolves(name):
    # As `zoo TrainX dataset=<name>` does: zookeeper matches the value to a class name.
    @component
    class Task:
        dataset: Dataset = ComponentField()

    assert type(configured(Task(), dataset=name).dataset) is DATASETS[name]
    # As `zoo evaluate --dataset <name>` and a run's run.json do.
    assert type(make_dataset(name)) is DATASETS[name]
