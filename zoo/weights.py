"""The weights index: which checkpoints are published, and resolving `weights=`.

`weights/index.json` (installed as the package `zoo.checkpoints`) lists one entry per
published checkpoint. Entries are written by code (`zoo weights publish RUN_DIR`, see
`zoo.training.publish`) from finished training runs, never by hand. An entry's
checkpoint is either a `file` shipped inside the package, next to the index, or a
`url` (`https://...` or `file://...`) downloaded once into the cache directory
(`ZOO_CACHE_DIR`, default `~/.keras/binary-zoo`), verified against its sha256 and
written atomically; a cached file that no longer matches is fetched again.

A model constructor's `weights` argument is `None`, a tag from the index (e.g.
`"fashion_mnist"`), or the path of a weights file. `ZOO_WEIGHTS_INDEX` points the zoo
at another index file (your own published checkpoints).
"""
import hashlib
import json
import os
import re
import tempfile
import urllib.error
import urllib.request
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from zoo.io import atomic_write_bytes

SCHEMA = 2
# Schema 1 kept each test metric as a key of its own; schema 2 keeps them in `scores`,
# next to the checkpoint's task `kind`. Schema-1 records are read as schema 2.
SCHEMA1_SCORES = {"classification": ("top1", "top5"), "segmentation": ("miou", "pixel_accuracy"),
                  "detection": ("map", "map50", "map75")}


# A tag is a short name: it becomes part of file names next to the index.
TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


# What makes `weights=` a path rather than a tag (besides a directory separator).
PATH_SUFFIXES = (".h5", ".keras")


def check_tag(tag: str) -> str:
    """`tag`, or a WeightsError when it is not a tag (it names files next to the index)."""
    if not isinstance(tag, str) or not TAG.fullmatch(tag) or ".." in tag:
        raise WeightsError(f"{tag!r} is not a weights tag: use up to 64 letters, digits, '_', '-' and '.', "
                           "starting with a letter or digit (e.g. fashion_mnist).")
    return tag


class WeightsError(ValueError):
    """A `weights=` argument that cannot be honoured; the message says why and how.

    Also raised for an unreadable index or a checkpoint that cannot be fetched. It is a
    `ValueError`, so code catching `ValueError` catches it too.
    """


@dataclass(frozen=True)
class Entry:
    """One published checkpoint: what it fits, where it is, and how it was made.

    Entries are frozen records, read from and written to the index by code.

    Arguments:
        model: the registered model name (e.g. "BiRealNet20").
        tag: the weights tag, usually the dataset's (e.g. "fashion_mnist").
        include_top: whether the checkpoint includes the classifier.
        input_shape: (height, width, channels) the checkpoint was trained on.
        num_classes: number of classes of its classifier.
        sha256: hex sha256 of the checkpoint file.
        size: file size in bytes; default 0.
        file: the file's name, relative to the index's folder, for a checkpoint shipped
            with the package; default None.
        url: where to download the checkpoint (`https://...` or `file://...`) when it
            is not shipped; default None.
        options: architecture fields the checkpoint was trained with (e.g.
            `{"num_bases": 1}`); default empty.
        dataset: name of the dataset component it was trained and tested on (e.g.
            "FashionMNIST"); default None.
        kind: the name of the model's task kind (`zoo.kinds`); default "classification".
        scores: the test metrics (fractions) by key, as the kind names them (e.g.
            `{"top1": 0.9159, "top5": 0.9994}`); empty for a checkpoint without a top.
        test_examples: number of test examples behind `scores`; default None.
        cost: the model's cost (`zoo.complexity` totals such as "bops", "ops",
            "memory_mbit"); default empty.
        command: the `zoo` command that trained it; default None.
        git_commit: the commit of the code that trained it; default None.
        epochs: epochs of the (last) training stage; default None.
        pretrain_epochs: epochs of the pre-training stage (0: none); default None.
        wall_time_seconds: training time in seconds, all stages; default None.
        machine: a description of the training machine; default None.
        date: the publication date (ISO format); default None.
        history: the training curve, a CSV file next to the index (stage, epoch, loss,
            accuracy, ...); default None.
    """

    model: str
    tag: str
    include_top: bool
    input_shape: Tuple[int, int, int]
    num_classes: int
    sha256: str
    size: int = 0
    file: Optional[str] = None  # relative to the index's folder
    url: Optional[str] = None
    # Architecture fields the checkpoint was trained with (e.g. {"num_bases": 1}).
    options: Dict[str, object] = field(default_factory=dict)
    dataset: Optional[str] = None
    kind: str = "classification"
    scores: Dict[str, float] = field(default_factory=dict)
    test_examples: Optional[int] = None
    cost: Dict[str, float] = field(default_factory=dict)
    command: Optional[str] = None
    git_commit: Optional[str] = None
    epochs: Optional[int] = None
    pretrain_epochs: Optional[int] = None
    wall_time_seconds: Optional[float] = None
    machine: Optional[str] = None
    date: Optional[str] = None
    # The training curve: a CSV next to the index (stage, epoch, loss, accuracy, ...).
    history: Optional[str] = None

    @classmethod
    def from_json(cls, record: dict) -> "Entry":
        """Builds an entry from one record of the index's `weights` list.

        Arguments:
            record: the JSON record (a dict). Keys that are not fields of `Entry` are
                ignored; `input_shape` (a list in JSON) becomes a tuple.

        Returns:
            The `Entry`.
        """
        if "scores" not in record:  # schema 1
            kind = next((k for k, keys in SCHEMA1_SCORES.items() if record.get(keys[0]) is not None),
                        "classification")
            record = {**record, "kind": kind,
                      "scores": {k: record[k] for k in SCHEMA1_SCORES[kind] if record.get(k) is not None}}
        check_tag(record.get("tag"))  # an index names files by tag: none may leave its folder
        known = {k: v for k, v in record.items() if k in cls.__dataclass_fields__}
        return cls(**{**known, "input_shape": tuple(record["input_shape"])})

    def to_json(self) -> dict:
        """The entry as a JSON record, the inverse of `from_json`.

        Returns:
            A dict of the entry's fields, `input_shape` as a list and fields that are
            `None` left out.
        """
        record = asdict(self)
        record["input_shape"] = list(self.input_shape)
        return {k: v for k, v in record.items() if v is not None}


def index_path() -> Path:
    """The index in use: `ZOO_WEIGHTS_INDEX`, else the one installed with the package.

    Returns:
        The path of the index file (it may not exist).
    """
    override = os.environ.get("ZOO_WEIGHTS_INDEX")
    if override:
        return Path(override)
    return Path(str(resources.files("zoo.checkpoints").joinpath("index.json")))


def cache_dir() -> Path:
    """Where downloaded checkpoints are kept: `ZOO_CACHE_DIR`, else ~/.keras/binary-zoo.

    Returns:
        The cache folder's path (not created here).
    """
    return Path(os.environ.get("ZOO_CACHE_DIR") or Path("~/.keras/binary-zoo").expanduser())


@lru_cache(maxsize=4)
def _read(path: Path, mtime: float) -> Tuple[Entry, ...]:
    with open(path, encoding="utf-8") as f:
        index = json.load(f)
    if index.get("schema") not in (1, SCHEMA):
        raise WeightsError(f"{path} has schema {index.get('schema')!r}; this binary-zoo reads schemas 1 and {SCHEMA}.")
    return tuple(Entry.from_json(r) for r in index["weights"])


def entries(path: Optional[Path] = None) -> Tuple[Entry, ...]:
    """Every entry of the index in use, or of `path` (re-read when the file changes).

    Arguments:
        path: an index file; default None, the index in use (`index_path()`).

    Returns:
        A tuple of `Entry`, in the file's order; empty when the file does not exist.

    Raises:
        WeightsError: the missing file is the one `ZOO_WEIGHTS_INDEX` names, or the
            index's schema is not the one this version reads (`SCHEMA`).
    """
    path = Path(path) if path else index_path()
    if not path.exists():
        if str(path) == os.environ.get("ZOO_WEIGHTS_INDEX"):
            raise WeightsError(f"ZOO_WEIGHTS_INDEX={path} does not exist; unset it or point it at an index.json.")
        return ()
    return _read(path, path.stat().st_mtime)


def write_index(items, path: Optional[Path] = None) -> Path:
    """Writes entries (sorted by model, tag, top first) atomically.

    Arguments:
        items: the `Entry` records to write (an iterable); they replace the file's
            whole content.
        path: the index file; default None, the index in use (`index_path()`).

    Returns:
        The path written.
    """
    path = Path(path or index_path())
    ordered = sorted(items, key=lambda e: (e.model, e.tag, not e.include_top))
    text = json.dumps({"schema": SCHEMA, "weights": [e.to_json() for e in ordered]}, indent=2) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))
    return path


def available_tags(model: str) -> List[str]:
    """Sorted tags published for `model`.

    Arguments:
        model: a registered model name (e.g. "BiRealNet20").

    Returns:
        The distinct tags of its entries in the index in use, with or without the
        classifier, sorted; empty if none.
    """
    return sorted({e.tag for e in entries() if e.model == model})


def sha256(path: os.PathLike) -> str:
    """Hex sha256 of a file, read in chunks.

    Arguments:
        path: the file.

    Returns:
        The digest as a hex string.
    """
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def find(model: str, tag: str, include_top: bool, task: str) -> Entry:
    """The entry for `model` and `tag`.

    Arguments:
        model: a registered model name.
        tag: the weights tag (e.g. "fashion_mnist").
        include_top: whether the checkpoint must include the classifier.
        task: the model's training task (e.g. "TrainBiRealNet20"), quoted in the
            error message's training command.

    Returns:
        The first matching `Entry` of the index in use.

    Raises:
        WeightsError: the tag is not published for this model (the message lists the
            available tags and the command that trains a checkpoint).
    """
    check_tag(tag)
    for entry in entries():
        if entry.model == model and entry.tag == tag and entry.include_top == include_top:
            return entry
    tags = available_tags(model)
    listed = ", ".join(f'"{t}"' for t in tags) if tags else "none yet"
    dataset = " dataset=ImageNet dataset.manual_dir=/path/to/imagenet" if tag == "imagenet" else ""
    raise WeightsError(
        f'weights="{tag}" is not published for {model}'
        f"{'' if include_top else ' without its top'}; available: {listed}. "
        f"Train one with: zoo {task}{dataset} output_dir=runs/{model} and load it with "
        f"weights='runs/{model}/model.weights.h5', or pass weights=None (a file is a path with a "
        "separator or a .h5 suffix: './name.h5')."
    )


def fetch(entry: Entry) -> Path:
    """The verified local file of an entry: packaged, cached, or downloaded now.

    A cached file whose sha256 does not match is downloaded again.

    Arguments:
        entry: an index entry.

    Returns:
        The path of the checkpoint file, its sha256 checked against the entry's.

    Raises:
        WeightsError: a packaged file missing or corrupt, an entry with neither a `file`
            nor a `url`, a download that fails (no network) or whose sha256 does not
            match the index.
    """
    if entry.file:
        path = index_path().parent / entry.file
        if not path.exists() or sha256(path) != entry.sha256:
            raise WeightsError(
                f"Checkpoint {path} for {entry.model} ({entry.tag}) is missing or does not "
                f"match its sha256 {entry.sha256}; reinstall binary-zoo."
            )
        return path
    if not entry.url:
        raise WeightsError(f"The index entry {entry.model} ({entry.tag}) has neither a file nor a url.")
    path = cache_dir() / entry.model / entry.url.rstrip("/").rsplit("/", 1)[-1]
    if path.exists():
        if sha256(path) == entry.sha256:
            return path
        print(f"binary-zoo: cached {path} does not match its sha256; downloading it again.")
    download(entry.url, path, entry.sha256)
    return path


def download(url: str, path: Path, expected_sha256: str, timeout: float = 60.0) -> None:
    """Downloads `url` to `path` atomically, keeping it only if its sha256 matches.

    The data goes to a temporary file in `path`'s folder (created if missing), renamed
    to `path` once verified; on failure the temporary file is removed.

    Arguments:
        url: the address to download (`https://...` or `file://...`).
        path: where to write the file.
        expected_sha256: the hex sha256 the file must have.
        timeout: seconds to wait for the connection and each read; default 60.

    Raises:
        WeightsError: the download fails (a `URLError` or `OSError`, e.g. no network),
            or the downloaded data's sha256 is not `expected_sha256`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    tmp = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", suffix=".part", delete=False)
    try:
        with tmp, urllib.request.urlopen(url, timeout=timeout) as response:
            for chunk in iter(lambda: response.read(1 << 20), b""):
                digest.update(chunk)
                tmp.write(chunk)
    except (urllib.error.URLError, OSError) as e:
        os.unlink(tmp.name)
        reason = getattr(e, "reason", e)
        raise WeightsError(
            f"Could not download {url} ({reason}). Check the network connection, or put "
            f"the file at {path} yourself (sha256 {expected_sha256})."
        ) from None
    if digest.hexdigest() != expected_sha256:
        os.unlink(tmp.name)
        raise WeightsError(
            f"Checksum mismatch for {url}: got sha256 {digest.hexdigest()}, the index says "
            f"{expected_sha256}. The file was not kept; the server's copy is not the "
            "published checkpoint."
        )
    os.replace(tmp.name, path)


def resolve(model: str, weights: Optional[str], include_top: bool, task: str) -> Tuple[Optional[Path], Optional[Entry]]:
    """Turns a constructor's `weights` argument into a user's file or an index entry
    (fetched later with `fetch`, once the model's arguments are checked against it).

    Arguments:
        model: the registered model name.
        weights: `None`, a published tag, or the path of a weights file. A path has a
            directory separator or a weights suffix (".h5", ".keras"); any other string
            is a tag, even where a file or folder of that name exists.
        include_top: whether the model includes the classifier (a tag's entry must
            match).
        task: the model's training task, quoted in the error message of an unknown tag.

    Returns:
        A pair `(path, entry)`: `(None, None)` for `weights=None`, `(Path, None)` for
        an existing file, `(None, Entry)` for a published tag.

    Raises:
        WeightsError: unknown tag, or a path that does not exist.
    """
    if weights is None:
        return None, None
    text = str(weights)
    if isinstance(weights, os.PathLike) or "/" in text or os.sep in text or text.endswith(PATH_SUFFIXES):
        if not os.path.exists(text):
            raise WeightsError(f"weights file {text!r} does not exist.")
        return Path(text), None
    return None, find(model, text, include_top, task)
