"""The two stacks (zoo/stack.py): Keras 2 as tf.keras on either, one-line refusals where
a stack lacks something."""
import importlib.util
import os
import subprocess
import sys

from zoo import stack
from zoo.cli import main

MODERN = importlib.util.find_spec("tf_keras") is not None


def python(code, **env):
    """Runs `code` in a new Python; `env` changes the environment (the tests' own has
    TF_USE_LEGACY_KERAS=1, set by conftest's `import zoo`): None removes a variable."""
    environ = {k: v for k, v in {**os.environ, **env}.items() if v is not None}
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=environ)


def test_import_zoo_gives_keras_2_as_tf_keras_on_this_stack():
    result = python("import zoo, larq, tensorflow as tf\n"
                    "from zoo import stack\n"
                    "print(stack.tensorflow_version(), stack.keras_version(), isinstance(\n"
                    "    tf.keras.layers.Dense(1), tf.keras.layers.Layer))")
    assert result.returncode == 0, result.stderr[-2000:]
    tensorflow, keras, layer = result.stdout.split()[-3:]
    assert keras.startswith("2.") and layer == "True"
    assert tensorflow.startswith("2.21" if MODERN else "2.15")


def test_tensorflow_imported_first_is_refused_in_one_line_where_it_means_keras_3():
    result = python("import tensorflow\nimport zoo", TF_USE_LEGACY_KERAS=None)
    if MODERN:
        assert result.returncode != 0
        assert result.stderr.strip().splitlines()[-1].startswith(
            "ImportError: binary-zoo needs Keras 2 (larq does), but TensorFlow 2.21")
        assert "import zoo before tensorflow, or set TF_USE_LEGACY_KERAS=1" in result.stderr
        with_variable = python("import tensorflow\nimport zoo", TF_USE_LEGACY_KERAS="1")
        assert with_variable.returncode == 0, with_variable.stderr[-2000:]
    else:  # TensorFlow 2.15's tf.keras is Keras 2 whatever the order
        assert result.returncode == 0, result.stderr[-2000:]


def test_without_lce_the_export_is_one_line_naming_the_alternative(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(stack, "has_lce", lambda: False)
    capsys.readouterr()
    assert main(["export", "BiRealNet20", "--input-shape", "28,28,1", "--out", str(tmp_path / "m.tflite")]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Larq Compute Engine is not installed" in err
    assert "PYTHON=python3.12" in err and list(tmp_path.iterdir()) == []


def test_a_run_records_the_stack_it_ran_on():
    from zoo.training import runs

    versions = runs.versions()
    assert versions["keras"] == stack.keras_version() and versions["python"].startswith(f"{sys.version_info[0]}.")


def test_numerics_name_the_tensorflow_and_the_cpu_instructions_that_decide_rounding(monkeypatch, tmp_path):
    import tensorflow as tf

    assert stack.numerics().startswith(f"TensorFlow {tf.__version__}, ")
    cpuinfo = tmp_path / "cpuinfo"
    real_open = open

    def fake_open(path, *args, **kwargs):
        return real_open(cpuinfo if path == "/proc/cpuinfo" else path, *args, **kwargs)

    monkeypatch.setattr("builtins.open", fake_open)
    monkeypatch.setattr("platform.machine", lambda: "x86_64")
    for flags, isa in (("fpu avx2 avx512f amx_tile", " AMX"), ("fpu avx2 avx512f", " AVX-512"),
                       ("fpu avx2", " AVX2"), ("fpu", "")):
        cpuinfo.write_text(f"processor : 0\nflags\t\t: {flags}\n")
        assert stack.numerics().endswith(f", x86_64{isa}")
