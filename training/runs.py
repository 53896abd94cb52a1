"""A training run's folder and its provenance: command, commit, machine, versions, wall time.

A run folder (`output_dir`) holds:

    config.txt            the task's full configuration (zookeeper's printout)
    run.json              model, task, dataset and the commit the run started from
    history.csv           one row per epoch (metrics, learning rate, epoch_seconds)
    logs/                 TensorBoard logs
    backup/               checkpoint of the last finished epoch (model, optimizer, epoch)
    stage.json            the epochs of a finished stage
    model.weights.h5      final weights;  model.h5  the whole model (reloads with zoo)
    metrics.json          test scores, epochs, wall time, cost, command, git commit
    pretrain/             the same for stage 1 of a two-stage recipe

Every file is written atomically (`zoo.io`).
"""
import csv
import os
import platform
import shlex
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import tensorflow as tf


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
    return (f"{platform.machine()}, {os.cpu_count()} CPU cores, "
            f"{len(tf.config.list_physical_devices('GPU'))} GPUs")


def versions() -> dict:
    return {"tensorflow": tf.__version__, "larq": version("larq")}


def epoch_seconds(history: Path) -> float:
    """The sum of a history.csv's `epoch_seconds` column; 0.0 without the file."""
    if not history.exists():
        return 0.0
    with open(history, newline="", encoding="utf-8") as f:
        return sum(float(row.get("epoch_seconds") or 0) for row in csv.DictReader(f))
