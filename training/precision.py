"""The `precision` of a training run: "float32", "mixed_bfloat16", or "auto".

Under Keras' `mixed_bfloat16` policy the layers compute in bfloat16 and keep float32
variables; the zoo's output layers stay float32 (`zoo.models.base`), and a run's
checkpoints, its model.h5 and its test scores are float32 whatever trained it
(`TrainTask`). bfloat16 pays only where the CPU computes it natively (Intel AMX or
AVX512-BF16; elsewhere TensorFlow emulates it, slower than float32), and even there not
for every model. So "auto" (the default) picks `mixed_bfloat16` only on a CPU with
native bfloat16 and only when a short probe of the run's own model on its own batch,
timed side by side with float32 (`probe`), finds it faster by `MARGIN`; the run record
(run.json) says what ran and why, and a resumed run keeps it.
"""
import contextlib
import time
from statistics import median
from typing import Callable, Dict, List

import tensorflow as tf

from zoo import stack

PRECISIONS = ("auto", "float32", "mixed_bfloat16")
NATIVE_BF16 = ("amx_bf16", "avx512_bf16")  # CPU flags of native bfloat16 arithmetic
MARGIN = 1.05  # bfloat16 must be this much faster than float32 for "auto" to pick it
# The probe costs about 25 training steps and two model builds: below this many steps a
# run cannot win it back, and "auto" trains in float32 without probing.
PROBE_FROM_STEPS = 2000


def native_bf16() -> bool:
    """Whether the CPU computes bfloat16 natively (AMX or AVX512-BF16)."""
    return bool(set(NATIVE_BF16) & stack.cpu_flags())


@contextlib.contextmanager
def policy(name: str):
    """Models built inside compute in `name` ("float32" or "mixed_bfloat16")."""
    previous = tf.keras.mixed_precision.global_policy()
    tf.keras.mixed_precision.set_global_policy(name)
    try:
        yield
    finally:
        tf.keras.mixed_precision.set_global_policy(previous)


def interleaved(runs: Dict[str, Callable[[], object]], warmup: int, steps: int, rounds: int) -> Dict[str, List[float]]:
    """Seconds of each call of every contender, taken round-robin, so that a change of
    the machine's load affects all alike.

    Each contender first runs `warmup` untimed calls (tracing, compilation, caches),
    then `rounds` times in turn `steps` timed calls.
    """
    for run in runs.values():
        for _ in range(warmup):
            run()
    times = {label: [] for label in runs}
    for _ in range(rounds):
        for label, run in runs.items():
            for _ in range(steps):
                start = time.perf_counter()
                run()
                times[label].append(time.perf_counter() - start)
    return times


def probe(build: Callable[[], tf.keras.Model], compile_model: Callable[[tf.keras.Model], None], batch,
          warmup: int = 2, steps: int = 3, rounds: int = 3) -> dict:
    """Times training steps of the model of `build()` on `batch` (inputs, targets) in
    float32 and in mixed_bfloat16, interleaved; returns the median milliseconds of each
    and `speedup` (float32 time / bfloat16 time)."""
    runs = {}
    for name in ("float32", "mixed_bfloat16"):
        with policy(name):
            model = build()
            compile_model(model)
        runs[name] = (lambda m: lambda: m.train_on_batch(*batch))(model)
    times = {name: median(t) for name, t in interleaved(runs, warmup, steps, rounds).items()}
    return {"float32_ms": round(1e3 * times["float32"], 1),
            "mixed_bfloat16_ms": round(1e3 * times["mixed_bfloat16"], 1),
            "speedup": round(times["float32"] / times["mixed_bfloat16"], 3)}


def choose(setting: str, measure: Callable[[], dict], steps: int) -> dict:
    """What a run of `steps` training steps with `precision=setting` computes in:
    {"setting", "ran", "why"} and, where "auto" timed it, the probe's numbers
    (`measure()`, `probe`'s record)."""
    if setting != "auto":
        return {"setting": setting, "ran": setting, "why": "set"}
    if not native_bf16():
        return {"setting": setting, "ran": "float32",
                "why": f"the CPU has no native bfloat16 (none of {', '.join(NATIVE_BF16)})"}
    if steps < PROBE_FROM_STEPS:
        return {"setting": setting, "ran": "float32",
                "why": f"a short run ({steps} steps): not worth a probe below {PROBE_FROM_STEPS}"}
    timing = measure()
    faster = timing["speedup"] >= MARGIN
    return {"setting": setting, "ran": "mixed_bfloat16" if faster else "float32",
            "why": f"bfloat16 steps {timing['speedup']:.2f}x as fast as float32 "
                   f"({'at least' if faster else 'below'} {MARGIN})", **timing}
