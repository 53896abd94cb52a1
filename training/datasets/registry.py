"""The one list of dataset names: `DATASETS`, filled by `@register_dataset`.

A registered name is its class's name, which is what zookeeper's CLI matches
(`zoo TrainBiRealNet20 dataset=Cifar10`) and what `get_dataset` looks up (`zoo evaluate
--dataset`, the `dataset` of a run's run.json and of the weights index).
"""

from typing import Dict, Type, TypeVar

from zookeeper.tf import Dataset

DatasetClass = TypeVar("DatasetClass", bound=Type[Dataset])

# Every dataset component the CLI accepts, by name, sorted (whatever the import order).
DATASETS: Dict[str, Type[Dataset]] = {}


def register_dataset(cls: DatasetClass) -> DatasetClass:
    """Class decorator: adds a dataset component to `DATASETS` under its class name."""
    ordered = sorted({**DATASETS, cls.__name__: cls}.items())
    DATASETS.clear()
    DATASETS.update(ordered)
    return cls


def get_dataset(name: str) -> Type[Dataset]:
    """The dataset component class called `name` (case-insensitive).

    Arguments:
        name: a key of `DATASETS`.

    Returns:
        The component class (instantiate and configure it to use it).

    Raises:
        ValueError: for an unknown name.
    """
    for known, cls in DATASETS.items():
        if known.lower() == name.lower():
            return cls
    raise ValueError(f"Unknown dataset '{name}'; valid names: {', '.join(DATASETS)}.")
