"""Model families as data: a paper, its architectures, and a table of variants.

A family module (`zoo/models/<paper>.py`) ends with `FAMILY = Family(...)`: the paper
and one `Variant` per public model. Each variant names an architecture (a
`ModelFactory` subclass, one per architecture), the field values that make it this
variant, its default input and the paper's results. From that row `zoo.registry`
makes the zookeeper factory, the keyword-only constructor (`zoo.BiRealNet18`) and the
registry record, and `zoo.training` the `Train<name>` task; the docs page follows the
registry. A model name is typed once, in its `Variant`.
"""
import inspect
from dataclasses import dataclass, field
from typing import Callable, Mapping, Optional, Tuple

from zookeeper import Field, factory


@dataclass(frozen=True)
class Paper:
    """A publication a family implements: title, authors, venue, year, url, BibTeX."""

    title: str
    authors: str
    venue: str
    year: int
    url: str
    bibtex: str

    def citation(self) -> str:
        return f"{self.authors}. {self.title}. {self.venue} {self.year}. {self.url}"


@dataclass(frozen=True)
class Reported:
    """A result published elsewhere (not measured by this project).

    Arguments:
        dataset: the dataset of the result (e.g. "ImageNet").
        top1, top5: accuracy in percent; None where not reported.
        source: where the number comes from (e.g. "larq-zoo weights"); default "paper".
        note: a short remark (e.g. "K=5").
        ops, memory_mbit: the paper's OPs (BOPs / 64 + FLOPs) and model memory in Mbit at
            the default input, where it gives them (`zoo.complexity` must reproduce them).
        miou: a segmentation model's mean IoU in percent.
    """

    dataset: str
    top1: Optional[float] = None
    top5: Optional[float] = None
    source: str = "paper"
    note: str = ""
    ops: Optional[float] = None
    memory_mbit: Optional[float] = None
    miou: Optional[float] = None

    @property
    def value(self) -> str:
        """The result as text: "64.8 / 85.7" (top-1 / top-5) or "mIoU 65.1"."""
        if self.miou is not None:
            return f"mIoU {self.miou}"
        return f"{self.top1} / {'-' if self.top5 is None else self.top5}"


@dataclass(frozen=True)
class Inputs:
    """A model's default input (height, width, channels), classes and task kind (`zoo.kinds`)."""

    shape: Tuple[int, int, int]
    num_classes: int
    kind: str = "classification"


IMAGENET = Inputs((224, 224, 3), 1000)
SMALL = Inputs((32, 32, 3), 10)  # CIFAR-10; Fashion-MNIST's 28x28x1 fits too
VOC = Inputs((480, 480, 3), 21, "segmentation")  # the paper's crops, 20 classes + background
COCO = Inputs((512, 512, 3), 80, "detection")  # letterboxed


@dataclass(frozen=True)
class Variant:
    """One public model: a row of its family's table.

    Arguments:
        name: the model's name, that of its constructor (e.g. "BiRealNet34").
        architecture: the `ModelFactory` subclass that builds it.
        inputs: its default `Inputs`.
        description: one line, the first of the constructor's docstring.
        fields: the architecture's field values that make this variant.
        reported: published results.
        recipe: the name of its training recipe (`zoo.training.recipes`); None: the
            default recipe of its kind.
        twin: the name of the full-precision network the robustness track compares it
            with (`zoo.training.robustness`): its twin (the same network in float), or
            the float network of its backbone (a ResNet-20's: BiRealNet20FP), as BiBench
            compares every binarization of a backbone with one float network.
    """

    name: str
    architecture: type
    inputs: Inputs
    description: str
    fields: Mapping[str, object] = field(default_factory=dict)
    reported: Tuple[Reported, ...] = ()
    recipe: Optional[str] = None
    twin: Optional[str] = None


@dataclass(frozen=True)
class Family:
    """A paper's models: the `Paper` and its `Variant` rows, in the order `zoo list` shows."""

    name: str
    paper: Paper
    variants: Tuple[Variant, ...]

    def factories(self) -> Mapping[str, type]:
        """The zookeeper factory of every variant, by model name (made once)."""
        if "_factories" not in self.__dict__:
            object.__setattr__(self, "_factories", {v.name: make_factory(v) for v in self.variants})
        return self.__dict__["_factories"]


def _field(value) -> Field:
    # A mutable value becomes a factory, so instances never share it.
    return Field((lambda: dict(value)) if isinstance(value, Mapping) else value)


def make_factory(variant: Variant) -> type:
    """The zookeeper factory of a variant: its architecture with the variant's fields and
    defaults (`name`, `default_input_shape`, `default_num_classes`) as class attributes."""
    attributes = {
        "__module__": variant.architecture.__module__,
        "__qualname__": f"{variant.name}Factory",
        "__doc__": variant.description,
        "name": variant.name,
        "default_input_shape": variant.inputs.shape,
        "default_num_classes": variant.inputs.num_classes,
        **{key: _field(value) for key, value in variant.fields.items()},
    }
    return factory(type(f"{variant.name}Factory", (variant.architecture,), attributes))


def field_default(factory_class: type, name: str):
    """The default value of a factory's field `name`."""
    default = factory_class.__component_fields__[name]._default
    return default() if callable(default) else default


def make_constructor(factory_class: type, doc: str) -> Callable:
    """The keyword-only public constructor of a factory (keras.applications style).

    Its arguments are the factory's `PUBLIC_FIELDS` and `constructor_fields`, with the
    factory's defaults; `doc` is its docstring.
    """
    names = (*factory_class.PUBLIC_FIELDS, *factory_class.constructor_fields)
    signature = inspect.Signature(
        [inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=field_default(factory_class, n)) for n in names],
        return_annotation="tf.keras.Model",
    )

    def constructor(**kwargs):
        signature.bind(**kwargs)  # a TypeError names an unknown argument
        return factory_class(**kwargs).build()

    constructor.__name__ = constructor.__qualname__ = factory_class.name
    constructor.__module__ = "zoo"
    constructor.__signature__ = signature
    constructor.__doc__ = doc
    return constructor
