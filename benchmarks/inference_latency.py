"""Inference latency per model: Keras, float TFLite and Larq Compute Engine, side by side.

For every registered model (or `--models`), at its default input and batch 1, in one
run and interleaved (see common.py): Keras (`tf.function`, TensorFlow's own threads),
the plain TensorFlow Lite conversion (float weights, quantizers as float ops) and the
Larq Compute Engine conversion (`LceBconv2d`), the two TFLite files with 1 and 2
interpreter threads. Each row also gives the model's multiply-accumulates per second
(BOPs + FLOPs over the latency).

A kernel table measures the machine's side of it: one 3x3 convolution (256 -> 256
channels, 14x14, batch 1) as an LCE binary convolution and as a float TFLite
convolution, in multiply-accumulates per second, beside a float32 matrix product
(NumPy's BLAS, all cores): how far the binary kernel is from what the float units do.

    .venv/bin/python benchmarks/inference_latency.py
    .venv/bin/python benchmarks/inference_latency.py --models BiRealNet20 IRNetResNet20 --steps 3 --rounds 2

Prints the tables and writes benchmarks/results/inference_latency.json.
"""
import argparse
import sys
import time

import numpy as np

from common import interleaved, median, table, write_result

import larq as lq  # noqa: E402
import tensorflow as tf  # noqa: E402

THREADS = (1, 2)


def tflite_runner(flatbuffer: bytes, x: np.ndarray, threads: int, lce: bool):
    """A call that runs the file once on `x` (set input, invoke, read output)."""
    if lce:
        from larq_compute_engine.tflite.python.interpreter import Interpreter

        interpreter = Interpreter(flatbuffer, num_threads=threads)
        return lambda: interpreter.predict(x)
    interpreter = tf.lite.Interpreter(model_content=flatbuffer, num_threads=threads)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0]["index"], interpreter.get_output_details()[0]["index"]

    def run():
        interpreter.set_tensor(inp, x)
        interpreter.invoke()
        return interpreter.get_tensor(out)

    return run


def contenders(model: tf.keras.Model, x: np.ndarray, files: dict) -> dict:
    """Label -> call, for Keras and the TFLite files (label -> (bytes, is LCE)) at each thread count."""
    keras = tf.function(lambda v: model(v, training=False))
    runs = {"Keras": lambda: keras(x).numpy()}
    for label, (flatbuffer, lce) in files.items():
        for threads in THREADS:
            runs[f"{label}, {threads} thread{'s' * (threads > 1)}"] = tflite_runner(flatbuffer, x, threads, lce)
    return runs


def model_rows(names, args) -> list:
    import zoo
    from zoo import tflite

    rows = []
    for name in names:
        spec = zoo.get_model_spec(name)
        tf.keras.utils.set_random_seed(0)
        model = spec.build()
        cost = zoo.complexity(model)
        x = np.random.default_rng(0).uniform(0, 255, (1, *spec.default_input_shape)).astype("float32")
        lce = tflite.convert(model)
        files = {"float TFLite": (tflite.convert_float(model), False), "LCE": (lce, True)}
        times = interleaved(contenders(model, x, files), args.warmup, args.steps, args.rounds)
        macs = cost.bops + cost.flops
        converted = {"lce_bconv2d": tflite.op_counts(lce)["LceBconv2d"], "fallbacks": list(tflite.fallbacks(model, lce))}
        for label, seconds in times.items():
            latency = median(seconds)
            rows.append({"model": name, "input": "x".join(map(str, spec.default_input_shape)), "runtime": label,
                         "ms": 1e3 * latency, "bops": cost.bops, "flops": cost.flops,
                         "gmacs_per_second": macs / latency / 1e9, **converted})
        print(f"{name}: " + ", ".join(f"{r['runtime']} {r['ms']:.1f} ms" for r in rows if r["model"] == name), flush=True)
        tf.keras.backend.clear_session()
    return rows


def kernel_rows(args) -> list:
    """One 3x3 conv as an LCE binary conv and as a float conv; a float32 GEMM."""
    from zoo import tflite

    size, channels = 14, 256
    inputs = tf.keras.Input((size, size, channels))
    binary = tf.keras.Model(inputs, lq.layers.QuantConv2D(
        channels, 3, padding="same", pad_values=1.0, use_bias=False,
        input_quantizer="ste_sign", kernel_quantizer="ste_sign", kernel_constraint="weight_clip")(inputs))
    real = tf.keras.Model(inputs, tf.keras.layers.Conv2D(channels, 3, padding="same", use_bias=False)(inputs))
    macs = size * size * 9 * channels * channels
    x = np.random.default_rng(0).normal(size=(1, size, size, channels)).astype("float32")
    runs = {}
    for threads in THREADS:
        runs[f"binary 3x3 conv (LCE LceBconv2d), {threads} thread(s)"] = tflite_runner(tflite.convert(binary), x, threads, True)
        runs[f"float 3x3 conv (TFLite CONV_2D), {threads} thread(s)"] = tflite_runner(tflite.convert_float(real), x, threads, False)
    n = 1024
    a, b = np.ones((n, n), np.float32), np.ones((n, n), np.float32)
    runs["float32 GEMM 1024x1024 (NumPy BLAS, all cores)"] = lambda: a @ b
    times = interleaved(runs, args.warmup, args.steps * 4, args.rounds)
    rows = []
    for label, seconds in times.items():
        work = n ** 3 if "GEMM" in label else macs
        rows.append({"kernel": label, "macs": work, "us": 1e6 * median(seconds),
                     "gmacs_per_second": work / median(seconds) / 1e9})
    return rows


def main() -> int:
    import zoo

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="*", default=[s.name for s in zoo.list_models()])
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5, help="timed runs per contender and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if min(args.steps, args.rounds) < 1 or args.warmup < 0:
        parser.error("--steps and --rounds must be >= 1, --warmup >= 0")
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


def render(result: dict) -> str:
    """One row per model (latency of each runtime, LCE against float TFLite); the kernels."""
    by_model = {}
    for r in result["models"]:
        by_model.setdefault((r["model"], r["input"]), {})[r["runtime"]] = r
    runtimes = list(next(iter(by_model.values())))
    rows = []
    for (model, shape), runs in by_model.items():
        speedups = [runs[f"float TFLite, {t}"]["ms"] / runs[f"LCE, {t}"]["ms"] for t in ("1 thread", "2 threads")]
        lce = runs["LCE, 1 thread"]
        converted = f"{lce['lce_bconv2d']}, fell back: {', '.join(lce['fallbacks']) or 'none'}" if "fallbacks" in lce else "-"
        rows.append([model, shape, converted, *(f"{runs[k]['ms']:.1f}" for k in runtimes),
                     " / ".join(f"{x:.2f}x" for x in speedups),
                     f"{runs['LCE, 2 threads']['gmacs_per_second']:.1f}",
                     f"{runs['float TFLite, 2 threads']['gmacs_per_second']:.1f}"])
    kernels = [[k["kernel"], f"{k['macs']:.3g}", f"{k['us']:.0f}", f"{k['gmacs_per_second']:.2f}"]
               for k in result["kernels"]]
    return "\n".join([
        "Latency in ms at batch 1; LCE's speed-up over float TFLite with 1 / 2 threads (below 1x: "
        "slower); GMAC/s are the model's BOPs + FLOPs over the 2-thread latency.",
        "",
        table(["model", "input", "LceBconv2d", *(f"{k} (ms)" for k in runtimes), "LCE speed-up", "GMAC/s LCE",
               "GMAC/s float TFLite"], rows),
        "",
        table(["kernel", "MACs", "us", "GMAC/s"], kernels),
    ])


if __name__ == "__main__":
    sys.exit(main())
