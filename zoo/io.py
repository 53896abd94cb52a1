"""Atomic file writes, the one helper every writer of the package uses, and the zoo's
one error type for a user's mistake (`ZooError`).

A file is written as a temporary file in its own folder and renamed over the
destination, so a reader, or a process killed mid-write, sees the old content or the
new one, never a mix.
"""
import contextlib
import datetime
import fcntl
import json
import os
import re
import signal
import socket
import tempfile
import warnings
from pathlib import Path


class ZooError(ValueError):
    """A mistake of the user's (an argument, a file, a folder, a setting) that the zoo
    can name: the message says what is wrong, which file or value, and how to fix it.

    The `zoo` command prints it as one line and exits with status 2. Errors of the
    libraries underneath (h5py, JSON, OSError) become a `ZooError` where the zoo knows
    what it was reading. It is a `ValueError`, so code catching that catches it too.
    """


_REACHED: dict = {}


def fault_point(name: str) -> None:
    """A place where the fault-injection tests (tests/test_faults*.py) kill the process.

    With `ZOO_KILL_AT=name` (or `name:n`) in the environment, the process kills itself
    with SIGKILL the first (n-th) time it reaches `name`, as a power cut or the OOM
    killer would; otherwise this does nothing.
    """
    point, _, n = os.environ.get("ZOO_KILL_AT", "").partition(":")
    if point and point == name:
        _REACHED[name] = _REACHED.get(name, 0) + 1
        if _REACHED[name] == int(n or 1):
            os.kill(os.getpid(), signal.SIGKILL)


def fault_target() -> str:
    """The fault point `ZOO_KILL_AT` names ("" without it), for code that must arm one."""
    return os.environ.get("ZOO_KILL_AT", "").partition(":")[0]


@contextlib.contextmanager
def exclusive_lock(path: Path, what: str):
    """Holds an exclusive lock on the file `path` (created if missing) for a `with` block.

    The lock is the kernel's (`flock`): it is released when the holder exits or is
    killed, so a stale lock file never blocks anyone. The file records the holder's
    PID, host and start time, which a refused second process is told.

    Arguments:
        path: the lock file.
        what: what the lock guards, for the error message (e.g. "the run folder runs/x").

    Raises:
        ZooError: another process holds the lock.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a+", encoding="utf-8") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            holder = f.read().strip() or "another process"
            raise ZooError(f"{what} is in use by {holder} (lock {path}); wait for it to finish or stop it.") from None
        f.seek(0)
        f.truncate()
        f.write(f"process {os.getpid()} on {socket.gethostname()} since "
                f"{datetime.datetime.now().isoformat(timespec='seconds')}\n")
        f.flush()
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def writable_file(path: Path) -> Path:
    """`path`, checked to be a file the zoo can write (before work whose result goes there).

    Raises:
        ZooError: `path` is a folder, lies under a file, or its folder (or the nearest
            existing one above it) cannot be written.
    """
    path = Path(path).expanduser()
    if path.is_dir():
        raise ZooError(f"{path} is a folder; name the file to write in it (e.g. {path / 'model'}{path.suffix}).")
    existing = next(p for p in (path.parent, *path.parent.parents) if p.exists())
    if not existing.is_dir():
        raise ZooError(f"cannot write {path}: {existing} is a file, not a folder.")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as e:
        raise ZooError(f"cannot write {path}: {existing} is not writable ({e.strerror}); pick another place.") from None
    return path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Writes `data` to `path` atomically; missing folders are created, mode 0o644.
    On any error (a full disk, an interrupt) the temporary file is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False)
    with _removed_on_error(tmp.name):
        with tmp:
            tmp.write(data)
        os.chmod(tmp.name, 0o644)
        os.replace(tmp.name, path)


@contextlib.contextmanager
def _removed_on_error(name):
    try:
        yield
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(name)
        raise


def write_json(path: Path, record: dict) -> None:
    """Writes `record` as JSON (sorted keys, indent 2) atomically."""
    atomic_write_bytes(path, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def read_json(path: Path) -> dict:
    """The JSON object in `path`, or an empty dict when the file does not exist.

    Raises:
        ZooError: the file is not a JSON object (damaged, or not the zoo's), or is a folder.
    """
    path = Path(path)
    if not path.exists():
        return {}
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ZooError(f"{path} is not readable JSON ({e}); restore it or remove it (the zoo writes it).") from None
    if not isinstance(record, dict):
        raise ZooError(f"{path} holds a JSON {type(record).__name__}, not an object; restore it or remove it.")
    return record


def save_model(model, path: Path, weights_only: bool) -> None:
    """Saves a Keras model's weights (or the whole model, without optimizer) atomically.

    Keras picks the format from the suffix, so the temporary file keeps it: `path`
    should end with ".h5" (what Larq Compute Engine and larq read).
    """
    path = Path(path)
    tmp = path.with_name(".tmp-" + path.name)
    with _removed_on_error(tmp), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras calls h5 "legacy"
        if weights_only:
            model.save_weights(str(tmp))
        else:
            model.save(str(tmp), include_optimizer=False)
        os.replace(tmp, path)


def load_weights(model, path: Path) -> None:
    """Loads a weights file (h5) into a Keras model.

    Raises:
        ZooError: the file is not an HDF5 weights file, is truncated, or holds the
            weights of another model or input shape; the message names the file and the
            first layer that differs.
    """
    try:
        model.load_weights(str(path))
    except (OSError, ValueError) as e:
        raise ZooError(f"weights file {path} {_misfit(model, path) or e}.") from None


def _misfit(model, path: Path) -> str:
    """Why the weights file `path` does not load into `model` ("" when it cannot tell)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            saved = [(name, [f[name][w].shape for w in f[name].attrs["weight_names"]])
                     for name in (n.decode() if isinstance(n, bytes) else n for n in f.attrs["layer_names"])]
    except (OSError, KeyError) as e:
        sizes = re.search(r"eof = (\d+).*stored_eof = (\d+)", str(e))
        if sizes:
            return (f"is truncated ({int(sizes.group(1)):,} of {int(sizes.group(2)):,} bytes); "
                    "copy or download it again")
        return f"is not an HDF5 weights file ({str(e).splitlines()[0]}); pass a file written by save_weights"
    saved = [(name, [tuple(s) for s in shapes]) for name, shapes in saved if shapes]
    mine = [(layer.name, [tuple(w.shape) for w in layer.trainable_weights + layer.non_trainable_weights])
            for layer in model.layers if layer.weights]
    for (name, shapes), (saved_name, saved_shapes) in zip(mine, saved):
        if (name, shapes) != (saved_name, saved_shapes):
            return (f"holds another model's weights: its layer {saved_name!r} has weights of shapes {saved_shapes} "
                    f"where {model.name}'s layer {name!r} has {shapes}; build the model the file was saved from "
                    "(input_shape, num_classes, include_top, variant options)")
    if len(mine) != len(saved):
        return (f"holds {len(saved)} layers with weights, {model.name} has {len(mine)}; build the model the file "
                "was saved from (include_top, variant options)")
    return ""
