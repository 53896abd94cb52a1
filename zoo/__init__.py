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

from zoo import quantizers  # noqa: E402,F401  (registers the quantizers with Larq)
from zoo.complexity import Complexity, complexity
from zoo.deployment import deploy, export
from zoo.models.bireal import BiRealNet18, BiRealNet20, BiRealNet20FP, BiRealNet34, BiRealNet50
from zoo.models.groupnet import GroupNetResNet18, GroupNetResNet20, GroupNetResNet34, GroupNetResNet50
from zoo.models.groupnet_dense import GroupNetDeepLab, GroupNetFCN
from zoo.models.groupnet_fcos import GroupNetFCOS
from zoo.models.irnet import IRNetResNet18, IRNetResNet20, IRNetResNet34, IRNetVGGSmall
from zoo.preprocessing import decode_predictions, preprocess_input
from zoo.registry import ModelSpec, UnknownModelError, list_models
from zoo.registry import get as get_model_spec

__version__ = "0.1.0"

__all__ = [
    "BiRealNet18",
    "BiRealNet20",
    "BiRealNet20FP",
    "BiRealNet34",
    "BiRealNet50",
    "Complexity",
    "GroupNetDeepLab",
    "GroupNetFCN",
    "GroupNetFCOS",
    "GroupNetResNet18",
    "GroupNetResNet20",
    "GroupNetResNet34",
    "GroupNetResNet50",
    "IRNetResNet18",
    "IRNetResNet20",
    "IRNetResNet34",
    "IRNetVGGSmall",
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
