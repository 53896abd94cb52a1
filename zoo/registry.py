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
    """A publication a model implements."""

    title: str
    authors: str
    venue: str
    year: int
    url: str
    bibtex: str


@dataclass(frozen=True)
class Reported:
    """A result the paper reports (not measured by this project)."""

    dataset: str
    top1: float
    top5: Optional[float] = None
    source: str = "paper"
    note: str = ""


@dataclass(frozen=True)
class ModelSpec:
    """Everything the zoo knows about one registered model."""

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

    @property
    def weights(self) -> List[str]:
        """Tags of the published checkpoints (read from the weights index)."""
        from zoo import weights

        return weights.available_tags(self.name)

    def build(self, **kwargs):
        """Calls the public constructor with keyword arguments."""
        return self.constructor(**kwargs)


_REGISTRY: Dict[str, ModelSpec] = {}


class UnknownModelError(ValueError):
    """Raised for a model name that is not registered."""


def register(spec: ModelSpec) -> ModelSpec:
    """Adds a record; a name may be registered only once."""
    if spec.name in _REGISTRY:
        raise ValueError(f"Model {spec.name!r} is registered twice.")
    _REGISTRY[spec.name] = spec
    return spec


def list_models() -> List[ModelSpec]:
    """All registered models, in registration order (paper by paper)."""
    return list(_REGISTRY.values())


def get(name: str) -> ModelSpec:
    """The record of `name` (case-insensitive).

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


def register_family(family: str, paper: Paper, rows) -> None:
    """Registers `(constructor, factory, input defaults, reported results)` rows.

    The record's name is the constructor's name; its training task is `Train<name>`.
    """
    for constructor, factory_cls, inputs, reported in rows:
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
