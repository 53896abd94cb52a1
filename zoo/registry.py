"""The registry: one `ModelSpec` record per model, the single source of its facts.

A record keeps together what `zoo list`, the docs, the weights index and the tests need
to know about a model: its public constructor, the zookeeper factory behind it, the
paper (with citation) and the paper's reported results, its default input, and the
training task that reproduces it. Published weights are not stored here: they come
from the weights index (`zoo.weights`), written by code when a run is published.
"""
import difflib
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple


@dataclass(frozen=True)
class Paper:
    """A publication a model implements.

    Arguments:
        title: the paper's title.
        authors: its authors, as cited (e.g. "Liu et al.").
        venue: where it was published (e.g. "ECCV").
        year: the year of publication.
        url: a link to the paper.
        bibtex: its BibTeX entry.
    """

    title: str
    authors: str
    venue: str
    year: int
    url: str
    bibtex: str


@dataclass(frozen=True)
class Reported:
    """A result the paper reports (not measured by this project).

    `ops` and `memory_mbit` are the paper's own cost figures, where it gives them, at
    the model's default input (`zoo.complexity` must reproduce them).

    Arguments:
        dataset: the dataset of the result (e.g. "ImageNet").
        top1: top-1 accuracy in percent (e.g. 56.4); None for a dense model.
        top5: top-5 accuracy in percent; default None (not reported).
        source: where the number comes from; default "paper" (e.g. "larq-zoo weights"
            for a result of published third-party weights).
        note: a short remark (e.g. "K=5"); default "".
        ops: the paper's OPs (BOPs / 64 + FLOPs); default None.
        memory_mbit: the paper's model memory in Mbit; default None.
        miou: a segmentation model's mean IoU in percent; default None.
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
class ModelSpec:
    """Everything the zoo knows about one registered model.

    Arguments:
        name: the model's name, that of its public constructor (e.g. "BiRealNet18").
        constructor: the public constructor (a function returning a `tf.keras.Model`).
        factory: the zookeeper factory class the constructor builds with.
        family: the paper family the model belongs to (e.g. "Bi-Real Net").
        paper: the `Paper` the model implements.
        default_input_shape: (height, width, channels) of the default input.
        default_num_classes: default number of classes of the classifier.
        task: the name of the training task that reproduces it (`Train<name>`).
        reported: the paper's (and others') `Reported` results; default empty.
        description: a one-line description (the constructor docstring's first
            line); default "".
        options: extra options of the record; default empty.
        kind: "classification" (default), "segmentation" or "detection".
    """

    name: str
    constructor: Callable
    factory: type
    family: str
    paper: Paper
    default_input_shape: Tuple[int, int, int]
    default_num_classes: int
    task: str
    reported: Tuple[Reported, ...] = ()
    description: str = ""
    options: Dict[str, object] = field(default_factory=dict)
    kind: str = "classification"

    @property
    def weights(self) -> List[str]:
        """Sorted tags of the model's published checkpoints (read from the weights index)."""
        from zoo import weights

        return weights.available_tags(self.name)

    def build(self, **kwargs):
        """Calls the public constructor with keyword arguments.

        Arguments:
            **kwargs: the constructor's arguments (e.g. `weights`, `input_shape`).

        Returns:
            The constructor's result, a `tf.keras.Model`.
        """
        return self.constructor(**kwargs)


_REGISTRY: Dict[str, ModelSpec] = {}


class UnknownModelError(ValueError):
    """Raised for a model name that is not registered."""


def register(spec: ModelSpec) -> ModelSpec:
    """Adds a record; a name may be registered only once.

    Arguments:
        spec: the model's record.

    Returns:
        `spec`, unchanged.

    Raises:
        ValueError: a model of the same name is already registered.
    """
    if spec.name in _REGISTRY:
        raise ValueError(f"Model {spec.name!r} is registered twice.")
    _REGISTRY[spec.name] = spec
    return spec


def list_models() -> List[ModelSpec]:
    """All registered models, in registration order (paper by paper).

    Returns:
        A new list of the `ModelSpec` records.
    """
    return list(_REGISTRY.values())


def get(name: str) -> ModelSpec:
    """The record of `name` (case-insensitive).

    Arguments:
        name: a model name (e.g. "BiRealNet18" or "birealnet18"); an exact match is
            preferred over a case-insensitive one.

    Returns:
        The model's `ModelSpec`.

    Raises:
        UnknownModelError: naming the closest registered names and listing all.
    """
    if name in _REGISTRY:
        return _REGISTRY[name]
    by_lower = {key.lower(): spec for key, spec in _REGISTRY.items()}
    if name.lower() in by_lower:
        return by_lower[name.lower()]
    close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(close)}?" if close else ""
    raise UnknownModelError(
        f"Unknown model {name!r}.{hint} Registered models: {', '.join(_REGISTRY)} "
        "(`zoo list` shows them)."
    )


# Default inputs of the two kinds of models in the zoo.
IMAGENET_INPUT = dict(default_input_shape=(224, 224, 3), default_num_classes=1000)
SMALL_INPUT = dict(default_input_shape=(32, 32, 3), default_num_classes=10)
# Dense models: PASCAL VOC 2012 (the paper's 480x480 crops, 20 classes + background).
VOC_SEGMENTATION = dict(default_input_shape=(480, 480, 3), default_num_classes=21, kind="segmentation")
# COCO's 80 classes, images letterboxed to 512x512.
COCO_DETECTION = dict(default_input_shape=(512, 512, 3), default_num_classes=80, kind="detection")


def register_family(family: str, paper: Paper, rows) -> None:
    """Registers `(constructor, factory, input defaults, reported results)` rows.

    The record's name is the constructor's name; its training task is `Train<name>`.
    Each constructor's docstring gets a References section citing the paper.

    Arguments:
        family: the family name shared by the rows (e.g. "Bi-Real Net").
        paper: the `Paper` every row's model implements.
        rows: an iterable of `(constructor, factory class, input defaults, reported
            results)` tuples; the input defaults are a dict with `default_input_shape`
            and `default_num_classes` (`IMAGENET_INPUT`, `SMALL_INPUT`, ...) and
            optionally the model's `kind` (`VOC_SEGMENTATION`), the reported
            results an iterable of `Reported`.

    Raises:
        ValueError: a constructor's name is already registered.
    """
    for constructor, factory_cls, inputs, reported in rows:
        constructor.__doc__ = (constructor.__doc__ or "").rstrip() + (
            f"\n\nReferences:\n    - {paper.authors}. {paper.title}. {paper.venue} {paper.year}. {paper.url}\n"
        )
        register(
            ModelSpec(
                name=constructor.__name__,
                constructor=constructor,
                factory=factory_cls,
                family=family,
                paper=paper,
                task=f"Train{constructor.__name__}",
                reported=tuple(reported),
                description=(constructor.__doc__ or "").strip().splitlines()[0],
                **inputs,
            )
        )
