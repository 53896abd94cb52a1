import gc
import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Every test, and every `zoo` or `mkdocs` process a test starts, sees the toy family of
# tests/toy_family.py, registered the way a family outside the package is: it must go
# through the CLI, the contract tests and the docs build like the papers' own.
TESTS = str(Path(__file__).resolve().parent)
os.environ["ZOO_FAMILIES"] = ",".join(filter(None, [os.environ.get("ZOO_FAMILIES"), "toy_family"]))
os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [TESTS, os.environ.get("PYTHONPATH")]))

# Keras 2 as tf.keras on either stack (zoo/stack.py), before a test module imports TensorFlow.
from zoo import stack  # noqa: E402,F401


@pytest.fixture(autouse=True, scope="module")
def _release_each_files_graphs():
    """Each test file's models freed when the file is done (`zoo.fused.clear_session`):
    an xdist worker runs many files, and their models added up to more than the machine's
    memory."""
    yield
    from zoo import fused

    fused.clear_session()
    gc.collect()
