"""Input pipelines and evaluation shared by the training tasks and `zoo evaluate`."""
import re
from functools import partial
from pathlib import Path
from typing import Callable, Optional, Tuple

import numpy as np
import tensorflow as tf
from zookeeper import configure
from zookeeper.tf import Dataset

from zoo import kinds, registry
from zoo.io import ZooError, read_json
from zoo.training.datasets import DATASETS, get_dataset
from zoo.training.datasets.base import SEED


def batches(
    dataset: Dataset,
    split: str,
    training: bool,
    batch_size: int,
    pairs: Callable,
    shuffle_buffer: int = 60_000,
    seed: int = 0,
    limit: Optional[int] = None,
    one_hot: bool = False,
) -> Tuple[tf.data.Dataset, int]:
    """Batched (image 0-255, target) pairs of a split, and its example count.

    `pairs(example, training)` makes a pair of a decoded example (`Kind.pair`).
    Training batches are shuffled and repeat forever, each example with its own
    augmentation seed (`datasets.base.example_seed`); others make one pass in order
    (over the first `limit` examples when it is given). `one_hot` encodes class ids.
    """
    data, count = getattr(dataset, split)(decoders=getattr(dataset, "decoders", None))
    if limit is not None:
        data, count = data.take(limit), min(count, limit)
    if training:
        data = data.shuffle(min(count, shuffle_buffer), seed=seed).repeat().enumerate()

        def pair(i, example):  # each example's augmentation seed: the run's seed and its place in the stream
            return pairs({**example, SEED: tf.stack([tf.cast(seed, tf.int64), i])}, training)
    else:
        def pair(example):
            return pairs(example, training)
    # One map per example, the rest on whole batches: each per-example map costs CPU time
    # that the training step would use (input_pipeline.py in benchmarks/ measures it).
    data = data.map(pair, tf.data.AUTOTUNE).batch(batch_size)
    if one_hot:
        num_classes = dataset.num_classes
        data = data.map(lambda x, y: (x, tf.one_hot(y, num_classes)))
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return data.prefetch(tf.data.AUTOTUNE).with_options(options), count


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
    """(model, dataset, its `Kind`) for `zoo evaluate`: a run directory, or a registered model name.

    A run folder's model is its model.h5, on the test split of its dataset (run.json;
    with the dataset's options of metrics.json, when --dataset does not name another).

    Raises:
        FileNotFoundError: a run directory without a finished model.
        ZooError: a path that is neither a run folder nor a model name; a run folder's
            corrupt run.json or metrics.json, or damaged model.h5 (the message names the
            file); a model name without --dataset, or an unknown model or dataset.
    """
    path = Path(target)
    if path.is_dir():
        run = read_json(path / "run.json")
        metrics = read_json(path / "metrics.json")
        if not (path / "model.h5").exists():
            raise FileNotFoundError(
                f"{path} holds no finished model (model.h5). If its training was "
                "interrupted, re-run the same command to resume it."
            )
        import zoo.quantizers  # noqa: F401  (registers the quantizers the h5 file names)

        try:
            model = tf.keras.models.load_model(str(path / "model.h5"), compile=False)
        except (OSError, ValueError, KeyError) as e:
            raise ZooError(f"{path / 'model.h5'} is damaged or not a Keras model file "
                           f"({str(e).splitlines()[0] if str(e) else type(e).__name__}); "
                           "restore it, or train the run again into a new output_dir.") from None
        name = dataset or run.get("dataset")
        if name is None:
            raise ZooError(f"{path} does not say which dataset it was trained on; pass --dataset.")
        if "model" not in run:
            raise ZooError(f"{path}/run.json does not name the model it trained; evaluate it as "
                           "`zoo evaluate MODEL --weights FILE --dataset D`.")
        options = metrics.get("dataset_options") if name == run.get("dataset") else None
        return model, make_dataset(name, options), registry.get(run["model"]).kind
    if path.exists():
        raise ZooError(f"{path} is a file, not a run folder; evaluate a weights file as "
                       "`zoo evaluate MODEL --weights FILE --dataset D`.")
    try:
        spec = registry.get(target)
    except registry.UnknownModelError as e:
        close = re.search(r"Did you mean [^?]*\?", str(e))
        raise ZooError(f"No such run folder {target!r}, nor a model of that name"
                       f"{' (' + close.group(0) + ')' if close else ''}; `zoo list` shows the models.") from None
    if dataset is None:
        raise ZooError(f"Pass --dataset ({', '.join(DATASETS)}) to evaluate {spec.name}.")
    data = make_dataset(dataset)
    model = spec.build(weights=weights, input_shape=data.input_shape, num_classes=data.num_classes)
    return model, data, spec.kind


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
    fashion = make_dataset("FashionMNIST")
    data, count = batches(fashion, "test", False, n, partial(kinds.KINDS["classification"].pair, fashion), limit=n)
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
