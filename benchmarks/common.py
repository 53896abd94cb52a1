"""What the benchmark scripts share: timing side by side, the machine, tables, results.

Timings of several things that are compared are taken in one run and interleaved
(round-robin over the contenders, several rounds), so that a change in the machine's
load during the run affects all of them alike; each is the median of its steps.
Results go to benchmarks/results/<name>.json (atomically), with the machine, the
date, the versions and the command that produced them; docs/benchmarks.md is
generated from those files.
"""
import json
import os
import platform
import statistics
import sys
from datetime import date
from pathlib import Path
from typing import Callable, Optional, Sequence

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402,I001

from zoo.training.precision import interleaved  # noqa: E402,F401  (zoo first: it picks tf.keras; one timing loop)
from zoo import stack  # noqa: E402

# ZOO_BENCH_RESULTS sends a trial run's files elsewhere (the committed ones are the docs').
RESULTS = Path(os.environ.get("ZOO_BENCH_RESULTS") or Path(__file__).resolve().parent / "results")


def adam_update(model: tf.keras.Model, loss_fn: tf.keras.losses.Loss) -> Callable[[tf.Tensor, tf.Tensor], tf.Tensor]:
    """`update(x, y)`: forward, backward and an Adam update of `model` on one batch,
    returning the loss (to be compiled with `tf.function`)."""
    optimizer = tf.keras.optimizers.Adam(1e-3)

    def update(x, y):
        with tf.GradientTape() as tape:
            loss = loss_fn(y, model(x, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        return loss

    return update


def train_step(model: tf.keras.Model, x: tf.Tensor, y: tf.Tensor) -> Callable[[], float]:
    """A compiled training step (forward, backward, Adam update) on one fixed batch."""
    step = tf.function(adam_update(model, tf.keras.losses.SparseCategoricalCrossentropy()))
    return lambda: float(step(x, y).numpy())


def fit_step(model: tf.keras.Model, x: tf.Tensor, y: tf.Tensor) -> Callable[[], float]:
    """A training step as the zoo's classification tasks take it: the model compiled
    with Adam and the classification kind's loss (one-hot labels) and metrics, then
    Keras' own train function, which `fit` calls once per batch, on one fixed batch."""
    from zoo.kinds import KINDS

    kind, classes = KINDS["classification"], model.output_shape[-1]
    model.compile(optimizer=tf.keras.optimizers.Adam(1e-3), loss=kind.loss(model),
                  metrics=kind.training_metrics(classes))
    batches = iter(tf.data.Dataset.from_tensors((x, tf.one_hot(y, classes))).repeat())
    train = model.make_train_function()
    return lambda: float(train(batches)["loss"])


def timing_arguments(parser, warmup: int, steps: int, rounds: int) -> None:
    """Adds --warmup, --steps and --rounds (of `interleaved`) with these defaults."""
    parser.add_argument("--warmup", type=int, default=warmup, help="untimed calls per contender")
    parser.add_argument("--steps", type=int, default=steps, help="timed calls per contender and round")
    parser.add_argument("--rounds", type=int, default=rounds)


def parse_timed(parser, **at_least_one: str):
    """`parser.parse_args()`, stopping with a message unless --steps, --rounds and the
    options `at_least_one` names (attribute=option) are >= 1 and --warmup >= 0."""
    args = parser.parse_args()
    counts = {"--steps": args.steps, "--rounds": args.rounds,
              **{option: getattr(args, name) for name, option in at_least_one.items()}}
    if min(counts.values()) < 1 or args.warmup < 0:
        parser.error(f"{', '.join(counts)} must be >= 1, --warmup >= 0")
    return args


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def machine() -> dict:
    """The machine and software the numbers were measured on."""
    import larq
    import larq_compute_engine

    try:
        from zoo.openvino_ir import openvino

        openvino_version = openvino().get_version().split("-")[0]
    except ImportError:
        openvino_version = None
    return {
        "cpu": stack.cpu_model(),
        "cores": os.cpu_count(),
        "system": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "tensorflow": tf.__version__,
        "larq": larq.__version__,
        "larq_compute_engine": larq_compute_engine.__version__,
        "openvino": openvino_version,
        "date": date.today().isoformat(),
    }


def table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    """A Markdown table (the scripts print it, the docs page shows it)."""
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)


def write_result(name: str, result: dict) -> Path:
    """Writes results/<name>.json atomically, with the machine and the command."""
    from zoo.io import atomic_write_bytes

    record = {**result, "machine": machine(), "command": " ".join([Path(sys.executable).name, *sys.argv])}
    path = RESULTS / f"{name}.json"
    atomic_write_bytes(path, (json.dumps(record, indent=2) + "\n").encode("utf-8"))
    return path


def read_result(name: str, missing_ok: bool = False) -> Optional[dict]:
    """results/<name>.json; None if it does not exist and `missing_ok`."""
    try:
        with open(RESULTS / f"{name}.json", encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        if missing_ok:
            return None
        raise


# -- results per published checkpoint (export parity, robustness, accuracy per cost) ------


def published_checkpoints() -> dict:
    """{(model, tag): sha256} of the published checkpoints with their top, from the index.

    A result row per checkpoint records the sha256 of the file it measured (and of its
    twin's, where it compares with one): re-publishing a tag makes the row stale."""
    from zoo import weights

    return {(e.model, e.tag): e.sha256 for e in weights.entries() if e.include_top}


def is_current(row: dict, published: dict) -> bool:
    """Whether `row` measured the files now published under its model and tag (and twin)."""
    twin = row.get("twin")
    return (published.get((row["model"], row["tag"])) == row.get("sha256")
            and (not twin or published.get(tuple(twin.split(":"))) == row.get("twin_sha256")))


def kept_rows(last: Optional[dict], result: dict, settings: Sequence[str]) -> list:
    """The rows of `last` (the previous result, or None) that still describe published
    files and that `result` (a run over some checkpoints) did not measure again, if both
    have the same `settings` (keys of both results); a run over some checkpoints keeps the rest."""
    if last is None or any(last.get(k) != result.get(k) for k in settings):
        return []
    published = published_checkpoints()
    done = {(row["model"], row["tag"]) for row in result["rows"]}
    return [row for row in last["rows"] if is_current(row, published) and (row["model"], row["tag"]) not in done]
