"""Larq Compute Engine export: convert a model, check the result, run it.

`export(model, path, images)` (also `zoo.export` and `zoo export MODEL`) converts a
model with Larq Compute Engine, writes the `.tflite` file atomically and checks it:

- every binary convolution became an `LceBconv2d` (a Group-Net fused convolution
  becomes one per base); a binary layer that fell back to float ops is named;
- the converted model's outputs match Keras' on the given images (max absolute
  difference, top-1 agreement);
- its size against the plain TensorFlow Lite conversion of the same network (float
  weights, the quantizers run as float ops).

A binary convolution is a layer whose multiply-accumulates `zoo.complexity` counts as
binary (both quantizers 1-bit in the forward pass, a per-channel scale included).
"""
import contextlib
import os
import sys
import tempfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

import numpy as np
import tensorflow as tf

from zoo.complexity import iter_layers, layer_cost


def convert(model: tf.keras.Model, target: str = "arm") -> bytes:
    """The model as a TFLite flatbuffer with Larq Compute Engine's binary ops.

    Arguments:
        model: the Keras (Larq) model to convert.
        target: the hardware platform for LCE's converter, "arm" (default) or "xcore".

    Returns:
        The converted model, the bytes of a `.tflite` file.
    """
    import larq_compute_engine as lce

    with _converter_output():
        return lce.convert_keras_model(model, target=target)


def convert_float(model: tf.keras.Model) -> bytes:
    """The plain TensorFlow Lite conversion (float weights, quantizers as float ops).

    Arguments:
        model: the Keras (Larq) model to convert.

    Returns:
        The bytes of a `.tflite` file: the float baseline of `convert`.
    """
    with _converter_output():
        return tf.lite.TFLiteConverter.from_keras_model(model).convert()


@contextlib.contextmanager
def _converter_output():
    """Holds back what the MLIR converter prints on file descriptor 2 (a summary of
    the ops it did not convert, on every call); shows it only if the conversion fails."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as log:
        os.dup2(log.fileno(), 2)
        try:
            yield
        except Exception:
            os.dup2(saved, 2)
            log.seek(0)
            sys.stderr.write(log.read().decode(errors="replace"))
            raise
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def _operators(flatbuffer: bytes):
    """(operator name, input tensor names, output tensor names) of every operator."""
    from tensorflow.lite.python import schema_py_generated as schema

    builtin = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    model = schema.Model.GetRootAsModel(flatbuffer, 0)
    names = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        custom = code.CustomCode()
        names.append(custom.decode() if custom else builtin.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "?"))
    for g in range(model.SubgraphsLength()):
        graph = model.Subgraphs(g)

        def tensors(indices, n):
            return [graph.Tensors(indices(j)).Name().decode() for j in range(n) if indices(j) >= 0]

        for o in range(graph.OperatorsLength()):
            op = graph.Operators(o)
            yield (names[op.OpcodeIndex()], tensors(op.Inputs, op.InputsLength()),
                   tensors(op.Outputs, op.OutputsLength()))


def op_counts(flatbuffer: bytes) -> Counter:
    """How many operators of each kind (builtin name or custom code) the file holds.

    Arguments:
        flatbuffer: the bytes of a `.tflite` file (e.g. from `convert`).

    Returns:
        A `Counter` from operator name to its number of uses, over all subgraphs: the
        builtin operator's name (e.g. "CONV_2D"), the custom code of a custom op (e.g.
        "LceBconv2d"), or "?" for a builtin code this TensorFlow does not know.
    """
    return Counter(name for name, _, _ in _operators(flatbuffer))


def binary_convolutions(model: tf.keras.Model) -> List[Tuple[str, int]]:
    """(layer name, number of LceBconv2d it should become) of each binary convolution.

    Arguments:
        model: a Keras model (nested models are searched too).

    Returns:
        One pair per layer with binary multiply-accumulates; a grouped (Group-Net
        fused) convolution becomes one `LceBconv2d` per group.
    """
    return [(layer.name, getattr(layer, "groups", 1)) for layer in iter_layers(model) if layer_cost(layer).bops]


def fallbacks(model: tf.keras.Model, flatbuffer: bytes) -> Tuple[str, ...]:
    """The model's binary convolutions that did not become `LceBconv2d` in `flatbuffer`.

    An `LceBconv2d` is attributed to a Keras layer by a tensor name, which keeps the
    layer's scope (`model/stage1_conv1_conv/...`): its input's, named after the layer
    whose input LCE binarized, unless that binarized input feeds several convolutions
    (Group-Net's first conv and downsampling of a block share it); then its output's.

    Arguments:
        model: the Keras model that was converted.
        flatbuffer: the bytes of its converted `.tflite` file.

    Returns:
        The names of the binary layers with fewer `LceBconv2d` ops than they should
        have (one, or one per group); empty when every one converted.
    """
    expected = dict(binary_convolutions(model))
    bconvs = [(inputs[0], outputs[0]) for name, inputs, outputs in _operators(flatbuffer) if name == "LceBconv2d"]
    readers = Counter(source for source, _ in bconvs)
    found = Counter()
    for source, result in bconvs:
        tensor = result if readers[source] > 1 else source
        found.update(part for part in tensor.split("/")[:-1] if part in expected)
    return tuple(name for name, n in expected.items() if found[name] < n)


@dataclass(frozen=True)
class ExportReport:
    """What `export` wrote and found.

    Arguments:
        path: the `.tflite` file written.
        size: its size in bytes.
        float_size: the size in bytes of the plain TensorFlow Lite conversion.
        ops: operator counts of the file (`op_counts`).
        binary_convolutions: the `LceBconv2d` ops expected from the model's binary layers.
        fallbacks: binary layers that did not become `LceBconv2d` (by layer name).
        images: how many images the outputs were compared on.
        max_abs_diff: the largest absolute difference between Keras' and the file's outputs.
        top1_agreement: the fraction of images whose top class is the same in both.
    """

    path: Path
    size: int
    float_size: int
    ops: Counter
    binary_convolutions: int
    fallbacks: Tuple[str, ...]
    images: int
    max_abs_diff: float
    top1_agreement: float

    def summary(self) -> str:
        """A few lines for the command line."""
        fallbacks = ", ".join(self.fallbacks) or "none"
        return "\n".join([
            f"wrote {self.path} ({self.size / 1e6:.3f} MB; the float TFLite model is "
            f"{self.float_size / 1e6:.3f} MB, {self.float_size / self.size:.1f}x larger)",
            f"LceBconv2d {self.ops['LceBconv2d']} of {self.binary_convolutions} binary convolutions; "
            f"fell back to float: {fallbacks}",
            "ops: " + ", ".join(f"{name} {n}" for name, n in sorted(self.ops.items())),
            f"parity on {self.images} images: max |TFLite - Keras| {self.max_abs_diff:.3g}, "
            f"top-1 agreement {self.top1_agreement:.2%}",
        ])


def export(model: tf.keras.Model, path, images: Optional[np.ndarray] = None, num_threads: Optional[int] = 1) -> ExportReport:
    """Converts `model` with Larq Compute Engine, writes it to `path` and checks it.

    Arguments:
        model: the Keras (Larq) model to export.
        path: where to write the `.tflite` file (written atomically).
        images: a batch of images as the model takes them (N, height, width, channels),
            pixel values 0-255, on which the file's outputs are compared with Keras';
            default: the first 100 Fashion-MNIST test images, fitted to the model's
            input (`zoo.training.evaluation.sample_images`).
        num_threads: threads of LCE's interpreter for the comparison.

    Returns:
        An `ExportReport`: sizes, op counts, binary layers that fell back to float,
        and the output parity.

    Raises:
        ValueError: `images` is empty or does not fit the model's input.
    """
    from zoo.weights import atomic_write_bytes

    if images is None:
        from zoo.training.evaluation import sample_images

        images, _ = sample_images(tuple(model.input_shape[1:]), 100)
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or len(images) == 0 or tuple(images.shape[1:]) != tuple(model.input_shape[1:]):
        raise ValueError(f"images must be a non-empty batch of shape (N, {', '.join(map(str, model.input_shape[1:]))}); "
                         f"got {images.shape}.")
    flatbuffer = convert(model)
    path = Path(path)
    atomic_write_bytes(path, flatbuffer)
    keras = model.predict(images, batch_size=32, verbose=0)
    lite = predict(flatbuffer, images, num_threads)
    return ExportReport(
        path=path,
        size=len(flatbuffer),
        float_size=len(convert_float(model)),
        ops=op_counts(flatbuffer),
        binary_convolutions=sum(n for _, n in binary_convolutions(model)),
        fallbacks=fallbacks(model, flatbuffer),
        images=len(images),
        max_abs_diff=float(np.abs(lite - keras).max()),
        top1_agreement=float((lite.argmax(-1) == keras.argmax(-1)).mean()),
    )


def predict(flatbuffer: bytes, images: np.ndarray, num_threads: Optional[int] = 1) -> np.ndarray:
    """Outputs of the converted model (LCE's interpreter), one image at a time.

    Arguments:
        flatbuffer: the bytes of a converted `.tflite` file.
        images: a batch of images, shape (N, height, width, channels); each is cast
            to float32 and run as a batch of one.
        num_threads: threads of the interpreter; default 1.

    Returns:
        The outputs of a single-output model for the N images, concatenated along the
        first axis.
    """
    from larq_compute_engine.tflite.python.interpreter import Interpreter

    interpreter = Interpreter(flatbuffer, num_threads=num_threads)
    return np.concatenate([interpreter.predict(image[None].astype(np.float32)) for image in images])
