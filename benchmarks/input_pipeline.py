"""The training input pipeline's cost, and its share of a training step on this machine.

On 2 cores the tf.data pipeline (shuffle, each example's augmentation seed and
augmentation, batching) runs on the same cores as the training step, so its CPU time
slows training down even when batches are always ready. Two measurements:

- one epoch of Fashion-MNIST training batches (`zoo.training.evaluation.batches`, batch
  128, augmented), CPU and wall seconds, beside the same examples read and batched with
  nothing done per example (the floor);
- BiRealNet20's training step (fused quantizers, Adam, one-hot cross-entropy) fed from
  that pipeline against the same step fed one constant batch, in each precision,
  interleaved (common.py): the difference is what the pipeline costs the step.

    .venv/bin/python benchmarks/input_pipeline.py

Prints one table and writes benchmarks/results/input_pipeline.json.
"""
import argparse
import sys
import time
from functools import partial

import tensorflow as tf  # noqa: E402  (after common, which quiets TensorFlow's logging)
from common import adam_update, interleaved, machine, median, parse_timed, table, timing_arguments, write_result

BATCH = 128


def pipeline_seconds(data: tf.data.Dataset, batches: int) -> dict:
    """CPU and wall seconds of `batches` batches of `data` (after the first)."""
    it = iter(data)
    next(it)
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(batches):
        next(it)
    return {"cpu_seconds": time.process_time() - cpu, "wall_seconds": time.perf_counter() - wall}


def fed_step(model: tf.keras.Model, data: tf.data.Dataset):
    """A compiled training step (`common.adam_update`) that takes its batch from `data`,
    as Keras' fit does."""
    update = adam_update(model, tf.keras.losses.CategoricalCrossentropy())
    it = iter(data)
    step = tf.function(lambda: update(*next(it)))
    return lambda: float(step().numpy())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    timing_arguments(parser, warmup=3, steps=10, rounds=4)
    args = parse_timed(parser)

    import zoo
    from zoo import registry
    from zoo.training.evaluation import batches, make_dataset
    from zoo.training.precision import policy

    kind = registry.get("BiRealNet20").kind
    dataset = make_dataset("FashionMNIST")
    train, count = batches(dataset, "train", True, BATCH, partial(kind.pair, dataset), one_hot=kind.one_hot)
    per_epoch = -(-count // BATCH)
    raw, _ = dataset.train(decoders=None)
    pipelines = [
        {"pipeline": "zoo training batches (shuffled, augmented, one-hot)", **pipeline_seconds(train, per_epoch)},
        {"pipeline": "decoded examples, batched, nothing per example (floor)",
         **pipeline_seconds(raw.repeat().batch(BATCH), per_epoch)},
    ]

    constant = tf.data.Dataset.from_tensors(next(iter(train))).repeat()
    runs = {}
    for precision in ("float32", "mixed_bfloat16"):
        for source, data in (("training batches", train), ("one constant batch", constant)):
            tf.keras.utils.set_random_seed(0)
            with policy(precision):
                model = zoo.BiRealNet20(input_shape=dataset.input_shape, num_classes=dataset.num_classes)
            runs[(precision, source)] = fed_step(model, data)
    times = interleaved(runs, args.warmup, args.steps, args.rounds)
    ms = {key: 1e3 * median(seconds) for key, seconds in times.items()}
    steps = [{"precision": precision, "fed": source, "ms_per_step": ms[(precision, source)],
              "pipeline_share": 1 - ms[(precision, "one constant batch")] / ms[(precision, source)]}
             for precision, source in runs]
    result = {"dataset": "FashionMNIST", "batch": BATCH, "batches_per_epoch": per_epoch,
              "warmup": args.warmup, "steps": args.steps, "rounds": args.rounds,
              "pipelines": pipelines, "training_steps": steps}
    path = write_result("input_pipeline", result)
    print(render({**result, "machine": machine()}))
    print(f"written to {path}")
    return 0


def render(result: dict) -> str:
    """The result as two Markdown tables."""
    n = result["batches_per_epoch"]
    pipelines = table(["Fashion-MNIST, batch " + str(result["batch"]), "CPU s per epoch", "wall s per epoch",
                       "CPU ms per batch"],
                      [[p["pipeline"], f"{p['cpu_seconds']:.2f}", f"{p['wall_seconds']:.2f}",
                        f"{1e3 * p['cpu_seconds'] / n:.1f}"] for p in result["pipelines"]])
    steps = table(["BiRealNet20 training step", "fed from", "ms/step", "pipeline's share of the step"],
                  [[s["precision"], s["fed"], f"{s['ms_per_step']:.1f}",
                    "-" if s["fed"] == "one constant batch" else f"{s['pipeline_share']:.1%}"]
                   for s in result["training_steps"]])
    return f"{pipelines}\n\n{steps}\n\nCPU: {result['machine']['cpu']}."


if __name__ == "__main__":
    sys.exit(main())
