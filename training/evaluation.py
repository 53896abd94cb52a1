"""Input pipelines and evaluation shared by the training tasks and `zoo evaluate`."""
import json
from functools import partial
from pathlib import Path
from typing import Optional, Tuple

import numpy as np
import tensorflow as tf
from zookeeper import configure
from zookeeper.tf import Dataset, Preprocessing

from zoo.training.datasets import get_dataset


def batches(
    dataset: Dataset,
    split: str,
    training: bool,
    batch_size: int,
    preprocessing: Optional[Preprocessing] = None,
    shuffle_buffer: int = 60_000,
    seed: int = 0,
    limit: Optional[int] = None,
    one_hot: bool = True,
) -> Tuple[tf.data.Dataset, int]:
    """Batched (image 0-255, one-hot label) pairs of a split, and its example count.

    Training batches are shuffled and repeat forever; others make one pass in order
    (over the first `limit` examples when it is given). With `one_hot=False` the
    labels stay as the preprocessing gives them (class ids, e.g. a segmentation mask).
    """
    if preprocessing is None:  # the dataset's own transform, as ImageClassification does
        decoders, pairs = dataset.decoders, lambda d: (dataset.preprocess(d, training), d["label"])
    else:
        decoders, pairs = preprocessing.decoders, partial(preprocessing, training=training)
    data, count = getattr(dataset, split)(decoders=decoders)
    if limit is not None:
        data, count = data.take(limit), min(count, limit)
    if training:
        data = data.shuffle(min(count, shuffle_buffer), seed=seed).repeat()
    num_classes = dataset.num_classes
    data = data.map(pairs, tf.data.AUTOTUNE)
    if one_hot:
        data = data.map(lambda x, y: (x, tf.one_hot(y, num_classes)), tf.data.AUTOTUNE)
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return data.batch(batch_size).prefetch(tf.data.AUTOTUNE).with_options(options), count


def evaluate(model: tf.keras.Model, dataset: Dataset, batch_size: int = 256, limit: Optional[int] = None) -> dict:
    """Top-1 and top-5 accuracy of `model` over the test split (its first `limit`
    images when given, else all of it), in one pass."""
    data, count = batches(dataset, "test", training=False, batch_size=batch_size, limit=limit)
    top1 = tf.keras.metrics.TopKCategoricalAccuracy(1)
    top5 = tf.keras.metrics.TopKCategoricalAccuracy(5)

    @tf.function
    def step(x, y):
        p = model(x, training=False)
        top1.update_state(y, p)
        top5.update_state(y, p)

    for x, y in data:
        step(x, y)
    return {
        "dataset": type(dataset).__name__,
        "examples": int(count),
        "top1": float(top1.result()),
        "top5": float(top5.result()),
    }


def evaluate_segmentation(model: tf.keras.Model, dataset: Dataset, batch_size: int = 32,
                          limit: Optional[int] = None) -> dict:
    """Mean IoU, per-class IoU and pixel accuracy of `model` over the test split (its
    first `limit` examples when given), from one confusion matrix; pixels labelled
    `IGNORE_LABEL` are not counted, classes absent from both truth and prediction
    are left out of the mean."""
    from zoo.training.datasets import IGNORE_LABEL, Segmentation
    from zoo.training.dense_metrics import ConfusionMatrix

    preprocessing = Segmentation()
    configure(preprocessing, {"dataset": dataset})
    data, count = batches(dataset, "test", False, batch_size, preprocessing, limit=limit, one_hot=False)
    confusion = ConfusionMatrix(dataset.num_classes, IGNORE_LABEL)
    predict = tf.function(lambda x: tf.argmax(model(x, training=False), -1))
    for x, y in data:
        confusion.update(y.numpy(), predict(x).numpy())
    iou = confusion.iou()
    return {
        "dataset": type(dataset).__name__,
        "examples": int(count),
        "miou": confusion.mean_iou(),
        "pixel_accuracy": confusion.pixel_accuracy(),
        "class_iou": {name: None if np.isnan(v) else float(v) for name, v in zip(dataset.class_names, iou)},
    }


def evaluate_model(model: tf.keras.Model, dataset: Dataset, batch_size: int = 256,
                   limit: Optional[int] = None) -> Tuple[dict, str]:
    """`evaluate` for a classifier, `evaluate_segmentation` for a model of per-pixel
    outputs, `evaluate_detection` for a detector; returns (the result, its headline such as "top-1 91.59%, top-5 99.94%")."""
    from zoo.models.groupnet_fcos import LevelScale
    from zoo.weights import score_of

    if any(isinstance(layer, LevelScale) for layer in model.layers):
        from zoo.training.detection import evaluate_detection

        result = evaluate_detection(model, dataset, min(batch_size, 32), limit)
    elif len(model.output_shape) == 4:
        result = evaluate_segmentation(model, dataset, min(batch_size, 32), limit)
    else:
        result = evaluate(model, dataset, batch_size, limit)
    return result, score_of(result).text(result)


def make_dataset(name: str, options: Optional[dict] = None) -> Dataset:
    """A configured dataset component by name ("FashionMNIST", "FashionMNISTScenes",
    ...), with the field values `options` (as `dataset_options` records them)."""
    dataset = get_dataset(name)()
    configure(dataset, dict(options or {}))
    return dataset


def dataset_options(dataset: Dataset) -> dict:
    """The dataset component's field values that are plain numbers or text (e.g. the
    scenes' `seed` and `num_test`), to configure the same dataset again."""
    values = {name: getattr(dataset, name, None) for name in type(dataset).__component_fields__}
    return {k: v for k, v in values.items() if isinstance(v, (bool, int, float, str))}


def load_run_or_model(target: str, weights: Optional[str], dataset: Optional[str]):
    """(model, dataset) for `zoo evaluate`: a run directory, or a registered model name.

    Raises:
        FileNotFoundError: a run directory without a finished model.
        ValueError: a model name without --dataset, or an unknown model or dataset.
    """
    path = Path(target)
    if path.is_dir():
        run = json.loads((path / "run.json").read_text()) if (path / "run.json").exists() else {}
        if not (path / "model.h5").exists():
            raise FileNotFoundError(
                f"{path} holds no finished model (model.h5). If its training was "
                "interrupted, re-run the same command to resume it."
            )
        import zoo  # noqa: F401  (registers the quantizers the h5 file names)

        model = tf.keras.models.load_model(str(path / "model.h5"), compile=False)
        name = dataset or run.get("dataset")
        if name is None:
            raise ValueError(f"{path} does not say which dataset it was trained on; pass --dataset.")
        return model, make_dataset(name)
    from zoo import registry

    spec = registry.get(target)
    if dataset is None:
        raise ValueError(f"Pass --dataset (FashionMNIST, Cifar10, ImageNet or FashionMNISTScenes) to evaluate {spec.name}.")
    data = make_dataset(dataset)
    model = spec.build(weights=weights, input_shape=data.input_shape, num_classes=data.num_classes)
    return model, data


def sample_images(shape: Tuple[int, int, int], n: int) -> Tuple[np.ndarray, str]:
    """The first `n` Fashion-MNIST test images as a model with input `shape` takes them.

    Real images for checks that need some (export parity), on any model: resized to
    the model's height and width, the gray channel repeated to its channel count.

    Arguments:
        shape: the model's (height, width, channels).
        n: how many images.

    Returns:
        (a float32 array (n, height, width, channels) of pixel values 0-255, a
        description of where they came from).
    """
    data, count = batches(make_dataset("FashionMNIST"), "test", False, n, limit=n)
    images = next(iter(data))[0]
    height, width, channels = shape
    description = f"the first {count} Fashion-MNIST test images"
    if tuple(images.shape[1:3]) != (height, width):
        images = tf.image.resize(images, (height, width))
        description += f", resized to {height}x{width}"
    if channels != images.shape[-1]:
        images = tf.repeat(images, channels, axis=-1)
        description += f", gray in {channels} channels"
    return images.numpy(), description
