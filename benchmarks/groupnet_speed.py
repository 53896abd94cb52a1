"""Training-step time of Group-Net ResNet-18 with 1 and 5 bases, and of Bi-Real Net 18.

Measures, in one run, interleaved (see common.py) and on the same batch, the median
time of one training step (a `tf.function` forward + backward + Adam update) for
GroupNetResNet18 at K=1 and K=5 and for BiRealNet18, and prints one table with
ms/step, images/s and the ratios K5/K1 (target: at most 1.1 x K = 5.5, i.e. the fused
grouped convolutions cost no more than 10 % over K separate networks) and
GroupNet-K1/BiReal. Writes benchmarks/results/groupnet_speed.json.

    .venv/bin/python benchmarks/groupnet_speed.py --image-size 224 --batch-size 8 --steps 5 --rounds 2

Group-Net's fused bases run as one plain convolution per base (`GroupedQuantConv2D`).
"""
import argparse
import statistics
import sys

import numpy as np
import tensorflow as tf  # noqa: E402
from common import interleaved, median, parse_timed, table, timing_arguments, train_step, write_result

import zoo  # noqa: E402

TARGET_FACTOR = 1.1  # K5 / K1 at most 1.1 x K
MODELS = [  # (label, constructor, keyword arguments)
    ("GroupNetResNet18 K=1", zoo.GroupNetResNet18, dict(num_bases=1)),
    ("GroupNetResNet18 K=5", zoo.GroupNetResNet18, dict(num_bases=5)),
    ("BiRealNet18", zoo.BiRealNet18, dict()),
]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--image-size", type=int, default=224)
    timing_arguments(parser, warmup=2, steps=5, rounds=2)
    args = parse_timed(parser, batch_size="--batch-size")
    if args.image_size < 32:
        parser.error(f"--image-size must be >= 32, not {args.image_size}")

    shape = (args.image_size, args.image_size, 3)
    rng = np.random.default_rng(0)
    x = tf.constant(rng.uniform(0, 255, (args.batch_size, *shape)).astype("float32"))
    y = tf.constant(rng.integers(0, 1000, args.batch_size))
    steps, params = {}, {}
    for label, constructor, kwargs in MODELS:
        tf.keras.utils.set_random_seed(0)
        model = constructor(input_shape=shape, **kwargs)
        steps[label], params[label] = train_step(model, x, y), model.count_params()
    times = interleaved(steps, args.warmup, args.steps, args.rounds)
    rows = [{
        "model": label,
        "ms_per_step": 1e3 * median(times[label]),
        "ms_std": 1e3 * statistics.stdev(times[label]) if len(times[label]) > 1 else 0.0,
        "images_per_second": args.batch_size / median(times[label]),
        "params": params[label],
    } for label in steps]
    ms = {row["model"]: row["ms_per_step"] for row in rows}
    k5_over_k1 = ms["GroupNetResNet18 K=5"] / ms["GroupNetResNet18 K=1"]
    result = {
        "batch_size": args.batch_size,
        "image_size": args.image_size,
        "warmup_steps": args.warmup,
        "timed_steps": args.steps * args.rounds,
        "step": "tf.function forward + backward + Adam update, same batch for every model",
        "rows": rows,
        "ratios": {
            "groupnet_k5_over_k1": k5_over_k1,
            "groupnet_k1_over_bireal": ms["GroupNetResNet18 K=1"] / ms["BiRealNet18"],
        },
        "target": {"k5_over_k1_at_most": TARGET_FACTOR * 5, "met": k5_over_k1 <= TARGET_FACTOR * 5},
    }
    path = write_result("groupnet_speed", result)
    print(render(result))
    print(f"written to {path}")
    return 0


def render(result: dict) -> str:
    """The measurements and ratios as a Markdown table."""
    rows = [[r["model"], f"{r['ms_per_step']:.1f}", f"{r['ms_std']:.1f}", f"{r['images_per_second']:.1f}",
             f"{r['params']:,}"] for r in result["rows"]]
    ratios, target = result["ratios"], result["target"]
    return "\n".join([
        f"Training step, batch {result['batch_size']}, {result['image_size']}x{result['image_size']}, "
        f"median of {result['timed_steps']} steps after {result['warmup_steps']} warm-up.",
        "",
        table(["model", "ms/step", "+-", "images/s", "params"], rows),
        "",
        f"GroupNet K5 / K1: {ratios['groupnet_k5_over_k1']:.2f} (target <= "
        f"{target['k5_over_k1_at_most']:.1f}: {'met' if target['met'] else 'NOT met'}); "
        f"GroupNet K1 / Bi-Real: {ratios['groupnet_k1_over_bireal']:.2f}.",
    ])


if __name__ == "__main__":
    sys.exit(main())
