"""OpenVINO export: every binary convolution an OpenVINO `BinaryConvolution`.

On x86, Larq Compute Engine's binary kernels are slower than float ones (its optimized
kernels target 64-bit ARM); OpenVINO's CPU plugin runs `BinaryConvolution` (opset1,
mode "xnor-popcount") with a JIT kernel that uses AVX-512 `vpopcnt` where the CPU has
it. `convert(model)` builds the OpenVINO model of a zoo (Larq) model:

- the model is traced as a `tf.function` in which each binary convolution (a layer
  `zoo.complexity` counts binary MACs for) is a plain convolution of its
  *unquantized* input with a kernel that is an extra input of the function, one per
  group (a Group-Net fused layer has one per base); everything else runs as in Keras;
- OpenVINO's TensorFlow frontend converts that function (the float part: stem,
  shortcuts, batch norm, additions, heads), moving its NHWC transposes out of the way;
- each of those convolutions, found through its kernel input, is replaced by
  `FakeQuantize` (two levels: the sign, with sign(0) = +1 as in Larq) ->
  `BinaryConvolution` (the kernel's signs as `u1`, bits packed least-significant
  first; padding with the layer's `pad_values`) -> `Multiply` by the kernel's
  per-output-channel scale (Bi-Real's mean |W|, Libra-PB's power of two, Group-Net's
  per-base mean |W|).

A binary layer that cannot be expressed so (an input quantizer that is not a sign, a
kernel that is not a per-channel scale times signs, zero padding of a dilated
convolution) stays a float convolution and is named in `fallbacks`. With
`binary=False` the result is the float twin: the same network with every binary
convolution a float convolution of its real kernel and input (no signs).

The OpenVINO package is imported only here, on first use; without it every function
raises one line saying how to install it. OpenVINO's telemetry is kept out of the
process (its package is never imported).
"""
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import larq as lq
import numpy as np
import tensorflow as tf

from zoo import stack
from zoo.complexity import binary_convolutions, binary_layers

BINARY_OP = "BinaryConvolution"
PRECISIONS = ("auto", "f32", "bf16")
# The largest float32 below zero that is not 0 for the CPU (TensorFlow flushes
# denormals to zero): FakeQuantize maps x <= threshold to -1, so sign(0) = +1.
THRESHOLD = -float(np.finfo(np.float32).tiny)
_SIGN_PROBE = np.array([-2.0, -0.5, -1e-3, 0.0, 1e-3, 0.5, 2.0], np.float32)


def openvino():
    """The `openvino` module, without its telemetry; a one-line error if it is missing."""
    # OpenVINO's converter reports usage through the optional openvino-telemetry
    # package, which writes under the home folder and waits on the network; a None
    # entry makes its import fail, and the converter then uses its own stub.
    sys.modules.setdefault("openvino_telemetry", None)
    try:
        import openvino as ov
    except ImportError as error:
        raise ImportError(
            f"OpenVINO is not installed ({error}); install the zoo's openvino extra: "
            "pip install -c constraints.txt -e '.[openvino]' (make install does)."
        ) from None
    return ov


def resolve_precision(precision: str = "auto") -> str:
    """The float part's inference precision: "f32" or "bf16".

    "auto" is bf16 on a CPU with AMX (Intel's matrix units, where OpenVINO's bf16 float
    part was measured faster than f32) and f32 elsewhere: with AVX-512 BF16 alone it
    was measured slower (benchmarks/inference_latency.py).

    Raises:
        ValueError: an unknown precision, or bf16 on a CPU that OpenVINO cannot run it on.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}; got {precision!r}.")
    if precision == "auto":
        return "bf16" if "amx_bf16" in stack.cpu_flags() else "f32"
    if precision == "bf16" and "BF16" not in openvino().Core().get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        raise ValueError("precision='bf16' needs a CPU with AVX-512 BF16 or AMX; this one has neither: use 'f32'.")
    return precision


def _groups(layer) -> List[Tuple[int, int]]:
    """The dilation rate (2 integers) of each group of a convolution."""
    if getattr(layer, "group_dilations", None):
        return [(d, d) for d in layer.group_dilations]
    return [tuple(layer.dilation_rate)] * getattr(layer, "groups", 1)


def _signs_and_scale(layer) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """(kernel signs >= 0 as bool, scale per output channel) of a binary layer, or None
    if its quantized kernel is not a per-channel scale times signs, or its input
    quantizer not a sign (sign(0) = +1)."""
    if not isinstance(layer, lq.layers.QuantConv2D) or layer.input_quantizer is None:
        return None
    signs = layer.input_quantizer(tf.constant(_SIGN_PROBE)).numpy()
    if not np.array_equal(signs, np.where(_SIGN_PROBE >= 0, 1.0, -1.0)):
        return None
    with lq.context.quantized_scope(True):
        kernel = tf.convert_to_tensor(layer.kernel).numpy()
    scale = np.abs(kernel).max(axis=(0, 1, 2))
    if not np.allclose(np.abs(kernel), scale, rtol=1e-6, atol=0):
        return None
    if max(max(d) for d in _groups(layer)) > 1 and layer.pad_values == 0 and layer.padding == "same":
        return None  # OpenVINO's CPU kernel refuses large pads; only +-1 can be padded before binarizing
    return kernel >= 0, scale.astype(np.float32)


def _run(model: tf.keras.Model, inputs: list, replaced: Dict[int, list]) -> list:
    """`model`'s functional graph on `inputs` (as Keras' own `_run_internal_graph`), with
    every layer in `replaced` (by id) a plain convolution of its unquantized input with
    the given kernels, one per group."""
    tensors, usage = {}, model._tensor_usage_count
    for x, y in zip(model.inputs, inputs):
        tensors[str(id(x))] = [y] * usage[str(id(x))]
    for depth in sorted(model._nodes_by_depth, reverse=True):
        for node in model._nodes_by_depth[depth]:
            if node.is_input:
                continue
            args, kwargs = node.map_arguments(tensors)
            layer = node.layer
            if isinstance(layer, tf.keras.Model):
                outputs = _run(layer, tf.nest.flatten(args), replaced)
            elif id(layer) in replaced:
                outputs = [_plain_convolution(layer, args[0], replaced[id(layer)])]
            else:
                outputs = tf.nest.flatten(layer(*args, **kwargs))
            for key, y in zip(node.flat_output_ids, outputs):
                tensors[key] = [y] * usage[key]
    return [tensors[str(id(x))].pop() for x in model.outputs]


def _plain_convolution(layer, x: tf.Tensor, kernels: list) -> tf.Tensor:
    parts = tf.split(x, len(kernels), axis=-1) if len(kernels) > 1 else [x]
    padding = layer.padding.upper()
    y = [tf.nn.convolution(part, kernel, strides=layer.strides, padding=padding, dilations=dilation)
         for part, kernel, dilation in zip(parts, kernels, _groups(layer))]
    y = tf.concat(y, axis=-1) if len(y) > 1 else y[0]
    if layer.use_bias:
        y = tf.nn.bias_add(y, layer.bias)
    return layer.activation(y) if layer.activation is not None else y


def _kernel_name(index: int, group: int) -> str:
    return f"zoo_binary_kernel_{index}_{group}"


def convert(model: tf.keras.Model, binary: bool = True):
    """The OpenVINO model (`openvino.Model`) of a Keras (Larq) model, batch 1.

    Arguments:
        model: the Keras model (a zoo model, or any functional model of Larq layers).
        binary: True (default): each binary convolution a `BinaryConvolution` (see the
            module's docstring); False: the float twin, each binary convolution a
            float convolution of its real input and kernel.

    Returns:
        An `openvino.Model` with the model's inputs (NHWC, float32, batch 1, named as
        Keras names them) and outputs in Keras' order. Its `BinaryConvolution` nodes are
        named `<layer>/BinaryConvolution_<group>`.

    Raises:
        ImportError: OpenVINO is not installed.
        ValueError: the model has an operation OpenVINO cannot convert (e.g. TensorFlow's
            combined non-maximum suppression: export a detector with `decode=False`).
    """
    ov = openvino()
    layers = [layer for layer, _ in binary_layers(model)]
    plans = {id(layer): _signs_and_scale(layer) if binary else None for layer in layers}
    converted = [layer for layer in layers if plans[id(layer)] is not None or not binary]
    specs = [[tf.TensorSpec((*layer.kernel.shape[:3], layer.kernel.shape[3] // len(_groups(layer))), tf.float32,
                            name=_kernel_name(i, g)) for g in range(len(_groups(layer)))]
             for i, layer in enumerate(converted)]
    inputs = [tf.TensorSpec((1, *x.shape[1:]), x.dtype, name=f"zoo_input_{i}") for i, x in enumerate(model.inputs)]

    def graph(*args):
        images, kernels = list(args[:len(inputs)]), list(args[len(inputs):])
        replaced = {}
        for layer, group_specs in zip(converted, specs):
            replaced[id(layer)], kernels = kernels[:len(group_specs)], kernels[len(group_specs):]
        return _run(model, images, replaced)

    function = tf.function(graph).get_concrete_function(*inputs, *(s for group in specs for s in group))
    try:
        result = ov.convert_model(function, share_weights=False)
    except Exception as error:  # OpConversionFailure: the report names the operations
        lines = [line.strip() for line in str(error).splitlines() if "operations:" in line]
        raise ValueError(f"OpenVINO cannot convert {model.name}: {' '.join(lines) or error}") from None
    parameters = {p.get_friendly_name(): p for p in result.get_parameters()}
    for i, layer in enumerate(converted):
        for g in range(len(specs[i])):
            for convolution in _convolutions(parameters[_kernel_name(i, g)]):  # one per call of the layer
                _replace(ov, convolution, layer, g, plans[id(layer)])
    for parameter, x in zip((parameters[s.name] for s in inputs), model.inputs):
        parameter.output(0).get_tensor().set_names({x.name.split(":")[0]})
    # The function's outputs; OpenVINO also makes results of the custom gradients' dangling outputs.
    results = {r.get_friendly_name(): r for r in result.get_results()}
    results = [results[t.name] for t in function.outputs]
    for output, name in zip(results, model.output_names):
        output.output(0).get_tensor().set_names({name})
    return ov.Model(results, [parameters[s.name] for s in inputs], model.name)


def _convolutions(node) -> list:
    """The convolutions that read `node` (a kernel input), through the frontend's
    HWIO -> OIHW transposes."""
    found = []
    for target in node.output(0).get_target_inputs():
        reader = target.get_node()
        found += [reader] if reader.get_type_name() == "Convolution" else _convolutions(reader)
    return found


def _replace(ov, convolution, layer, group: int, plan) -> None:
    """Replaces a convolution of `layer`'s group `group` by FakeQuantize ->
    BinaryConvolution -> Multiply (`plan` = (signs, scale)), or gives it the layer's
    real kernel slice (`plan` None: the float twin)."""
    from openvino import opset1
    from openvino import opset13 as op

    n = layer.kernel.shape[-1] // len(_groups(layer))
    channels = slice(group * n, (group + 1) * n)
    if plan is None:
        kernel = layer.kernel.numpy()[..., channels].transpose(3, 2, 0, 1)
        convolution.input(1).replace_source_output(op.constant(kernel.astype(np.float32)).output(0))
        return
    signs, scale = plan
    bits = signs[..., channels].transpose(3, 2, 0, 1)  # OIHW
    packed = ov.Tensor(ov.Type.u1, ov.Shape(list(bits.shape)))
    packed.data[:] = np.packbits(bits.reshape(-1), bitorder="little")
    attributes = convolution.get_attributes()
    x, begin, end = convolution.input_value(0), list(attributes["pads_begin"]), list(attributes["pads_end"])
    if max(attributes["dilations"]) > 1 and max(begin + end) > 0:
        # The CPU kernel refuses pads wider than its unrolled block (atrous rates):
        # pad with +-1 before binarizing instead (Group-Net pads with +1).
        x = op.pad(x, [0, 0, *begin], [0, 0, *end], "constant", np.float32(layer.pad_values)).output(0)
        begin = end = [0, 0]
    if _after_transpose(x):
        # OpenVINO 2026.4's CPU plugin crashes at inference when a binarizing
        # FakeQuantize reads a Transpose (through elementwise ops); an identity
        # depthwise 1x1 convolution between them is exact and avoids it.
        channels_in = x.get_partial_shape()[1].get_length()
        x = op.group_convolution(x, op.constant(np.ones((channels_in, 1, 1, 1, 1), np.float32)),
                                 [1, 1], [0, 0], [0, 0], [1, 1]).output(0)
    threshold = op.constant(np.float32(THRESHOLD))
    signs_of_x = op.fake_quantize(x, threshold, threshold, op.constant(np.float32(0)), op.constant(np.float32(1)), 2,
                                  name=f"{layer.name}/Sign_{group}")
    y = opset1.binary_convolution(
        signs_of_x, ov.op.Constant(packed, shared_memory=False), attributes["strides"], begin, end,
        attributes["dilations"], "xnor-popcount", float(layer.pad_values), name=f"{layer.name}/{BINARY_OP}_{group}",
    )
    y = op.multiply(y, op.constant(scale[channels].reshape(1, -1, 1, 1)), name=f"{layer.name}/Scale_{group}")
    convolution.output(0).replace(y.output(0))


def _after_transpose(x) -> bool:
    """Whether `x` comes from a Transpose, through ops with one non-constant input."""
    node = x.get_node()
    while node.get_type_name() != "Transpose":
        inputs = [v for v in node.input_values() if v.get_node().get_type_name() != "Constant"]
        if len(inputs) != 1 or node.get_type_name() in ("Parameter", "Convolution", "GroupConvolution"):
            return False
        node = inputs[0].get_node()
    return True


def op_counts(ov_model) -> Counter:
    """How many operations of each type (e.g. "BinaryConvolution") the model holds."""
    return Counter(node.get_type_name() for node in ov_model.get_ordered_ops())


def fallbacks(model: tf.keras.Model, ov_model) -> Tuple[str, ...]:
    """The binary layers of `model` with fewer `BinaryConvolution` ops in `ov_model` than
    they have groups times calls (by the ops' names, `<layer>/BinaryConvolution_<group>`)."""
    found = Counter(node.get_friendly_name().rsplit("/", 1)[0] for node in ov_model.get_ordered_ops()
                    if node.get_type_name() == BINARY_OP)
    return tuple(name for name, n in binary_convolutions(model) if found[name] < n)


def save(ov_model, path) -> int:
    """Writes the IR, `path` (.xml) and its weights (.bin beside it), each atomically.

    Returns:
        The size of both files together, in bytes.
    """
    import tempfile

    ov = openvino()
    path = Path(path)
    if path.suffix != ".xml":
        raise ValueError(f"an OpenVINO IR is written to a .xml file (with its .bin beside it); got {path}.")
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=path.parent, prefix=f".{path.stem}.") as staging:
        staged = Path(staging) / path.name
        ov.save_model(ov_model, str(staged), compress_to_fp16=False)
        os.replace(staged.with_suffix(".bin"), path.with_suffix(".bin"))
        os.replace(staged, path)
    return path.stat().st_size + path.with_suffix(".bin").stat().st_size


def read(path):
    """The `openvino.Model` of an IR file (.xml)."""
    return openvino().Core().read_model(str(path))


def compile_model(ov_model, num_threads: Optional[int] = 1, precision: str = "auto", profile: bool = False):
    """The model compiled for the CPU, latency-oriented.

    Arguments:
        ov_model: an `openvino.Model`, or the path of an IR (.xml).
        num_threads: inference threads; None or 0: OpenVINO's choice.
        precision: the float part's precision, "auto", "f32" or "bf16" (`resolve_precision`).
        profile: collect per-node performance counters (`time_shares`).

    Returns:
        An `openvino.CompiledModel`.

    Raises:
        ValueError: OpenVINO's CPU plugin cannot compile the model on this CPU.
    """
    ov = openvino()
    config = {"INFERENCE_PRECISION_HINT": resolve_precision(precision), "PERFORMANCE_HINT": "LATENCY",
              "INFERENCE_NUM_THREADS": int(num_threads or 0), "PERF_COUNT": bool(profile)}
    source = str(ov_model) if isinstance(ov_model, (str, Path)) else ov_model
    try:
        return ov.Core().compile_model(source, "CPU", config)
    except RuntimeError as error:  # e.g. a CPU whose plugin has no BinaryConvolution kernel
        reason = next((line.strip() for line in str(error).splitlines() if line.strip().startswith(("Check", "["))),
                      str(error).strip().splitlines()[-1])
        raise ValueError(f"OpenVINO cannot run this model on this CPU ({reason}); export with --format lce "
                         "(Larq Compute Engine) instead.") from None


def time_shares(compiled, x: np.ndarray, runs: int = 20) -> Dict[str, float]:
    """Where the time goes: per-node performance counters over `runs` inferences of `x`.

    Arguments:
        compiled: a model compiled with `compile_model(..., profile=True)`.
        x: one input batch.
        runs: inferences to sum the counters over.

    Returns:
        `{"binary": share, "float": share}` of the nodes' summed real time: binary is
        the `BinaryConvolution` nodes and the binarizing `FakeQuantize` nodes, float all
        others (the float part, layout reorders included).
    """
    request = compiled.create_infer_request()
    total = Counter()
    for _ in range(runs):
        request.infer([x])
        for info in request.profiling_info:
            kind = "binary" if info.node_type in (BINARY_OP, "FakeQuantize") else "float"
            total[kind] += info.real_time.total_seconds()
    seconds = sum(total.values()) or 1.0
    return {kind: total[kind] / seconds for kind in ("binary", "float")}
