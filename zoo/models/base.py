"""What every model factory of the zoo shares: the keras.applications arguments.

A model is built by a zookeeper `@factory` (as in larq-zoo), so that every architecture
knob is a `Field` a training task can override from the command line
(`zoo TrainBiRealNet20 model.kernel_quantizer=ste_sign`). An architecture is one
`ModelFactory` subclass; its variants are rows of its family's table
(`zoo.models.family`), which give each factory its name and default input.

Input resolution, in order: an explicit `input_shape` / `input_tensor`, the published
checkpoint's shape (`weights=<tag>`), the training task's dataset, the model's default.
Models take images as stored (0-255) and normalize inside (`include_preprocessing`).
"""
from typing import Any, ClassVar, Dict, Optional, Sequence, Tuple

import tensorflow as tf
from zookeeper import ComponentField, Field
from zookeeper.tf import Dataset

from zoo import weights as weights_index
from zoo.io import ZooError, load_weights
from zoo.preprocessing import IMAGENET_MEAN_RGB, IMAGENET_STD_RGB


def normalization(channels: int) -> tf.keras.layers.Layer:
    """Maps pixel values 0-255 to roughly zero mean, unit variance.

    RGB inputs use the ImageNet statistics; other channel counts map [0, 255] to [-1, 1].
    """
    if channels == 3:
        mean, std = IMAGENET_MEAN_RGB, IMAGENET_STD_RGB
    else:
        mean, std = (127.5,) * channels, (127.5,) * channels
    return tf.keras.layers.Normalization(
        mean=list(mean), variance=[s * s for s in std], name="preprocessing"
    )


def classifier(x: tf.Tensor, num_classes: int, kernel_initializer="glorot_uniform") -> tf.Tensor:
    """A full-precision dense layer and softmax (in float32 under mixed precision)."""
    x = tf.keras.layers.Dense(num_classes, kernel_initializer=kernel_initializer, name="logits")(x)
    return tf.keras.layers.Activation("softmax", dtype="float32", name="predictions")(x)


# The keras.applications arguments, as fields of every model factory.
PUBLIC_FIELDS = ("include_top", "weights", "input_shape", "input_tensor", "num_classes", "include_preprocessing")


class ModelFactory:
    """Fields shared by every model: the keras.applications arguments.

    An architecture implements `features(x)` (the network up to its last feature map)
    and may override `top(x)` (the classifier). `constructor_fields` are the further
    fields its public constructors take (documented by `constructor_doc`); `name` and
    the defaults come from the variant (`zoo.models.family.make_factory`).
    """

    PUBLIC_FIELDS: ClassVar[Tuple[str, ...]] = PUBLIC_FIELDS
    constructor_fields: ClassVar[Tuple[str, ...]] = ()
    constructor_doc: ClassVar[str] = ""
    name: ClassVar[str]
    default_input_shape: ClassVar[Tuple[int, int, int]]
    default_num_classes: ClassVar[int]
    min_input_size: ClassVar[int] = 32

    # Given by a training task (zookeeper passes a parent's field of the same name).
    dataset: Optional[Dataset] = ComponentField(allow_missing=True)

    include_top: bool = Field(True)
    weights: Optional[str] = Field(None)
    input_shape: Optional[Sequence[Optional[int]]] = Field(None)
    input_tensor: Optional[Any] = Field(None)
    num_classes: Optional[int] = Field(None)
    include_preprocessing: bool = Field(True)

    def features(self, x: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    def top(self, x: tf.Tensor, num_classes: int, image: tf.Tensor) -> tf.Tensor:
        """Global average pooling, then the classifier (a dense head reads `image`, the input)."""
        return classifier(tf.keras.layers.GlobalAveragePooling2D(name="pool")(x), num_classes)

    def callbacks(self) -> list:
        """Keras callbacks the architecture's training needs (e.g. IR-Net's EDE schedule)."""
        return []

    def classes_of(self, dataset: Dataset) -> int:
        """The number of classes the model predicts on `dataset` (a detector: without background)."""
        return dataset.num_classes

    def _resolved(self):
        """(checkpoint path, input shape, num_classes) after checking the arguments."""
        path, entry = weights_index.resolve(self.name, self.weights, self.include_top, task_name(self.name))
        dataset = getattr(self, "dataset", None)
        if self.input_tensor is not None and self.input_shape is not None:
            given, tensor = tuple(self.input_shape), tuple(self.input_tensor.shape[1:])
            if len(given) != len(tensor) or any(a is not None and b is not None and a != b
                                                for a, b in zip(given, tensor)):
                raise ZooError(f"{self.name}: input_tensor has shape {tensor} but input_shape is {given}; "
                               "pass one of them, or matching ones.")
        candidates = [
            tuple(self.input_tensor.shape[1:]) if self.input_tensor is not None else None,
            tuple(self.input_shape) if self.input_shape is not None else None,
            entry.input_shape if entry else None,
            tuple(dataset.input_shape) if dataset is not None else None,
            self.default_input_shape,
        ]
        shape = next(c for c in candidates if c is not None)
        check_input_shape(self.name, shape, self.min_input_size)
        if entry and tuple(entry.input_shape[-1:]) != tuple(shape[-1:]):
            raise ValueError(
                f'{self.name} weights="{entry.tag}" take {entry.input_shape[-1]}-channel '
                f"images {entry.input_shape}; input_shape {shape} has {shape[-1]}. "
                "Pass a matching input_shape or weights=None."
            )
        num_classes = next(
            c
            for c in (
                self.num_classes,
                entry.num_classes if entry else None,
                self.classes_of(dataset) if dataset is not None else None,
                self.default_num_classes,
            )
            if c is not None
        )
        if entry and self.include_top and num_classes != entry.num_classes:
            raise ValueError(
                f'{self.name} weights="{entry.tag}" classify {entry.num_classes} classes, '
                f"not num_classes={num_classes}. Use include_top=False to put your own "
                "classifier on the features, or weights=None."
            )
        return path, entry, shape, num_classes

    # Fields that make a variant of the architecture (e.g. Group-Net's num_bases). A
    # checkpoint records them, and loading it builds the variant it was trained as.
    variant_fields: ClassVar[Tuple[str, ...]] = ()
    # Variant fields added after checkpoints were published, with the value those
    # checkpoints were trained with (their index entries do not name it).
    variant_fields_added: ClassVar[Dict[str, object]] = {}

    def variant(self) -> dict:
        return {name: getattr(self, name) for name in self.variant_fields}

    def _arguments(self, exclude) -> dict:
        """The factory's plain settings (e.g. a detector's `decode`), but those in `exclude`."""
        plain = (bool, int, float, str, tuple, list, dict, type(None))
        args = {}
        for name in type(self).__component_fields__:
            if name in exclude or name == "dataset":
                continue
            value = getattr(self, name)
            if name in PUBLIC_FIELDS or isinstance(value, plain):
                args[name] = value
        return args

    def rebuild(self) -> tf.keras.Model:
        """A new model of this factory's settings, built under the current Keras policy
        (`build()` returns the one it built first)."""
        _, _, shape, num_classes = self._resolved()  # the dataset's, in a training task
        return type(self)(**{**self._arguments(exclude=()), "input_shape": shape, "num_classes": num_classes}).build()

    def explicit_fields(self) -> set:
        """The fields the caller set: constructor keywords and configured (CLI) values.

        Read before any field (zookeeper forgets a keyword once a configured value is read).
        """
        return {*self.__component_instantiated_field_values__, *self.__component_configured_field_values__}

    def build(self) -> tf.keras.Model:
        explicit = self.explicit_fields()
        path, entry, shape, num_classes = self._resolved()
        if entry is not None:
            mine = self.variant()
            options = {**self.variant_fields_added, **options_from_json(entry.options)}
            different = {k: v for k, v in options.items() if mine.get(k, v) != v}
            contradicted = {k: v for k, v in different.items() if k in explicit}
            if contradicted:
                given = ", ".join(f"{k}={mine[k]!r}" for k in contradicted)
                trained = ", ".join(f"{k}={v!r}" for k, v in contradicted.items())
                raise ZooError(
                    f'{self.name}: weights="{entry.tag}" were trained with {trained}, but you passed {given}. '
                    "Drop the argument (the tag sets it), or pass weights=None to build that variant untrained.")
            if different:  # the checkpoint's variant, with the caller's other arguments
                return type(self)(**self._arguments(exclude=different), **different).build()
            path = weights_index.fetch(entry)
        if self.input_tensor is not None:
            inputs = self.input_tensor
            if not tf.keras.backend.is_keras_tensor(inputs):
                inputs = tf.keras.layers.Input(tensor=inputs, shape=shape)
        else:
            inputs = tf.keras.layers.Input(shape=shape, name="image")
        image = normalization(shape[-1])(inputs) if self.include_preprocessing else inputs
        x = self.features(image)
        if self.include_top:
            x = self.top(x, num_classes, image)
        model_inputs = tf.keras.utils.get_source_inputs(inputs)
        model = tf.keras.Model(model_inputs, x, name=self.name.lower())
        if path is not None:
            load_weights(model, path)
        return model


def options_from_json(options: dict) -> dict:
    """Architecture options read from JSON, lists back to (nested) tuples."""
    def tupled(value):
        return tuple(tupled(v) for v in value) if isinstance(value, list) else value

    return {k: tupled(v) for k, v in options.items()}


def check_input_shape(model: str, shape, min_size: int) -> None:
    """Raises a ValueError naming the problem for an unusable input shape."""
    if len(shape) != 3 or not shape[-1] or int(shape[-1]) < 1:
        raise ValueError(
            f"{model} takes images of shape (height, width, channels); got input_shape "
            f"{tuple(shape)}. For grayscale images use (28, 28, 1), not (28, 28)."
        )
    small = [d for d in shape[:2] if d is not None and d < min_size]
    if small:
        raise ValueError(
            f"{model} needs images of at least {min_size}x{min_size} pixels; got "
            f"input_shape {tuple(shape)}. Resize the images or pick a model for small "
            "inputs (the ResNet-20 variants take 28x28 and 32x32)."
        )


CONSTRUCTOR_DOC = """
Arguments:
    input_shape: (height, width, channels) of the input images, pixel values 0-255.
        Defaults to the checkpoint's shape when `weights` is a published tag, else to
        the model's default input.
    input_tensor: an optional Keras tensor (the output of `tf.keras.layers.Input()`)
        to use as the model's input.
    weights: `None` (random initialisation), the tag of a published checkpoint
        (`zoo weights list` shows them), or the path of a weights file.
    include_top: whether to include the classifier (global pooling, dense, softmax);
        without it the model returns the last feature map.
    num_classes: number of classes of the classifier. Defaults to the checkpoint's,
        else the model's default.
    include_preprocessing: normalize the 0-255 input inside the model (default). Set
        it to False to feed already-normalized images; the layer is not counted as cost.

Returns:
    A `tf.keras.Model`.

Raises:
    ValueError: an unusable `input_shape`, or `weights` that are not published
        (`zoo.weights.WeightsError`) or do not fit `input_shape` / `num_classes`.
"""


def task_name(model: str) -> str:
    """The training task of a model: `zoo Train<model>`."""
    return f"Train{model}"
