"""Inference latency per runtime: Keras, float TFLite, LCE and OpenVINO, side by side.

For Bi-Real-18 at 224 and one model of every family at its default input (or
`--models`), at batch 1, in one run and interleaved (see common.py): Keras
(`tf.function`, TensorFlow's own threads), then with 1 and 2 threads each, every
file run through `zoo.deploy`:

- float TFLite: the plain TensorFlow Lite conversion (float weights, quantizers as
  float ops), XNNPACK;
- LCE: the Larq Compute Engine conversion (`LceBconv2d`);
- OpenVINO float twin, f32 and bf16: the same network with every binary convolution
  a float convolution of its real input (no signs), OpenVINO's float baseline;
- OpenVINO binary, f32 and bf16 float part: every binary convolution a
  `BinaryConvolution` (`zoo export --format openvino`).

bf16 rows are left out on a CPU where OpenVINO cannot run bf16. For the binary
OpenVINO model, OpenVINO's per-node performance counters give the share of time in
binary ops (`BinaryConvolution` and the binarizing `FakeQuantize`) against the float
part. A kernel table measures one 3x3 convolution (256 -> 256 channels, 14x14) as
an LCE and an OpenVINO binary convolution and as a float TFLite convolution, beside a
float32 matrix product (NumPy's BLAS, all cores).

    .venv/bin/python benchmarks/inference_latency.py
    .venv/bin/python benchmarks/inference_latency.py --models BiRealNet20 --steps 3 --rounds 2

Prints the tables and writes benchmarks/results/inference_latency.json.
"""
import argparse
import sys
import tempfile
import time
from pathlib import Path

import larq as lq  # noqa: E402
import numpy as np
import tensorflow as tf  # noqa: E402
from common import interleaved, median, parse_timed, table, timing_arguments, write_result

THREADS = (1, 2)
MODELS = ("BiRealNet18", "IRNetResNet18", "GroupNetResNet18", "GroupNetFCN")
FLOAT_TFLITE, LCE, OV_FLOAT, OV_BINARY = "float TFLite", "LCE", "OpenVINO float twin", "OpenVINO binary"


def precisions() -> tuple:
    from zoo import openvino_ir

    try:
        openvino_ir.resolve_precision("bf16")
        return ("f32", "bf16")
    except ValueError:
        return ("f32",)


def files(model: tf.keras.Model, folder: Path) -> dict:
    """Runtime -> the file it runs, written for `model` in `folder`."""
    from zoo import openvino_ir, tflite

    paths = {FLOAT_TFLITE: folder / "float.tflite", LCE: folder / "lce.tflite",
             OV_FLOAT: folder / "float.xml", OV_BINARY: folder / "binary.xml"}
    paths[FLOAT_TFLITE].write_bytes(tflite.convert_float(model))
    paths[LCE].write_bytes(tflite.convert(model))
    openvino_ir.save(openvino_ir.convert(model, binary=False), paths[OV_FLOAT])
    openvino_ir.save(openvino_ir.convert(model), paths[OV_BINARY])
    return paths


def contenders(model: tf.keras.Model, x: np.ndarray, paths: dict) -> dict:
    """Label -> call: Keras, and every file at each thread count (and OpenVINO precision)."""
    import zoo

    keras = tf.function(lambda v: model(v, training=False))
    runs = {"Keras": lambda: keras(x)}
    for runtime, path in paths.items():
        for precision in precisions() if path.suffix == ".xml" else (None,):
            for threads in THREADS:
                deployed = zoo.deploy(path, threads, precision or "auto")
                runs[label(runtime, precision, threads)] = lambda run=deployed.run: run(x)
    return runs


def label(runtime: str, precision, threads: int) -> str:
    return f"{runtime}{f' {precision}' if precision else ''}, {threads} thread{'s' * (threads > 1)}"


def model_rows(names, args) -> list:
    import zoo
    from zoo import openvino_ir, tflite
    from zoo.complexity import binary_convolutions

    rows = []
    for name in names:
        spec = zoo.get_model_spec(name)
        tf.keras.utils.set_random_seed(0)
        model = spec.build()
        cost = zoo.complexity(model)
        x = np.random.default_rng(0).uniform(0, 255, (1, *spec.default_input_shape)).astype("float32")
        with tempfile.TemporaryDirectory() as folder:
            paths = files(model, Path(folder))
            binary = openvino_ir.read(paths[OV_BINARY])
            converted = {
                "binary_convolutions": sum(n for _, n in binary_convolutions(model)),
                "lce_bconv2d": tflite.op_counts(paths[LCE].read_bytes())["LceBconv2d"],
                "binary_convolution_ops": openvino_ir.op_counts(binary)[openvino_ir.BINARY_OP],
                "fallbacks": sorted(set(tflite.fallbacks(model, paths[LCE].read_bytes()))
                                    | set(openvino_ir.fallbacks(model, binary))),
            }
            shares = {p: openvino_ir.time_shares(openvino_ir.compile_model(paths[OV_BINARY], 1, p, profile=True), x)
                      for p in precisions()}
            times = interleaved(contenders(model, x, paths), args.warmup, args.steps, args.rounds)
        macs = cost.bops + cost.flops
        for runtime, seconds in times.items():
            latency = median(seconds)
            rows.append({"model": name, "input": "x".join(map(str, spec.default_input_shape)), "runtime": runtime,
                         "ms": 1e3 * latency, "bops": cost.bops, "flops": cost.flops,
                         "gmacs_per_second": macs / latency / 1e9, **converted,
                         **({"binary_time_share": shares[runtime.split()[2].rstrip(",")]["binary"]}
                            if runtime.startswith(OV_BINARY) and runtime.endswith(" 1 thread") else {})})
        times = (f"{r['runtime']} {r['ms']:.1f} ms" for r in rows if r["model"] == name)
        print(f"{name}: " + ", ".join(times), flush=True)
        zoo.fused.clear_session()
    return rows


def kernel_rows(args) -> list:
    """One 3x3 conv as an LCE and an OpenVINO binary conv and as a float conv; a float32 GEMM."""
    import zoo
    from zoo import openvino_ir, tflite

    size, channels = 14, 256
    inputs = tf.keras.Input((size, size, channels))
    binary = tf.keras.Model(inputs, lq.layers.QuantConv2D(
        channels, 3, padding="same", pad_values=1.0, use_bias=False,
        input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip")(inputs))
    real = tf.keras.Model(inputs, tf.keras.layers.Conv2D(channels, 3, padding="same", use_bias=False)(inputs))
    macs = size * size * 9 * channels * channels
    x = np.random.default_rng(0).normal(size=(1, size, size, channels)).astype("float32")
    runs = {}
    with tempfile.TemporaryDirectory() as folder:
        xml = Path(folder) / "binary.xml"
        openvino_ir.save(openvino_ir.convert(binary), xml)
        for threads in THREADS:
            kernels = {"binary 3x3 conv (LCE LceBconv2d)": tflite.convert(binary),
                       "binary 3x3 conv (OpenVINO BinaryConvolution)": xml,
                       "float 3x3 conv (TFLite CONV_2D)": tflite.convert_float(real)}
            for kernel, source in kernels.items():
                runs[f"{kernel}, {threads} thread(s)"] = lambda run=zoo.deploy(source, threads, "f32").run: run(x)
        n = 1024
        a, b = np.ones((n, n), np.float32), np.ones((n, n), np.float32)
        runs["float32 GEMM 1024x1024 (NumPy BLAS, all cores)"] = lambda: a @ b
        times = interleaved(runs, args.warmup, args.steps * 4, args.rounds)
    rows = []
    for kernel, seconds in times.items():
        work = n ** 3 if "GEMM" in kernel else macs
        rows.append({"kernel": kernel, "macs": work, "us": 1e6 * median(seconds),
                     "gmacs_per_second": work / median(seconds) / 1e9})
    return rows


def main() -> int:
    import zoo

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=list(MODELS))
    timing_arguments(parser, warmup=2, steps=5, rounds=3)
    args = parse_timed(parser)
    start = time.time()
    result = {
        "what": "batch 1, default input, median latency over interleaved rounds",
        "warmup": args.warmup, "steps": args.steps, "rounds": args.rounds,
        "models": model_rows([zoo.get_model_spec(m).name for m in args.models], args),
        "kernels": kernel_rows(args),
    }
    result["seconds"] = time.time() - start
    path = write_result("inference_latency", result)
    print(render(result))
    print(f"written to {path}")
    return 0


def fastest(runs: dict, prefix: str, threads: int):
    """The fastest row of a runtime (over its precisions) at a thread count."""
    suffix = label("", None, threads)
    return min((r for k, r in runs.items() if k.startswith(prefix) and k.endswith(suffix)), key=lambda r: r["ms"])


def render(result: dict) -> str:
    """Per model: latency of each runtime at 1 and 2 threads, OpenVINO binary against the
    float runtimes, the share of time in binary ops; then the kernels."""
    by_model = {}
    for r in result["models"]:
        by_model.setdefault((r["model"], r["input"]), {})[r["runtime"]] = r
    runtimes = list(dict.fromkeys(k.rsplit(",", 1)[0] for runs in by_model.values() for k in runs))
    rows, summary = [], []
    for (model, shape), runs in by_model.items():
        for runtime in runtimes:
            cells = [runs.get(k) for k in (runtime, *(f"{runtime}{label('', None, t)}" for t in THREADS))]
            share = next((c["binary_time_share"] for c in cells if c and "binary_time_share" in c), None)
            rows.append([model, shape, runtime, *(f"{c['ms']:.1f}" if c else "" for c in cells),
                         f"{share:.0%}" if share is not None else ""])
        first = runs["Keras"]
        for threads in THREADS:
            binary = fastest(runs, OV_BINARY, threads)
            float_ov, lite = fastest(runs, OV_FLOAT, threads), fastest(runs, FLOAT_TFLITE, threads)
            summary.append([model, shape, threads, f"{binary['runtime'].split(',')[0]}: {binary['ms']:.2f} ms",
                            f"{lite['ms'] / binary['ms']:.1f}x", f"{float_ov['ms'] / binary['ms']:.2f}x",
                            f"{fastest(runs, LCE, threads)['ms'] / binary['ms']:.1f}x",
                            f"{first['binary_convolution_ops']} / {first['lce_bconv2d']} of "
                            f"{first['binary_convolutions']}, fell back: {', '.join(first['fallbacks']) or 'none'}"])
    kernels = [[k["kernel"], f"{k['macs']:.3g}", f"{k['us']:.0f}", f"{k['gmacs_per_second']:.2f}"]
               for k in result["kernels"]]
    return "\n".join([
        "Latency in ms at batch 1 (Keras uses TensorFlow's own threads); binary ops' share: of "
        "OpenVINO's per-node time, 1 thread, in `BinaryConvolution` and its binarizing `FakeQuantize`.",
        "",
        table(["model", "input", "runtime", "Keras", *(f"{t} thread{'s' * (t > 1)} (ms)" for t in THREADS),
               "binary ops' share"], rows),
        "",
        "OpenVINO binary (its faster float-part precision) against float TFLite, against the fastest "
        "OpenVINO float twin (f32 or bf16) and against LCE; and the binary convolutions converted "
        "(BinaryConvolution / LceBconv2d of the model's).",
        "",
        table(["model", "input", "threads", "OpenVINO binary", "vs float TFLite", "vs OpenVINO float",
               "vs LCE", "converted"], summary),
        "",
        table(["kernel", "MACs", "us", "GMAC/s"], kernels),
    ])


def figure(result: dict, plt):
    """Latency per runtime, one group of bars per model, 1 thread (log scale)."""
    by_model = {}
    for r in result["models"]:
        if r["runtime"] == "Keras" or r["runtime"].endswith(" 1 thread"):
            by_model.setdefault(r["model"], {})[r["runtime"].replace(", 1 thread", "")] = r["ms"]
    runtimes = list(dict.fromkeys(k for runs in by_model.values() for k in runs))
    fig, ax = plt.subplots(figsize=(8, 3.6))
    width = 0.8 / len(runtimes)
    for i, runtime in enumerate(runtimes):
        ax.bar([m + i * width for m in range(len(by_model))], [runs.get(runtime, 0) for runs in by_model.values()],
               width, label=runtime)
    ax.set_xticks([m + 0.4 - width / 2 for m in range(len(by_model))], list(by_model))
    ax.set_yscale("log")
    ax.set(ylabel="ms at batch 1, 1 thread (log)", title="Inference latency per runtime (Keras: TensorFlow's threads)")
    ax.grid(alpha=0.3, axis="y", which="both")
    ax.legend(fontsize=7, ncol=2)
    return fig


if __name__ == "__main__":
    sys.exit(main())
