"""Atomic file writes, the one helper every writer of the package uses.

A file is written as a temporary file in its own folder and renamed over the
destination, so a reader, or a process killed mid-write, sees the old content or the
new one, never a mix.
"""
import json
import os
import tempfile
import warnings
from pathlib import Path


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Writes `data` to `path` atomically; missing folders are created, mode 0o644."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile(dir=path.parent, prefix=f".{path.name}.", delete=False) as f:
        f.write(data)
    os.chmod(f.name, 0o644)
    os.replace(f.name, path)


def write_json(path: Path, record: dict) -> None:
    """Writes `record` as JSON (sorted keys, indent 2) atomically."""
    atomic_write_bytes(path, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def read_json(path: Path) -> dict:
    """The JSON content of `path`, or an empty dict when the file does not exist."""
    path = Path(path)
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def save_model(model, path: Path, weights_only: bool) -> None:
    """Saves a Keras model's weights (or the whole model, without optimizer) atomically.

    Keras picks the format from the suffix, so the temporary file keeps it: `path`
    should end with ".h5" (what Larq Compute Engine and larq read).
    """
    path = Path(path)
    tmp = path.with_name(".tmp-" + path.name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras calls h5 "legacy"
        if weights_only:
            model.save_weights(str(tmp))
        else:
            model.save(str(tmp), include_optimizer=False)
    os.replace(tmp, path)
