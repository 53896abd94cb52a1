"""Training throughput, side by side: our models against their references.

Two comparisons, each timed in one run, interleaved (see common.py), same batch,
input and optimizer (Adam), a `tf.function` training step:

- BiRealNet18 (ours) against larq-zoo's `larq_zoo.literature.BiRealNet`;
  target: ours at least 0.95 x larq-zoo's images per second;
- IRNetResNet20 with IR-Net's quantizers (EDE activations, Libra-PB weights) and with
  EDE alone (sign weights), against the same network with larq's `ste_sign` for both;
- the training levers of issue 20 on BiRealNet20, IRNetResNet20 and GroupNetResNet20
  (K=5, and K=1 beside it), against the zoo as it trained before them
  (`zoo.fused.unfused()`: Larq's op-by-op quantizer backward passes and hardtanh,
  Group-Net's per-base convolutions) in float32: the fused backward passes (and
  Group-Net's native grouped convolution), each precision (`zoo.training.precision`),
  and both; target: BiRealNet20 at least 1.5x, timed as the zoo trains, Keras' train
  function as `fit` calls it on each batch (metrics included), at the recipe's batch; a
  plain `tf.function` step (forward, backward, Adam) beside it; and for BiRealNet20 and
  Group-Net K=5, fused in bfloat16 at twice the batch (images per second against the
  reference's; BiRealNet20's accuracy at that batch is `benchmarks/train_table.py batch`'s).

    .venv/bin/python benchmarks/train_throughput.py
    .venv/bin/python benchmarks/train_throughput.py --imagenet-batch 8 --steps 3 --rounds 2   # quick

Prints one table and writes benchmarks/results/train_throughput.json.
"""
import argparse
import contextlib
import sys

import numpy as np
import tensorflow as tf  # noqa: E402  (after common, which quiets TensorFlow's logging)
from common import (
    fit_step,
    interleaved,
    machine,
    median,
    parse_timed,
    table,
    timing_arguments,
    train_step,
    write_result,
)

TARGET = 0.95  # ours / reference, images per second
FASTER = 1.5  # issue 20: BiRealNet20's training steps, fused + best precision / as before


def levers(make, large_batch=None):
    """[(label, build, is_reference, batch)]: `make()` built as before (reference), fused,
    in each precision, at the group's batch (batch None); with `large_batch`, fused in
    mixed_bfloat16 at that batch too (its ratio is per image)."""
    from zoo.fused import unfused
    from zoo.training.precision import policy

    def build(precision, fused):
        def _build():
            with policy(precision), (contextlib.nullcontext() if fused else unfused()):
                return make()
        return _build

    return [(f"{'fused' if fused else 'as before'}, {precision}", build(precision, fused), not fused and
             precision == "float32", None) for precision in ("float32", "mixed_bfloat16") for fused in (False, True)
            ] + ([(f"fused, mixed_bfloat16, batch {large_batch}", build("mixed_bfloat16", True), False, large_batch)]
                 if large_batch else [])


def comparisons(args):
    """[(group, [(label, build, is_reference, batch)], input shape, batch size, classes,
    step)], a contender's batch None for the group's: `step(model, x, y)` makes the timed
    call, a plain `tf.function` training step (`common.train_step`), or Keras' train
    function as `fit` runs it (`common.fit_step`)."""
    import larq_zoo as lqz

    import zoo

    irnet20 = zoo.get_model_spec("IRNetResNet20").factory

    small, large = (28, 28, 1), 2 * args.small_batch
    def bireal20(large_batch=None):
        return levers(lambda: zoo.BiRealNet20(input_shape=small, num_classes=10), large_batch)
    return [
        ("Bi-Real Net 18", [
            ("larq-zoo BiRealNet", lambda: lqz.literature.BiRealNet(
                input_shape=(args.image_size, args.image_size, 3), num_classes=1000, weights=None), True, None),
            ("binary-zoo BiRealNet18", lambda: zoo.BiRealNet18(
                input_shape=(args.image_size, args.image_size, 3), num_classes=1000), False, None),
        ], (args.image_size, args.image_size, 3), args.imagenet_batch, 1000, train_step),
        ("IR-Net ResNet-20 quantizers", [
            ("ste_sign (larq), both", lambda: irnet20(
                input_shape=small, num_classes=10, libra_pb=False, ede=False).build(), True, None),
            ("EDE activations, sign weights", lambda: irnet20(
                input_shape=small, num_classes=10, libra_pb=False, ede=True).build(), False, None),
            ("EDE + Libra-PB (IR-Net)", lambda: zoo.IRNetResNet20(input_shape=small, num_classes=10), False, None),
        ], small, args.small_batch, 10, train_step),
        ("BiRealNet20 levers", bireal20(), small, args.small_batch, 10, train_step),
        ("BiRealNet20 levers, Keras fit step", bireal20(large), small, args.small_batch, 10, fit_step),
        ("IRNetResNet20 levers", levers(lambda: zoo.IRNetResNet20(input_shape=small, num_classes=10)),
         small, args.small_batch, 10, train_step),
        ("GroupNetResNet20 K=5 levers", levers(lambda: zoo.GroupNetResNet20(input_shape=small, num_classes=10),
                                               large), small, args.small_batch, 10, train_step),
        ("GroupNetResNet20 K=1 levers", levers(lambda: zoo.GroupNetResNet20(
            input_shape=small, num_classes=10, num_bases=1)), small, args.small_batch, 10, train_step),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image-size", type=int, default=224)
    parser.add_argument("--imagenet-batch", type=int, default=16, help="batch of the ImageNet-sized pair")
    parser.add_argument("--small-batch", type=int, default=128, help="batch of the 28x28 IR-Net group")
    timing_arguments(parser, warmup=3, steps=5, rounds=4)
    parser.add_argument("--only", default="", help="only the comparisons whose name contains this text "
                        "(printed, not written: the results file holds whole runs)")
    args = parse_timed(parser, imagenet_batch="--imagenet-batch", small_batch="--small-batch")
    from zoo import fused

    rng = np.random.default_rng(0)
    rows, groups = [], []
    for group, contenders, shape, batch, classes, step in comparisons(args):
        if args.only not in group:
            continue
        sizes = {label: own or batch for label, _, _, own in contenders}
        x = tf.constant(rng.uniform(0, 255, (max(sizes.values()), *shape)).astype("float32"))
        y = tf.constant(rng.integers(0, classes, max(sizes.values())))
        steps = {}
        for label, build, _, _ in contenders:  # every contender on the same images (the first of them)
            tf.keras.utils.set_random_seed(0)
            steps[label] = step(build(), x[:sizes[label]], y[:sizes[label]])
        times = interleaved(steps, args.warmup, args.steps, args.rounds)
        speed = {label: sizes[label] / median(times[label]) for label in steps}  # images per second
        reference = next(label for label, _, is_reference, _ in contenders if is_reference)
        for label, _, is_reference, _ in contenders:
            rows.append({
                "group": group, "model": label, "reference": is_reference, "batch": sizes[label],
                "input": "x".join(map(str, shape)), "ms_per_step": 1e3 * median(times[label]),
                "images_per_second": speed[label], "ratio": speed[label] / speed[reference],
            })
        groups.append(group)
        fused.clear_session()

    bireal = next((r for r in rows if r["model"] == "binary-zoo BiRealNet18"), None)
    def best(group, at_batch=True):
        """The best row of `group` at the group's batch (or, `at_batch` False, at another)."""
        return max((r for r in rows if r["group"] == group and (r["batch"] == args.small_batch) == at_batch),
                   key=lambda r: r["ratio"], default=None)

    # The target is read on the zoo's training step, Keras' as fit runs it, at the recipe's batch.
    fit = "BiRealNet20 levers, Keras fit step"
    faster, plain, large = best(fit), best("BiRealNet20 levers"), best(fit, at_batch=False)
    result = {
        "what": "training step (forward + backward + Adam: a tf.function, or Keras' train function where the "
                "group says so), median over interleaved rounds",
        "warmup": args.warmup, "steps": args.steps, "rounds": args.rounds,
        "rows": rows,
        "target": bireal and {"bireal_ratio_at_least": TARGET, "met": bireal["ratio"] >= TARGET},
        "faster": faster and {"bireal20_at_least": FASTER, "best": faster["ratio"],
                              "met": faster["ratio"] >= FASTER, "plain_step_best": plain and plain["ratio"],
                              "batch": args.small_batch,
                              "large_batch": large and {"batch": large["batch"], "best": large["ratio"]}},
    }
    print(render({**result, "machine": machine()}))
    if args.only:
        print("--only: a partial run, not written (results/train_throughput.json, which the docs show, "
              "keeps the last whole run)")
    else:
        print(f"written to {write_result('train_throughput', result)}")
    return 0


def render(result: dict) -> str:
    """The result as a Markdown table and the target line."""
    rows = [[r["group"], r["model"] + (" (reference)" if r["reference"] else ""), r["input"], r["batch"],
             f"{r['ms_per_step']:.1f}", f"{r['images_per_second']:.1f}", f"{r['ratio']:.3f}"]
            for r in result["rows"]]
    target, faster = result.get("target"), result.get("faster")
    lines = [table(["comparison", "model", "input", "batch", "ms/step", "images/s", "speed vs reference"], rows), ""]
    if target:
        lines.append(f"Target: binary-zoo BiRealNet18 at least {target['bireal_ratio_at_least']} x larq-zoo's "
                     f"images/s: {'met' if target['met'] else 'NOT met'}.")
    if faster:
        plain = faster.get("plain_step_best")
        lines.append(f"Target: BiRealNet20's training steps (Keras' train function, as `fit` runs it) at least "
                     f"{faster['bireal20_at_least']}x as fast as before issue 20's levers: best {faster['best']:.2f}x, "
                     f"{'met' if faster['met'] else 'NOT met'}"
                     + (f" (a plain tf.function step: {plain:.2f}x)." if plain else "."))
        if faster.get("large_batch"):
            large = faster["large_batch"]
            lines.append(f"With batch_size={large['batch']} instead of {faster['batch']}: {large['best']:.2f}x the "
                         f"images per second (train it with twice the learning rate; its accuracy against batch "
                         f"{faster['batch']}'s: `benchmarks/train_table.py batch`).")
    cpu = result.get("machine", {}).get("cpu")
    return "\n".join(lines + ([f"CPU: {cpu}."] if cpu else []))

if __name__ == "__main__":
    sys.exit(main())
