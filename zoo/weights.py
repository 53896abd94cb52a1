"""The weights index: which checkpoints are published, and resolving `weights=`.

`weights/index.json` (installed as the package `zoo.checkpoints`) lists one entry per
published checkpoint; entries are written by code from finished training runs, never
by hand. A model constructor's `weights` argument is either `None`, a tag from the
index (e.g. `"fashion_mnist"`), or the path of a weights file.
"""
import hashlib
import json
import os
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import List, Optional, Tuple


class WeightsError(ValueError):
    """A `weights=` argument that cannot be honoured; the message says why and how."""


@dataclass(frozen=True)
class Entry:
    """One published checkpoint."""

    model: str
    tag: str
    include_top: bool
    input_shape: Tuple[int, int, int]
    num_classes: int
    file: str
    sha256: str

    @classmethod
    def from_json(cls, record: dict) -> "Entry":
        return cls(
            model=record["model"],
            tag=record["tag"],
            include_top=bool(record["include_top"]),
            input_shape=tuple(record["input_shape"]),
            num_classes=int(record["num_classes"]),
            file=record["file"],
            sha256=record["sha256"],
        )


def index_path() -> Path:
    """Location of the installed index."""
    return Path(str(resources.files("zoo.checkpoints").joinpath("index.json")))


@lru_cache(maxsize=1)
def entries() -> Tuple[Entry, ...]:
    """Every entry of the index."""
    with open(index_path(), encoding="utf-8") as f:
        return tuple(Entry.from_json(r) for r in json.load(f)["weights"])


def available_tags(model: str) -> List[str]:
    """Sorted tags published for `model`."""
    return sorted({e.tag for e in entries() if e.model == model})


def sha256(path: os.PathLike) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def find(model: str, tag: str, include_top: bool, task: str) -> Entry:
    """The entry for `model` and `tag`.

    Raises:
        WeightsError: the tag is not published for this model (the message lists the
            available tags and the command that trains a checkpoint).
    """
    for entry in entries():
        if entry.model == model and entry.tag == tag and entry.include_top == include_top:
            return entry
    tags = available_tags(model)
    listed = ", ".join(f'"{t}"' for t in tags) if tags else "none yet"
    raise WeightsError(
        f'weights="{tag}" is not published for {model}'
        f"{'' if include_top else ' without its top'}; available: {listed}. "
        f"Train one with: zoo {task} output_dir=runs/{model} and load it with "
        f"weights='runs/{model}/model.weights.h5', or pass weights=None."
    )


def resolve(model: str, weights: Optional[str], include_top: bool, task: str) -> Tuple[Optional[Path], Optional[Entry]]:
    """Turns a constructor's `weights` argument into a local file (and its entry).

    Raises:
        WeightsError: unknown tag, or a checkpoint whose file does not match its sha256.
    """
    if weights is None:
        return None, None
    if os.path.exists(str(weights)):
        return Path(weights), None
    if os.sep in str(weights) or str(weights).endswith(".h5"):
        raise WeightsError(f"weights file {weights!r} does not exist.")
    entry = find(model, str(weights), include_top, task)
    path = index_path().parent / entry.file
    if not path.exists() or sha256(path) != entry.sha256:
        raise WeightsError(
            f"Checkpoint {path} for {model} ({entry.tag}) is missing or does not match "
            f"its sha256 {entry.sha256}; reinstall binary-zoo."
        )
    return path, entry
