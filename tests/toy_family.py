"""A model family kept outside the package, as a user's or a fourth paper's would be.

`tests/conftest.py` names it in `ZOO_FAMILIES`, so the whole suite runs with it: it is
in `zoo list`, has a `TrainToyNet` task, goes through every contract of
`tests/test_contracts.py` and gets a docs page, and no file under zoo/ or training/
names it.
"""
import larq as lq
import tensorflow as tf
from zookeeper import Field

from zoo.blocks import batch_norm
from zoo.models.base import ModelFactory
from zoo.models.family import SMALL, Family, Paper, Variant


class ToyFactory(ModelFactory):
    """A full-precision 3x3 stem, then one binary 3x3 convolution."""

    min_input_size = 8
    filters: int = Field(8)
    variant_fields = ("filters",)
    constructor_fields = ("filters",)
    constructor_doc = """
    `filters` is the width of both convolutions.
"""

    def features(self, x: tf.Tensor) -> tf.Tensor:
        x = tf.keras.layers.Conv2D(self.filters, 3, padding="same", use_bias=False, name="stem_conv")(x)
        x = batch_norm("stem_bn")(x)
        x = lq.layers.QuantConv2D(self.filters, 3, padding="same", pad_values=1.0, use_bias=False,
                                  input_quantizer="ste_sign", kernel_quantizer="ste_sign",
                                  kernel_constraint="weight_clip", name="binary_conv")(x)
        return batch_norm("binary_bn")(x)


PAPER = Paper(title="A toy family", authors="binary-zoo's tests", venue="tests", year=2026,
              url="https://example.org/toy", bibtex="@misc{toy, title={A toy family}}")

FAMILY = Family("Toy", PAPER, (
    Variant("ToyNet", ToyFactory, SMALL, "A toy binary net: a real 3x3 stem, one binary 3x3 convolution."),
))
