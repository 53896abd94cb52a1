"""The weights index: which checkpoints are published, and resolving `weights=`.

`weights/index.json` (installed as the package `zoo.checkpoints`) lists one entry per
published checkpoint. Entries are written by code (`zoo weights publish RUN_DIR`, see
`zoo.training.publish`) from finished training runs, never by hand. An entry's
checkpoint is either a `file` shipped inside the package, next to the index, or a
`url` downloaded once into the cache directory (`ZOO_CACHE_DIR`, see `cache_path`),
verified against its size and sha256 and written atomically (`download`); a cached
file that no longer matches is fetched again.

A model constructor's `weights` argument is `None`, a tag from the index (e.g.
`"fashion_mnist"`), or the path of a weights file. `ZOO_WEIGHTS_INDEX` points the zoo
at another index file (your own published checkpoints).
"""
import contextlib
import hashlib
import http.client
import json
import os
import re
import socket
import tempfile
import time
import urllib.request
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Dict, List, Optional, Tuple

from zoo.io import ZooError, atomic_write_bytes, fault_point

SCHEMA = 2
# Schema 1 kept each test metric as a key of its own; schema 2 keeps them in `scores`,
# next to the checkpoint's task `kind`. Schema-1 records are read as schema 2.
SCHEMA1_SCORES = {"classification": ("top1", "top5"), "segmentation": ("miou", "pixel_accuracy"),
                  "detection": ("map", "map50", "map75")}
# The keys every record of an index has, and the urls an entry may have.
REQUIRED = ("model", "tag", "include_top", "input_shape", "num_classes", "sha256")
SCHEMES = ("https://", "http://", "file://")
# A `.part` file last written this long ago belongs to no running download.
STALE_SECONDS = 24 * 3600

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


class WeightsError(ZooError):
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
        size: file size in bytes (0: unknown); a download is cut off past it; default 0.
        file: the file's name, relative to the index's folder, for a checkpoint shipped with the package; default None.
        url: where to download the checkpoint (`https://`, `http://` or `file://`) when it is not shipped; default None.
        options: architecture fields the checkpoint was trained with (e.g. `{"num_bases": 1}`); default empty.
        dataset: name of the dataset component it was trained and tested on (e.g. "FashionMNIST"); default None.
        kind: the name of the model's task kind (`zoo.kinds`); default "classification".
        scores: the test metrics (fractions) by key, as the kind names them (e.g.
            `{"top1": 0.9159, "top5": 0.9994}`); empty for a checkpoint without a top.
        test_examples: number of test examples behind `scores`; default None.
        cost: the model's cost (`zoo.complexity` totals such as "bops", "ops", "memory_mbit"); default empty.
        command: the `zoo` command that trained it; default None.
        git_commit: the commit of the code that trained it; default None.
        epochs: epochs of the (last) training stage; default None.
        pretrain_epochs: epochs of the pre-training stage (0: none); default None.
        wall_time_seconds: training time in seconds, all stages; default None.
        machine: a description of the training machine; default None.
        date: the publication date (ISO format); default None.
        evaluated_with: what measured `scores` (`zoo.stack.numerics()`, rounding's causes); default None.
        history: the training curve, a CSV file next to the index (stage, epoch, loss, accuracy, ...); default None.
    """

    model: str
    tag: str
    include_top: bool
    input_shape: Tuple[int, int, int]
    num_classes: int
    sha256: str
    size: int = 0
    file: Optional[str] = None
    url: Optional[str] = None
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
    evaluated_with: Optional[str] = None
    history: Optional[str] = None

    @classmethod
    def from_json(cls, record: dict) -> "Entry":
        """The entry of one record (a dict) of the index's `weights` list.

        Keys that are not fields of `Entry` are ignored; `input_shape` (a list in JSON)
        becomes a tuple; a schema-1 record's scores move to `scores`.
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
        """The entry as a JSON record, the inverse of `from_json`: `input_shape` as a
        list, fields that are `None` left out."""
        record = asdict(self)
        record["input_shape"] = list(self.input_shape)
        return {k: v for k, v in record.items() if v is not None}


def index_path() -> Path:
    """The index file in use (it may not exist): `ZOO_WEIGHTS_INDEX`, else the package's."""
    override = os.environ.get("ZOO_WEIGHTS_INDEX")
    return Path(override) if override else Path(str(resources.files("zoo.checkpoints").joinpath("index.json")))


def cache_dir() -> Path:
    """The folder of downloaded checkpoints (not created here): `ZOO_CACHE_DIR`, else
    ~/.keras/binary-zoo; a leading `~` is expanded."""
    return Path(os.environ.get("ZOO_CACHE_DIR") or "~/.keras/binary-zoo").expanduser()


def cache_path(entry: Entry) -> Path:
    """Where `fetch` keeps a `url` entry: `cache_dir()/<model>/<url key>/<file name>`.

    The key is the first 16 hex digits of the url's sha256, so two urls that end in the
    same file name never share a cached file.
    """
    key = hashlib.sha256(entry.url.encode("utf-8")).hexdigest()[:16]
    name = entry.url.split("?")[0].split("#")[0].rstrip("/").rsplit("/", 1)[-1]
    return cache_dir() / _safe(entry.model) / key / _safe(name)


def _safe(name: str) -> str:  # one harmless file name: no separator, no leading dot
    return re.sub(r"[^A-Za-z0-9_.+-]", "_", name).lstrip(".") or "checkpoint"


def _fix(path: Path) -> str:  # how to repair the index `path`: a user's own, or the package's
    if os.environ.get("ZOO_WEIGHTS_INDEX"):
        return f"fix it, or point ZOO_WEIGHTS_INDEX (now {path}) at an index written by `zoo weights publish`"
    return "reinstall binary-zoo"


@lru_cache(maxsize=4)
def _read(path: Path, stamp: Tuple[int, int]) -> Tuple[Entry, ...]:
    try:
        with open(path, encoding="utf-8") as f:
            index = json.load(f)
    except (OSError, ValueError) as e:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        what = e.strerror if isinstance(e, OSError) else f"not valid JSON: {e}"
        raise WeightsError(f"Cannot read the weights index {path} ({what}); {_fix(path)}.") from None
    records = index.get("weights") if isinstance(index, dict) else None
    if not isinstance(records, list) or not all(isinstance(r, dict) for r in records):
        raise WeightsError(f'{path} is not a weights index: it must be a JSON object whose "weights" is a list '
                           f"of records; {_fix(path)}.")
    if index.get("schema") not in (1, SCHEMA):
        raise WeightsError(f"{path} has schema {index.get('schema')!r}; this binary-zoo reads schemas 1 and {SCHEMA}.")
    found = []
    for i, record in enumerate(records):
        missing = [k for k in REQUIRED if k not in record]
        try:
            if missing:
                raise WeightsError(f"lacks the required key {missing[0]!r}")
            found.append(Entry.from_json(record))
        except (TypeError, ValueError) as e:
            problem = e if missing else f"is invalid ({e})"
            raise WeightsError(f"Record {i} of the weights index {path} (model {record.get('model')!r}, tag "
                               f"{record.get('tag')!r}) {problem}; {_fix(path)}.") from None
    return tuple(found)


def entries(path: Optional[Path] = None) -> Tuple[Entry, ...]:
    """Every entry of the index in use, or of `path` (re-read when the file changes).

    Arguments:
        path: an index file; default None, the index in use (`index_path()`).

    Returns:
        A tuple of `Entry`, in the file's order; empty when the file does not exist.

    Raises:
        WeightsError: the missing file is the one `ZOO_WEIGHTS_INDEX` names; the file is a folder, unreadable,
            not JSON, not an object with a `weights` list of records, or has a record without a `REQUIRED` key
            or with an invalid value; or its schema is not one this version reads (`SCHEMA`).
    """
    path = Path(path) if path else index_path()
    if not path.exists():
        if str(path) == os.environ.get("ZOO_WEIGHTS_INDEX"):
            raise WeightsError(f"ZOO_WEIGHTS_INDEX={path} does not exist; unset it or point it at an index.json.")
        return ()
    stat = path.stat()  # the size too: two writes within the clock's resolution must not look the same
    return _read(path, (stat.st_mtime_ns, stat.st_size))


def write_index(items, path: Optional[Path] = None) -> Path:
    """Writes the `Entry` records `items` (sorted by model, tag, top first) atomically
    over the whole content of the index `path` (default: the index in use); returns
    the path written."""
    path = Path(path or index_path())
    ordered = sorted(items, key=lambda e: (e.model, e.tag, not e.include_top))
    text = json.dumps({"schema": SCHEMA, "weights": [e.to_json() for e in ordered]}, indent=2) + "\n"
    atomic_write_bytes(path, text.encode("utf-8"))
    return path


def available_tags(model: str) -> List[str]:
    """The distinct tags published for the registered `model` in the index in use, with
    or without the classifier, sorted; empty if none."""
    return sorted({e.tag for e in entries() if e.model == model})


def sha256(path: os.PathLike) -> str:
    """The hex sha256 of the file `path`, read in chunks."""
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def find(model: str, tag: str, include_top: bool, task: str) -> Entry:
    """The first entry of the index in use for `model` and `tag`, with or without the classifier
    (`include_top`).

    Raises:
        WeightsError: the tag is not published for this model; the message lists the available
            tags and the training command (`zoo <task> ...`, `task` e.g. "TrainBiRealNet20").
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
    """The path of an entry's checkpoint, packaged, cached (`cache_path`) or downloaded
    now (`download`), its sha256 checked against the entry's; a cached file that does
    not match is downloaded again.

    Raises:
        WeightsError: a packaged file missing or corrupt, an entry with neither a `file`
            nor a `url`, or a download that fails (see `download`).
    """
    where = f"{entry.model} ({entry.tag})"
    if entry.file:
        path = index_path().parent / entry.file
        if not path.exists() or sha256(path) != entry.sha256:
            problem = f"does not match its sha256 {entry.sha256}" if path.exists() else "is missing"
            fix = (f"it is the file next to your index ZOO_WEIGHTS_INDEX={index_path()}: restore it, or re-publish "
                   "it with `zoo weights publish RUN_DIR --force`" if os.environ.get("ZOO_WEIGHTS_INDEX")
                   else "reinstall binary-zoo")
            raise WeightsError(f"Checkpoint {path} for {where} {problem}; {fix}.")
        return path
    if not entry.url:
        raise WeightsError(f"The entry {where} of the weights index {index_path()} has neither a file nor a url.")
    path = cache_path(entry)
    if path.exists():
        if sha256(path) == entry.sha256:
            return path
        print(f"binary-zoo: cached {path} does not match its sha256; downloading it again.")
    download(entry.url, path, entry.sha256, size=entry.size)
    return path


def download(url: str, path: Path, expected_sha256: str, timeout: float = 60.0, size: int = 0) -> None:
    """Downloads `url` to `path` atomically, keeping it only if its size and sha256 match.

    The data goes to a hidden `.<name>.<pid>@<host>.<random>.part` file in `path`'s
    folder (created if missing), renamed to `path` (mode 0o644) once verified, and
    removed on any failure, Ctrl-C included. A process killed outright (SIGKILL, power
    cut) cannot remove it, so each download first removes the `.part` files of its
    folder whose writer is gone: a process of this host that no longer runs, or any
    writer a day (`STALE_SECONDS`) after its last write.

    Arguments:
        url: the address to download (`https://`, `http://` or `file://`).
        path: where to write the file.
        expected_sha256: the hex sha256 the file must have.
        timeout: seconds to wait for the connection and for each read; default 60.
        size: the file's size in bytes (0: unknown): at most one byte more is read, fewer is a
            download cut short; default 0.

    Raises:
        WeightsError: the url is not https, http or file; the folder cannot be written; the
            download fails (no network, a timeout, a dropped connection), is cut short or longer
            than `size`, or its sha256 is not `expected_sha256`.
    """
    path = Path(path)
    if not url.lower().startswith(SCHEMES):
        raise WeightsError(f"Cannot download {url[:60]!r}: only https://, http:// and file:// urls are supported; "
                           f"fix the url of its entry in the weights index {index_path()}.")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _sweep(path.parent)
        tmp = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.{_writer()}.", suffix=".part",
                                          delete=False)
    except OSError as e:
        raise WeightsError(f"Cannot write {path}: {path.parent} is not a writable folder ({e.strerror}). Point "
                           f"ZOO_CACHE_DIR (now {cache_dir()}) at a writable folder, or put the file there yourself "
                           f"(sha256 {expected_sha256}).") from None
    digest, got = hashlib.sha256(), 0
    try:
        with tmp, urllib.request.urlopen(url, timeout=timeout) as response:
            while chunk := response.read(min(1 << 20, size + 1 - got) if size else 1 << 20):
                got += len(chunk)
                if size and got > size:
                    raise WeightsError(f"{url} sent more than the published size of {size} bytes; stopped reading "
                                       "and kept nothing: the server's copy is not the published checkpoint.")
                digest.update(chunk)
                tmp.write(chunk)
                fault_point("download.chunk")
            expected = size or got + (getattr(response, "length", None) or 0)  # http's unread Content-Length
        if got < expected:
            raise http.client.IncompleteRead(b"", expected - got)
        if digest.hexdigest() != expected_sha256:
            raise WeightsError(f"Checksum mismatch for {url}: got sha256 {digest.hexdigest()}, the index says "
                               f"{expected_sha256}. The file was not kept; the server's copy is not the published "
                               "checkpoint.")
        os.chmod(tmp.name, 0o644)
        os.replace(tmp.name, path)
    except http.client.IncompleteRead as e:  # a Content-Length or a chunk not delivered in full
        got += len(e.partial)
        of = f" of {size}" if size else f" of at least {got + e.expected}" if e.expected else ""
        raise WeightsError(f"Download of {url} got {got}{of} bytes; the download was cut short, try again.") from None
    except (OSError, http.client.HTTPException) as e:  # URLError, timeouts, a reset connection
        reason = getattr(e, "reason", None) or repr(e)
        raise WeightsError(f"Could not download {url} ({reason}). Check the network connection, or put the file at "
                           f"{path} yourself (sha256 {expected_sha256}).") from None
    finally:  # whatever happened, KeyboardInterrupt included (after the rename there is nothing to remove)
        with contextlib.suppress(OSError):
            os.unlink(tmp.name)


def _writer() -> str:  # `<pid>@<host>`, which names a `.part` file's writer for `_sweep`
    return f"{os.getpid()}@{re.sub(r'[^A-Za-z0-9-]', '-', socket.gethostname())[:40]}"


def _sweep(folder: Path) -> None:  # removes the `.part` files of `folder` whose writer is gone
    host = _writer().split("@")[1]
    for part in folder.glob(".*.part"):
        writer = re.search(r"\.(\d{1,9})@([A-Za-z0-9-]*)\.\w+\.part$", part.name)
        with contextlib.suppress(OSError):  # removed meanwhile, or a read-only folder
            gone = writer and writer[2] == host and os.name == "posix" and not _alive(int(writer[1]))
            if gone or time.time() - part.stat().st_mtime > STALE_SECONDS:
                part.unlink()


def _alive(pid: int) -> bool:
    try:
        return os.kill(pid, 0) is None  # signal 0 only asks whether the process exists
    except OSError as e:  # a PermissionError: it exists, another user's
        return not isinstance(e, ProcessLookupError)


def resolve(model: str, weights: Optional[str], include_top: bool, task: str) -> Tuple[Optional[Path], Optional[Entry]]:
    """Turns a constructor's `weights` argument into `(path, entry)`: `(None, None)` for `None`,
    `(Path, None)` for a user's file, `(None, Entry)` for a published tag (fetched later with
    `fetch`, once the model's arguments are checked against it).

    A path has a directory separator or a weights suffix (".h5", ".keras"); any other string is a
    tag, even where a file or folder of that name exists. `include_top` is whether the model has
    its classifier (a tag's entry must match); `task`, its training task, is quoted in the
    message of an unknown tag.

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
