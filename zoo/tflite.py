"""Larq Compute Engine export: convert a model and find what did not convert.

`zoo.export(model, path, images)` (and `zoo export MODEL`) converts a model with Larq
Compute Engine (`zoo.deployment`), writes the `.tflite` file atomically and checks it:

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
import re
import sys
import tempfile
from collections import Counter
from typing import Optional, Tuple

import tensorflow as tf

from zoo import stack
from zoo.complexity import binary_convolutions


def convert(model: tf.keras.Model, target: str = "arm") -> bytes:
    """The model as a TFLite flatbuffer with Larq Compute Engine's binary ops.

    Arguments:
        model: the Keras (Larq) model to convert.
        target: the hardware platform for LCE's converter, "arm" (default) or "xcore".

    Returns:
        The converted model, the bytes of a `.tflite` file.
    """
    stack.require_lce()
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
        number = max(code.BuiltinCode(), code.DeprecatedBuiltinCode())
        names.append(custom.decode() if custom else builtin.get(number, "?"))
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


def _layer_of(scope: str, layers) -> Optional[str]:
    """The layer a name scope belongs to: a shared layer's later calls have scopes with a
    suffix (`cls_tower1_conv_1`)."""
    return next((name for name in (scope, re.sub(r"_\d+$", "", scope)) if name in layers), None)


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
        have (one per group and call); empty when every one converted.
    """
    expected = dict(binary_convolutions(model))
    bconvs = [(inputs[0], outputs[0]) for name, inputs, outputs in _operators(flatbuffer) if name == "LceBconv2d"]
    readers = Counter(source for source, _ in bconvs)
    found = Counter()
    for source, result in bconvs:
        tensor = result if readers[source] > 1 else source
        found.update(filter(None, (_layer_of(part, expected) for part in tensor.split("/")[:-1])))
    return tuple(name for name, n in expected.items() if found[name] < n)
