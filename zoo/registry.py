"""The registry: one `ModelSpec` per model, made from the families' variant tables.

Every module of `zoo.models` that defines `FAMILY` (a `zoo.models.family.Family`) is a
family; so is every module named in the environment variable `ZOO_FAMILIES`
(comma-separated) or in the entry-point group `binary_zoo.families`, for families
kept outside this package. Each variant becomes a record with its factory and its
public constructor; `zoo list`, the docs, the weights index, the training tasks and
the contract tests read these records. Published weights are not stored here: they
come from the weights index (`zoo.weights`).
"""
import difflib
import importlib
import os
import pkgutil
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Callable, Dict, List, Optional, Tuple

import zoo.models
from zoo import kinds
from zoo.io import ZooError
from zoo.models.base import CONSTRUCTOR_DOC, task_name
from zoo.models.family import Family, Paper, Reported, make_constructor


@dataclass(frozen=True)
class ModelSpec:
    """Everything the zoo knows about one registered model.

    Arguments:
        name: the model's name, that of its public constructor (e.g. "BiRealNet18").
        constructor: the keyword-only public constructor, returning a `tf.keras.Model`.
        factory: the zookeeper factory the constructor builds with.
        family: the family's name (e.g. "Bi-Real Net").
        paper: the `Paper` the model implements.
        default_input_shape: (height, width, channels) of the default input.
        default_num_classes: default number of classes.
        task: the training task that reproduces it (`Train<name>`).
        kind: the task kind (`zoo.kinds`).
        reported: published results (`Reported`).
        description: a one-line description (the constructor docstring's first line).
        recipe: the name of its training recipe; None: its kind's default.
        twin: the name of its full-precision twin (`Variant.twin`), or None.
    """

    name: str
    constructor: Callable
    factory: type
    family: str
    paper: Paper
    default_input_shape: Tuple[int, int, int]
    default_num_classes: int
    task: str
    kind: kinds.Kind
    reported: Tuple[Reported, ...] = ()
    description: str = ""
    recipe: Optional[str] = None
    twin: Optional[str] = None

    @property
    def weights(self) -> List[str]:
        """Sorted tags of the model's published checkpoints (read from the weights index)."""
        from zoo import weights as weights_index

        return weights_index.available_tags(self.name)

    def build(self, **kwargs):
        """The public constructor called with `kwargs` (`weights`, `input_shape`, ...)."""
        return self.constructor(**kwargs)


class UnknownModelError(ZooError):
    """Raised for a model name that is not registered."""


_REGISTRY: Dict[str, ModelSpec] = {}
_FAMILIES: Dict[str, Family] = {}  # by module name


def register_family(family: Family) -> List[ModelSpec]:
    """Registers every variant of `family`; a model name may be registered only once.

    Raises:
        ValueError: a name is already registered.
    """
    specs = []
    for variant in family.variants:
        if variant.name in _REGISTRY:
            raise ValueError(f"Model {variant.name!r} is registered twice.")
        factory = family.factories()[variant.name]
        doc = (f"{variant.description}\n{factory.constructor_doc}{CONSTRUCTOR_DOC}\n"
               f"References:\n    - {family.paper.citation()}\n")
        spec = ModelSpec(
            name=variant.name, constructor=make_constructor(factory, doc), factory=factory, family=family.name,
            paper=family.paper, default_input_shape=variant.inputs.shape,
            default_num_classes=variant.inputs.num_classes, task=task_name(variant.name),
            kind=kinds.get(variant.inputs.kind), reported=tuple(variant.reported),
            description=variant.description, recipe=variant.recipe, twin=variant.twin,
        )
        _REGISTRY[spec.name] = spec
        specs.append(spec)
    return specs


def family_modules() -> List[str]:
    """The modules that declare families: `zoo.models`' own, then `ZOO_FAMILIES`, then entry points."""
    own = [f"zoo.models.{m.name}" for m in pkgutil.iter_modules(zoo.models.__path__)]
    extra = [m.strip() for m in os.environ.get("ZOO_FAMILIES", "").split(",") if m.strip()]
    plugins = [e.value for e in entry_points(group="binary_zoo.families")]
    return [*own, *extra, *plugins]


def _load() -> None:
    for name in family_modules():
        if name in _FAMILIES:
            continue
        try:
            module = importlib.import_module(name)
        except ImportError as e:
            raise ImportError(f"Cannot import the model family module {name!r} ({e}); check ZOO_FAMILIES.") from e
        family = getattr(module, "FAMILY", None)
        if family is not None:
            _FAMILIES[name] = family
            register_family(family)


def list_models() -> List[ModelSpec]:
    """All registered models, family module by family module, in each table's order."""
    _load()
    return list(_REGISTRY.values())


def get(name: str) -> ModelSpec:
    """The record of `name` (an exact match first, then case-insensitive).

    Raises:
        UnknownModelError: naming the closest registered names and listing all.
    """
    _load()
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
