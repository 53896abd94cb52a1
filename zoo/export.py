"""Larq Compute Engine export: convert a model, count its ops, run it.

Binary convolutions whose quantizers are sign-like in the forward pass (a per-channel
scale included) become `LceQuantize` + `LceBconv2d`; `op_counts` shows which ops a
converted file holds, so a test or the export command can prove no binary layer fell
back to float.
"""
from collections import Counter
from typing import Optional

import numpy as np
import tensorflow as tf


def convert(model: tf.keras.Model, target: str = "arm") -> bytes:
    """The model as a TFLite flatbuffer with Larq Compute Engine's binary ops.

    Needs the `larq_compute_engine` package (imported here, not at module import).

    Arguments:
        model: the Keras (Larq) model to convert.
        target: the hardware platform for LCE's converter, "arm" (default) or "xcore".

    Returns:
        The converted model, the bytes of a `.tflite` file.
    """
    import larq_compute_engine as lce

    return lce.convert_keras_model(model, target=target)


def op_counts(flatbuffer: bytes) -> Counter:
    """How many operators of each kind (builtin name or custom code) the file holds.

    Arguments:
        flatbuffer: the bytes of a `.tflite` file (e.g. from `convert`).

    Returns:
        A `Counter` from operator name to its number of uses, over all subgraphs: the
        builtin operator's name (e.g. "CONV_2D"), the custom code of a custom op (e.g.
        "LceBconv2d"), or "?" for a builtin code this TensorFlow does not know.
    """
    from tensorflow.lite.python import schema_py_generated as schema

    builtin = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    model = schema.Model.GetRootAsModel(flatbuffer, 0)
    names = []
    for i in range(model.OperatorCodesLength()):
        code = model.OperatorCodes(i)
        custom = code.CustomCode()
        names.append(custom.decode() if custom else builtin.get(max(code.BuiltinCode(), code.DeprecatedBuiltinCode()), "?"))
    counts = Counter()
    for g in range(model.SubgraphsLength()):
        graph = model.Subgraphs(g)
        for o in range(graph.OperatorsLength()):
            counts[names[graph.Operators(o).OpcodeIndex()]] += 1
    return counts


def predict(flatbuffer: bytes, images: np.ndarray, num_threads: Optional[int] = 1) -> np.ndarray:
    """Outputs of the converted model (LCE's interpreter), one image at a time.

    Needs the `larq_compute_engine` package.

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
