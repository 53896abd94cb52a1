"""A training run's folder and its provenance: command, commit, machine, versions, wall time.

A run folder (`output_dir`) holds:

    run.lock              the lock of the training that runs in the folder (its PID, host, start)
    config.txt            the task's full configuration (zookeeper's printout)
    run.json              model, task, dataset, the commit the run started from and its
                          configuration (`config`: setting -> value, as text)
    history.csv           one row per finished epoch (metrics, learning rate, epoch_seconds)
    logs/                 TensorBoard logs
    backup/               checkpoint of the last finished epoch (model, optimizer, epoch)
    stage.json            the epochs of a finished stage
    model.weights.h5      final weights;  model.h5  the whole model (reloads with zoo)
    metrics.json          test scores, epochs, wall time, cost, command, git commit
    pretrain/             the same for stage 1 of a two-stage recipe

Every file is written atomically (`zoo.io`). One training at a time owns a folder (the
lock), and a folder resumes only the configuration that started it (`check_record`).

In a multi-worker run (`strategy=multi_worker`, every worker given the same
`output_dir` on storage they share) the chief writes the folder; every other worker
only holds `worker-<i>.lock` and trains, and Keras' `BackupAndRestore` has every worker
resume from the chief's backup (`worker_name`).
"""
import csv
import io
import json
import os
import platform
import shlex
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path
from typing import Dict, List

import tensorflow as tf

from zoo import stack
from zoo.io import ZooError, atomic_write_bytes, read_json

LOCK = "run.lock"
# Settings that do not change what is trained: they may differ when a run resumes.
FREE = ("progress_bar", "callbacks", "output_dir")


def worker_name(strategy: str) -> str:
    """"" for the process that writes the run folder (the chief: TF_CONFIG's "chief", or
    worker 0 of a cluster without one; any process outside a multi-worker run), else the
    worker's name in TF_CONFIG ("worker-1", ...).

    Raises:
        ZooError: TF_CONFIG that is not JSON of a cluster and this process' task.
    """
    if strategy != "multi_worker" or not os.environ.get("TF_CONFIG"):
        return ""
    try:
        config = json.loads(os.environ["TF_CONFIG"])
        kind, index = config["task"]["type"], int(config["task"]["index"])
        cluster = config["cluster"]
    except (ValueError, KeyError, TypeError) as e:
        raise ZooError(f"TF_CONFIG is not a cluster and this process' task ({type(e).__name__}: {e}); see "
                       "docs/training.md, 'Multi-worker training'.") from None
    chief = kind == "chief" or (kind == "worker" and index == 0 and "chief" not in cluster)
    return "" if chief else f"{kind}-{index}"


def git_commit() -> str:
    """The commit of the zoo's source checkout ("-dirty" with changes), or "unknown"."""
    here = Path(__file__).resolve().parent
    try:
        commit = subprocess.run(
            ["git", "-C", str(here), "rev-parse", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(here), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()
        return commit + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def command_line() -> str:
    """The running `zoo` command (`zoo.cli.main` puts its arguments in `sys.argv`)."""
    return shlex.join(["zoo", *sys.argv[1:]])


def machine() -> str:
    return (f"{stack.cpu_model()} ({platform.machine()}), {os.cpu_count()} CPU cores, "
            f"{len(tf.config.list_physical_devices('GPU'))} GPUs")


def versions() -> dict:
    return {"python": platform.python_version(), "tensorflow": tf.__version__, "keras": stack.keras_version(),
            "larq": version("larq")}


def epoch_seconds(history: Path) -> float:
    """The sum of a history.csv's `epoch_seconds` column; 0.0 without the file."""
    return sum(float(row.get("epoch_seconds") or 0) for row in read_history(history))


def read_history(path: Path) -> List[Dict[str, str]]:
    """The rows of a history.csv, one per epoch (the last of an epoch's rows), by epoch.

    Rows that are not an epoch's (a repeated header, a line cut short) are skipped, so
    a history written by an older zoo, or by two trainings at once, still reads.
    """
    path = Path(path)
    if not path.exists():
        return []
    rows = {}
    with open(path, newline="", encoding="utf-8", errors="replace") as f:
        for row in csv.DictReader(f):
            epoch = row.get("epoch") or ""
            if epoch.isdigit() and None not in row.values() and None not in row:
                rows[int(epoch)] = row
    return [rows[epoch] for epoch in sorted(rows)]


def write_history(path: Path, rows: List[dict]) -> None:
    """Writes history.csv atomically: "epoch", then every other column sorted."""
    columns = ["epoch", *sorted({key for row in rows for key in row} - {"epoch"})]
    text = io.StringIO()
    writer = csv.DictWriter(text, columns, restval="", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_bytes(path, text.getvalue().encode("utf-8"))


def _text(value) -> str:
    """A setting's value as text: strings as they are, sequences as lists, else repr."""
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)):
        return repr([_text(v) if isinstance(v, (list, tuple)) else v for v in value])
    return repr(value)


def config_record(task) -> Dict[str, str]:
    """The task's configuration as setting -> value (text), zookeeper's dotted keys
    ("optimizer.learning_rate"); `callbacks` (Python objects) is left out."""
    return {key: _text(value) for key, value in iter(task) if key != "callbacks"}


def _same(a: str, b: str) -> bool:
    try:
        return a == b or float(a) == float(b)  # learning_rate=1 is learning_rate=1.0
    except ValueError:
        return False


def differences(recorded: Dict[str, str], config: Dict[str, str]) -> List[str]:
    """The settings of `config` that differ from the `recorded` ones, as "key=new (run:
    old)".

    Compared: every setting both hold except `FREE` ones (`progress_bar`, `callbacks`,
    `output_dir`: they do not change what is trained), and those of stage 1
    (`pretrain_*`) only when either has `pretrain_epochs` > 0. A setting only one of
    them holds (one added to or removed from the zoo since the run started) is not
    compared.
    """
    two_stage = any(c.get("pretrain_epochs", "0") not in ("0", "None") for c in (recorded, config))
    keys = [k for k in config if k in recorded and k.split(".")[0] not in FREE
            and (two_stage or not k.startswith("pretrain_"))]
    return [f"{k}={config[k]} (run: {recorded[k]})" for k in keys if not _same(recorded[k], config[k])]


def make_output_dir(out: Path) -> None:
    """Creates the run folder `out` (and its parents) when missing.

    Raises:
        ZooError: `out` is a file, is under a file, or cannot be created.
    """
    for folder in [out, *out.parents]:
        if folder.exists():
            if not folder.is_dir():
                where = "is a file" if folder == out else f"is under {folder}, which is a file"
                raise ZooError(f"output_dir={out} {where}; pick a folder.")
            break
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ZooError(f"output_dir={out} cannot be created ({e.strerror}); pick another folder.") from None


def check_record(out: Path, task: str, config: Dict[str, str]) -> dict:
    """The run record (run.json) of the folder `out` when a run of `task` with `config`
    may (re)start there: {} for a new run folder.

    A run folder resumes only the run that started it: the same task, and the same
    settings (`differences`); a record without `config` (written by an older zoo) is
    checked for its task only.

    Raises:
        ZooError: run.json is corrupt, names another task, or records other settings
            (the message lists them).
    """
    record = read_json(out / "run.json")
    if record and record.get("task") != task:
        raise ZooError(f"{out} is the run folder of {record.get('task')} ({record.get('model')} on "
                       f"{record.get('dataset')}), not of {task}; pick another output_dir.")
    changed = differences(record.get("config") or {}, config)
    if changed:
        raise ZooError(f"{out} holds a run of {task} with other settings: {'; '.join(changed)}. A run folder "
                       "resumes only its own configuration: use its settings, or pick another output_dir.")
    return record
