"""Training recipes, one module per paper, and the `Train<Model>` task of every model.

A recipe is a `TrainTask` subclass registered under a name (`@recipe("...")`) that a
model's `Variant.recipe` names; a variant without one trains with its kind's default
(`KIND_TASKS`). The task `Train<Model>` is made from the registry: the recipe with the
model's factory as `model` (and its stage-1 twin as `pretrain_model`). A family kept
outside this package registers its recipes the same way, from its own module.
"""
import importlib
import pkgutil
from typing import Dict

from zookeeper import ComponentField, task

from zoo import registry
from zoo.training.kind_tasks import KIND_TASKS
from zoo.training.tasks import TrainTask

RECIPES: Dict[str, type] = {}


def recipe(name: str):
    """Registers a recipe class under `name` (a decorator)."""
    def register(cls: type) -> type:
        if name in RECIPES:
            raise ValueError(f"Recipe {name!r} is registered twice.")
        RECIPES[name] = cls
        return cls
    return register


def make_task(spec: registry.ModelSpec) -> type:
    """The `Train<Model>` zookeeper task of a registered model."""
    if spec.recipe is not None and spec.recipe not in RECIPES:
        raise ValueError(f"{spec.name} names the recipe {spec.recipe!r}, which is not registered; "
                         f"recipes: {', '.join(RECIPES)}.")
    base = RECIPES[spec.recipe] if spec.recipe else KIND_TASKS[spec.kind.name]
    attributes = {
        "__module__": __name__, "__qualname__": spec.task, "spec": spec,
        "__doc__": f"Trains {spec.name}: {spec.description}\n\n{base.__doc__ or ''}",
        "model": ComponentField(spec.factory, **base.model_fields),
    }
    if base.pretrain_twin is not None:
        attributes["pretrain_model"] = ComponentField(spec.factory, **{**base.model_fields, **base.pretrain_twin})
    return task(type(spec.task, (base,), attributes))


for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

TASKS: Dict[str, type] = {spec.task: make_task(spec) for spec in registry.list_models()}
globals().update(TASKS)
__all__ = ["RECIPES", "TASKS", "TrainTask", "make_task", "recipe", *TASKS]
