"""Training-step time of Group-Net ResNet-18 with 1 and 5 bases, and of Bi-Real Net 18.

Measures, in one run and on the same batch, the mean time of one training step (a
`tf.function` forward + backward + Adam update) after warm-up steps, for
GroupNetResNet18 at K=1 and K=5 and for BiRealNet18, and prints one table with
ms/step, images/s and the ratios K5/K1 (target: at most 1.1 x K = 5.5, i.e. the fused
grouped convolutions cost no more than 10 % over K separate networks) and
GroupNet-K1/BiReal. Writes benchmarks/results/groupnet_speed.json (atomically).

    .venv/bin/python benchmarks/groupnet_speed.py --image-size 224 --batch-size 8 --steps 10

On CPU, Keras runs grouped convolutions (K > 1) through XLA (`jit_compile`), as
TensorFlow has no grouped CPU convolution kernel; the warm-up steps absorb the
tracing and compilation. Timings on a shared machine include its other load.
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import zoo  # noqa: E402

TARGET_FACTOR = 1.1  # K5 / K1 at most 1.1 x K
MODELS = [  # (label, constructor, keyword arguments)
    ("GroupNetResNet18 K=1", zoo.GroupNetResNet18, dict(num_bases=1)),
    ("GroupNetResNet18 K=5", zoo.GroupNetResNet18, dict(num_bases=5)),
    ("BiRealNet18", zoo.BiRealNet18, dict()),
]


def step_times(model: tf.keras.Model, x: tf.Tensor, y: tf.Tensor, warmup: int, steps: int):
    """Seconds of each of `steps` training steps, after `warmup` untimed ones."""
    optimizer = tf.keras.optimizers.Adam(1e-3)
    loss_fn = tf.keras.losses.SparseCategoricalCrossentropy()

    @tf.function
    def train_step(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    for _ in range(warmup):
        train_step(x, y).numpy()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        train_step(x, y).numpy()
        times.append(time.perf_counter() - start)
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--steps", type=int, default=10, help="timed steps per model")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps per model")
    parser.add_argument("--out", default="benchmarks/results/groupnet_speed.json")
    args = parser.parse_args()
    if min(args.batch_size, args.steps, args.warmup + 1) < 1 or args.image_size < 32:
        parser.error("--batch-size and --steps must be >= 1, --warmup >= 0, --image-size >= 32")

    shape = (args.image_size, args.image_size, 3)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(0, 255, (args.batch_size, *shape)).astype("float32"))
    y = tf.constant(rng.integers(0, 1000, args.batch_size))
    rows = []
    for label, constructor, kwargs in MODELS:
        tf.keras.utils.set_random_seed(0)
        model = constructor(input_shape=shape, **kwargs)
        times = step_times(model, x, y, args.warmup, args.steps)
        mean = statistics.mean(times)
        rows.append({
            "model": label,
            "ms_per_step": 1e3 * mean,
            "ms_std": 1e3 * (statistics.stdev(times) if len(times) > 1 else 0.0),
            "images_per_second": args.batch_size / mean,
            "params": model.count_params(),
        })
        print(f"{label}: {1e3 * mean:.1f} ms/step", flush=True)
        del model
        tf.keras.backend.clear_session()

    ms = {row["model"]: row["ms_per_step"] for row in rows}
    k5_over_k1 = ms["GroupNetResNet18 K=5"] / ms["GroupNetResNet18 K=1"]
    result = {
        "batch_size": args.batch_size,
        "image_size": args.image_size,
        "warmup_steps": args.warmup,
        "timed_steps": args.steps,
        "step": "tf.function forward + backward + Adam update, same batch for every model",
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.processor() or platform.system()}",
        "tensorflow": tf.__version__,
        "python": sys.version.split()[0],
        "rows": rows,
        "ratios": {
            "groupnet_k5_over_k1": k5_over_k1,
            "groupnet_k1_over_bireal": ms["GroupNetResNet18 K=1"] / ms["BiRealNet18"],
        },
        "target": {"k5_over_k1_at_most": TARGET_FACTOR * 5, "met": k5_over_k1 <= TARGET_FACTOR * 5},
    }
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    tmp.replace(out)
    print(table(result))
    print(f"written to {out}")
    return 0


def table(result: dict) -> str:
    """The measurements and ratios as a Markdown table."""
    lines = [
        f"Training step, batch {result['batch_size']}, {result['image_size']}x"
        f"{result['image_size']}, mean of {result['timed_steps']} steps after "
        f"{result['warmup_steps']} warm-up ({result['machine']})",
        "",
        "| model | ms/step | +- | images/s | params |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [
        f"| {r['model']} | {r['ms_per_step']:.1f} | {r['ms_std']:.1f} | "
        f"{r['images_per_second']:.1f} | {r['params']:,} |"
        for r in result["rows"]
    ]
    ratios, target = result["ratios"], result["target"]
    lines += [
        "",
        f"GroupNet K5 / K1:       {ratios['groupnet_k5_over_k1']:.2f}  (target <= "
        f"{target['k5_over_k1_at_most']:.1f}: {'met' if target['met'] else 'NOT met'})",
        f"GroupNet K1 / Bi-Real:  {ratios['groupnet_k1_over_bireal']:.2f}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
