"""Export a model for deployment, check the file, and run exported models.

- `export(model, path, images, format=...)` (`zoo.export`, `zoo export MODEL`) writes
  the model in one of `FORMATS` and checks the file it wrote: its binary convolutions
  against the model's (a layer that fell back to float ops is named), its outputs
  against Keras' on real images, its size against the float conversion of the same
  network.
  - "lce": a `.tflite` file with Larq Compute Engine's `LceBconv2d` (`zoo.tflite`), the
    route for 64-bit ARM;
  - "openvino": an OpenVINO IR (`.xml` + `.bin`) with `BinaryConvolution`
    (`zoo.openvino_ir`), the route for x86.
- `deploy(path)` (`zoo.deploy`) loads an exported file, whatever its format (OpenVINO
  IR, LCE or plain TensorFlow Lite), and runs it on numpy batches with a given number
  of threads; the export checks and the benchmarks run files through it.
"""
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple, Union

import numpy as np
import tensorflow as tf

from zoo import stack
from zoo.complexity import binary_convolutions
from zoo.io import ZooError, atomic_write_bytes, writable_file

FORMATS = ("lce", "openvino")
SUFFIXES = {"lce": ".tflite", "openvino": ".xml"}


class Deployed:
    """An exported model, loaded and ready to run on numpy batches (see `deploy`).

    Attributes:
        format: "openvino", "lce" (a `.tflite` file with LCE ops) or "tflite" (plain).
        precision: the float part's precision, "f32" or "bf16" (OpenVINO), else None.
        num_threads: the inference threads.
        input_shape: the input the file takes, batch included (batch 1).
    """

    def __init__(self, source, num_threads: Optional[int] = 1, precision: str = "auto"):
        self.num_threads, self.precision = num_threads, None
        if isinstance(source, (str, Path)) and Path(source).suffix == ".xml":
            self._load_openvino(source, precision)
        else:
            flatbuffer = source if isinstance(source, bytes) else _read_bytes(source)
            self._load_tflite(flatbuffer)

    def _load_openvino(self, path, precision: str) -> None:
        from zoo import openvino_ir

        self.format, self.precision = "openvino", openvino_ir.resolve_precision(precision)
        compiled = openvino_ir.compile_model(_existing(path), self.num_threads, self.precision)
        request = compiled.create_infer_request()
        self.input_shape = tuple(compiled.inputs[0].get_shape())
        outputs = range(len(compiled.outputs))

        def run(x):
            request.infer([x])
            return [request.get_output_tensor(i).data.copy() for i in outputs]

        self.run = run

    def _load_tflite(self, flatbuffer: bytes) -> None:
        from zoo import tflite

        self.format = "lce" if any(name.startswith("Lce") for name in tflite.op_counts(flatbuffer)) else "tflite"
        if self.format == "lce":
            stack.require_lce()
            from larq_compute_engine.tflite.python.interpreter import Interpreter

            interpreter = Interpreter(flatbuffer, num_threads=self.num_threads)
            self.input_shape = tuple(interpreter.input_shapes[0])
            self.run = lambda x: tf.nest.flatten(interpreter.predict(x))
            return
        interpreter = tf.lite.Interpreter(model_content=flatbuffer, num_threads=self.num_threads)
        interpreter.allocate_tensors()
        source = interpreter.get_input_details()[0]
        self.input_shape = tuple(source["shape"])
        outputs = [detail["index"] for detail in interpreter.get_output_details()]

        def run(x):
            interpreter.set_tensor(source["index"], x)
            interpreter.invoke()
            return [interpreter.get_tensor(i) for i in outputs]

        self.run = run

    def __call__(self, images: np.ndarray) -> Union[np.ndarray, List[np.ndarray]]:
        """Outputs for a batch of images, run one image at a time (the file's batch is 1).

        Arguments:
            images: an array (N, height, width, channels) as the model takes it; cast to float32.

        Returns:
            The outputs of the N images concatenated along the first axis: one array,
            or a list of arrays (in the model's output order) for several outputs.

        Raises:
            ValueError: the images do not fit the file's input.
        """
        images = np.asarray(images, dtype=np.float32)
        if images.ndim != len(self.input_shape) or tuple(images.shape[1:]) != tuple(self.input_shape[1:]):
            raise ValueError(f"images must have shape (N, {', '.join(map(str, self.input_shape[1:]))}); "
                             f"got {images.shape}.")
        outputs = [self.run(image[None]) for image in images]
        joined = [np.concatenate(parts) for parts in zip(*outputs)]
        return joined[0] if len(joined) == 1 else joined


def _existing(path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no exported model at {path}; write one with: zoo export MODEL --out {path.name}")
    return path


def _read_bytes(path) -> bytes:
    path = _existing(path)
    if path.suffix != ".tflite":
        raise ValueError(f"{path} is neither an OpenVINO IR (.xml) nor a TensorFlow Lite file (.tflite).")
    return path.read_bytes()


def deploy(source, num_threads: Optional[int] = 1, precision: str = "auto") -> Deployed:
    """Loads an exported model to run it on numpy batches.

    Arguments:
        source: an OpenVINO IR (`.xml`, its `.bin` beside it), a `.tflite` file (Larq
            Compute Engine's or plain TensorFlow Lite; LCE's interpreter runs a file with
            LCE ops, TensorFlow's one without), or the bytes of a `.tflite` file.
        num_threads: inference threads; default 1.
        precision: OpenVINO's float part, "auto" (default: bf16 on a CPU with AMX, else
            f32), "f32" or "bf16"; unused for TensorFlow Lite.

    Returns:
        A `Deployed` model: call it on images (N, height, width, channels).

    Raises:
        FileNotFoundError: there is no such file.
        ValueError: the file is of no known format, or the precision is not available.
        ImportError: an OpenVINO IR without OpenVINO installed.
    """
    return Deployed(source, num_threads, precision)


@dataclass(frozen=True)
class ExportReport:
    """What `export` wrote and found.

    Arguments:
        path: the file written (`.tflite`, or the IR's `.xml`).
        format: "lce" or "openvino".
        size: its size in bytes (an IR's `.xml` and `.bin` together).
        float_size: the size in bytes of the float conversion of the same network (the
            plain TensorFlow Lite file; OpenVINO's float twin); None when it was not
            made (`export(float_baseline=False)`).
        ops: operator counts of the file.
        binary_op: the operator a binary convolution becomes ("LceBconv2d",
            "BinaryConvolution").
        binary_convolutions: how many of them the model's binary layers should give.
        fallbacks: binary layers that did not become `binary_op` (by layer name).
        images: how many images the outputs were compared on.
        max_abs_diff: the largest absolute difference between Keras' and the file's outputs.
        top1_agreement: the fraction of images (pixels, for a dense model) whose top
            class (first output's last axis) is the same in both.
        precision: the float part's precision in the comparison (OpenVINO), else None.
    """

    path: Path
    format: str
    size: int
    float_size: Optional[int]
    ops: Counter
    binary_op: str
    binary_convolutions: int
    fallbacks: Tuple[str, ...]
    images: int
    max_abs_diff: float
    top1_agreement: float
    precision: Optional[str] = None

    def summary(self) -> str:
        """A few lines for the command line."""
        fallbacks = ", ".join(self.fallbacks) or "none"
        runtime = f"OpenVINO, float part {self.precision}" if self.precision else "TFLite"
        baseline = "the float conversion was not made" if self.float_size is None else (
            f"the float conversion is {self.float_size / 1e6:.3f} MB, {self.float_size / self.size:.1f}x larger")
        return "\n".join([
            f"wrote {self.path} ({self.size / 1e6:.3f} MB; {baseline})",
            f"{self.binary_op} {self.ops[self.binary_op]} of {self.binary_convolutions} binary convolutions; "
            f"fell back to float: {fallbacks}",
            "ops: " + ", ".join(f"{name} {n}" for name, n in sorted(self.ops.items()) if name != "Constant"),
            f"parity on {self.images} images: max |{runtime} - Keras| {self.max_abs_diff:.3g}, "
            f"top-1 agreement {self.top1_agreement:.2%}",
        ])


def export(model: tf.keras.Model, path, images: Optional[np.ndarray] = None, format: str = "lce",
           num_threads: Optional[int] = 1, precision: str = "auto", float_baseline: bool = True) -> ExportReport:
    """Converts `model`, writes it to `path` and checks the file written.

    Arguments:
        model: the Keras (Larq) model to export.
        path: where to write it: a `.tflite` file ("lce") or an IR's `.xml` ("openvino",
            its `.bin` beside it); each file is written atomically.
        images: a batch of images as the model takes them (N, height, width, channels),
            pixel values 0-255, on which the file's outputs are compared with Keras';
            default: the first 100 Fashion-MNIST test images, fitted to the model's
            input (`zoo.training.evaluation.sample_images`).
        format: "lce" (default, Larq Compute Engine) or "openvino".
        num_threads: inference threads for the comparison.
        precision: OpenVINO's float part in the comparison, "auto", "f32" or "bf16" (`deploy`).
        float_baseline: also convert the network in float, for the size comparison
            (`ExportReport.float_size`); False skips that second conversion, which takes
            longer than the binary one.

    Returns:
        An `ExportReport`: sizes, op counts, binary layers that fell back to float,
        and the output parity.

    Raises:
        ZooError: an unknown format, a path that cannot be written or has the wrong
            suffix, or `images` that are empty or do not fit the model's input.
        ImportError: format "openvino" without OpenVINO installed.
    """
    if format not in FORMATS:
        raise ZooError(f"format must be one of {', '.join(FORMATS)}; got {format!r}.")
    if format == "lce":
        stack.require_lce()
    path = writable_file(path)  # checked before the conversion
    if path.suffix != SUFFIXES[format]:
        raise ZooError(f'format="{format}" writes a {SUFFIXES[format]} file; got {path}.')
    if images is None:
        from zoo.training.evaluation import sample_images

        images, _ = sample_images(tuple(model.input_shape[1:]), 100)
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or len(images) == 0 or tuple(images.shape[1:]) != tuple(model.input_shape[1:]):
        shape = ", ".join(map(str, model.input_shape[1:]))
        raise ZooError(f"images must be a non-empty batch of shape (N, {shape}); got {images.shape}.")
    written = (_write_openvino if format == "openvino" else _write_lce)(model, path, float_baseline)
    deployed = deploy(path, num_threads, precision)
    keras = tf.nest.flatten(model.predict(images, batch_size=32, verbose=0))
    outputs = tf.nest.flatten(deployed(images))
    return ExportReport(
        path=path, format=format, **written, binary_convolutions=sum(n for _, n in binary_convolutions(model)),
        images=len(images), precision=deployed.precision,
        max_abs_diff=max(float(np.abs(o - k).max()) for o, k in zip(outputs, keras)),
        top1_agreement=float((outputs[0].argmax(-1) == keras[0].argmax(-1)).mean()),
    )


def _write_lce(model: tf.keras.Model, path: Path, float_baseline: bool) -> dict:
    from zoo import tflite

    flatbuffer = tflite.convert(model)
    atomic_write_bytes(path, flatbuffer)
    float_size = len(tflite.convert_float(model)) if float_baseline else None
    return dict(size=len(flatbuffer), float_size=float_size, ops=tflite.op_counts(flatbuffer),
                binary_op="LceBconv2d", fallbacks=tflite.fallbacks(model, flatbuffer))


def _write_openvino(model: tf.keras.Model, path: Path, float_baseline: bool) -> dict:
    import tempfile

    from zoo import openvino_ir

    size = openvino_ir.save(openvino_ir.convert(model), path)
    written = openvino_ir.read(path)  # the file is checked, not the model in memory
    float_size = None
    if float_baseline:
        with tempfile.TemporaryDirectory() as folder:
            float_size = openvino_ir.save(openvino_ir.convert(model, binary=False), Path(folder) / "float.xml")
    return dict(size=size, float_size=float_size, ops=openvino_ir.op_counts(written), binary_op=openvino_ir.BINARY_OP,
                fallbacks=openvino_ir.fallbacks(model, written))
