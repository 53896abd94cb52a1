"""The two supported software stacks, and everything that differs between them.

    pinned   Python 3.11, TensorFlow 2.15.1 (Keras 2.15), tensorflow-datasets 4.8.3,
             protobuf 3.20.3, Larq Compute Engine 0.16.0         (constraints.txt)
    modern   Python 3.12, TensorFlow 2.21 with tf-keras 2.21, numpy<2,
             tensorflow-datasets 4.9, Larq Compute Engine 0.16.0   (constraints-modern.txt)
             Python 3.13 too, without Larq Compute Engine (no wheel) and with numpy 2

larq needs Keras 2. From TensorFlow 2.16 on, `tf.keras` is Keras 3 unless
`TF_USE_LEGACY_KERAS=1` is set before TensorFlow is first imported; then it is the
`tf_keras` package (Keras 2), which is what larq's maintainers advise (larq issues #909,
#911). `import zoo` runs this module first: it sets the variable, and refuses, in one
line, a process where TensorFlow was already imported without it.
The rest of the zoo writes `tf.keras` and works on both stacks.
"""
import importlib.metadata
import importlib.util
import os
import platform
import sys


def tensorflow_version() -> str:
    """The installed TensorFlow's version, read without importing it ("" if none)."""
    for distribution in ("tensorflow", "tensorflow-cpu"):
        try:
            return importlib.metadata.version(distribution)
        except importlib.metadata.PackageNotFoundError:
            pass
    return ""


def use_keras_2() -> None:
    """Makes `tf.keras` Keras 2: sets `TF_USE_LEGACY_KERAS=1` where tf-keras is installed
    (TensorFlow 2.15 would read it too, and fail without tf-keras).

    Raises:
        ImportError: TensorFlow >= 2.16 without tf-keras (its tf.keras is Keras 3), or
            TensorFlow imported in this process before zoo without the variable (larq
            would then mix Keras 3 and Keras 2 classes).
    """
    version = tensorflow_version()
    if importlib.util.find_spec("tf_keras") is None:
        if version and tuple(int(v) for v in version.split(".")[:2]) >= (2, 16):
            raise ImportError(f"binary-zoo needs Keras 2 (larq does): with TensorFlow {version} install "
                              f"tf-keras=={version} (make install PYTHON=python3.12 does).")
        return
    if "tensorflow" in sys.modules and os.environ.get("TF_USE_LEGACY_KERAS", "").lower() not in ("1", "true"):
        raise ImportError(
            f"binary-zoo needs Keras 2 (larq does), but TensorFlow {version} was imported before zoo with Keras 3 "
            "as tf.keras: import zoo before tensorflow, or set TF_USE_LEGACY_KERAS=1 before TensorFlow is imported.")
    os.environ["TF_USE_LEGACY_KERAS"] = "1"


def keras_version() -> str:
    """The version of the Keras that `tf.keras` is (imports TensorFlow): Keras' own, or
    tf-keras' (its `tf.keras` has no `__version__`)."""
    import tensorflow as tf

    legacy = os.environ.get("TF_USE_LEGACY_KERAS") == "1" and importlib.util.find_spec("tf_keras")
    return getattr(tf.keras, "__version__", None) or importlib.metadata.version("tf-keras" if legacy else "keras")


def numerics() -> str:
    """What decides how a float32 model rounds here, e.g. "TensorFlow 2.15.1, x86_64 AMX":
    TensorFlow's version (it bundles its oneDNN kernels) and the CPU's widest vector
    instructions (oneDNN picks its kernels by them). Where these differ, a near-tie may
    round the other way: oneDNN 3.7 (TensorFlow 2.21) sums a 3x3 one-channel convolution
    in another order than oneDNN 3.2 (TensorFlow 2.15) for batches above one."""
    flags = cpu_flags()
    isa = next((name for flag, name in (("amx_tile", "AMX"), ("avx512f", "AVX-512"), ("avx2", "AVX2"))
                if flag in flags), "")
    return f"TensorFlow {tensorflow_version()}, {platform.machine()}{' ' + isa if isa else ''}"


def cpuinfo(key: str) -> str:
    """The first `key` line's value in Linux' /proc/cpuinfo ("" elsewhere)."""
    try:
        with open("/proc/cpuinfo") as info:
            line = next((line for line in info if line.split(":")[0].strip() == key), "")
    except OSError:
        return ""
    return line.split(":", 1)[-1].strip()


def cpu_flags() -> set:
    """The CPU's feature flags (empty where /proc/cpuinfo is not)."""
    return set(cpuinfo("flags").split())


def cpu_model() -> str:
    """The CPU's name, e.g. "AMD EPYC" (else what `platform` knows): a time measured here
    depends on it."""
    return cpuinfo("model name") or platform.processor() or platform.machine()


def onednn() -> bool:
    """Whether TensorFlow runs its oneDNN kernels, which grouped convolutions need on CPU:
    by default on x86-64 Linux, unless `TF_ENABLE_ONEDNN_OPTS=0`; elsewhere only with
    `TF_ENABLE_ONEDNN_OPTS=1`."""
    setting = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "").lower()
    if setting in ("0", "false", "1", "true"):
        return setting in ("1", "true")
    return sys.platform == "linux" and platform.machine() == "x86_64"


def has_lce() -> bool:
    """Whether Larq Compute Engine is installed (it has no wheel for Python 3.13)."""
    return importlib.util.find_spec("larq_compute_engine") is not None


def require_lce() -> None:
    """Raises a one-line ImportError where Larq Compute Engine is missing."""
    if not has_lce():
        raise ImportError(
            f"Larq Compute Engine is not installed (it has wheels for Python 3.11 and 3.12 only; this is "
            f"Python {sys.version_info.major}.{sys.version_info.minor}): export on Python 3.12 "
            "(make install PYTHON=python3.12) or 3.11.")


use_keras_2()  # before any `import tensorflow` of the zoo
