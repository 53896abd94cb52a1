import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Every test, and every `zoo` or `mkdocs` process a test starts, sees the toy family of
# tests/toy_family.py, registered the way a family outside the package is: it must go
# through the CLI, the contract tests and the docs build like the papers' own.
TESTS = str(Path(__file__).resolve().parent)
os.environ["ZOO_FAMILIES"] = ",".join(filter(None, [os.environ.get("ZOO_FAMILIES"), "toy_family"]))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [TESTS, os.environ.get("PYTHONPATH")]))

# Keras 2 as tf.keras on either stack (zoo/stack.py), before a test module imports TensorFlow.
from zoo import stack  # noqa: E402,F401
