"""binary-zoo: accurate binary neural networks (1-bit weights and activations) for Larq.

Public API: the model constructors (keras.applications style, keyword-only), the
registry (`list_models`, `get_model_spec`), `complexity`, `export` (Larq Compute
Engine or OpenVINO, checked against Keras), `deploy` (run an exported file), and
ImageNet helpers
(`preprocess_input`, `decode_predictions`).
"""
import os

# Hide TensorFlow's C++ start-up INFO lines (CPU features, oneDNN); a user's own setting wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

from zoo import stack  # noqa: E402,F401  (first: Keras 2 as tf.keras on either stack)

# isort: split
from zoo import quantizers  # noqa: E402,F401  (registers the quantizers with Larq)
from zoo.complexity import Complexity, complexity  # noqa: E402
from zoo.deployment import deploy, export  # noqa: E402
from zoo.preprocessing import decode_predictions, preprocess_input  # noqa: E402
from zoo.registry import ModelSpec, UnknownModelError, list_models  # noqa: E402
from zoo.registry import get as get_model_spec  # noqa: E402

__version__ = "0.1.0"

# The public constructors (zoo.BiRealNet18, ...), one per registered model.
MODELS = {spec.name: spec.constructor for spec in list_models()}
globals().update(MODELS)

__all__ = [
    *MODELS,
    "Complexity",
    "ModelSpec",
    "UnknownModelError",
    "complexity",
    "decode_predictions",
    "deploy",
    "export",
    "get_model_spec",
    "list_models",
    "preprocess_input",
]
