"""Callbacks of the training tasks."""
import shutil
import time
from pathlib import Path

import numpy as np
import tensorflow as tf

from zoo.io import fault_point, fault_target
from zoo.training import runs


class EpochTimer(tf.keras.callbacks.Callback):
    """Adds `epoch_seconds` (wall time of the epoch, validation included) to the logs.

    Put it first in the callback list so that loggers after it (`HistoryLogger`,
    TensorBoard) record the time; summed over the history it gives the run's training
    wall time across interruptions and resumes.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self._start


def _cell(value):
    """A log value as history.csv holds it: a number, or text."""
    if isinstance(value, (str, bytes)):
        return value.decode() if isinstance(value, bytes) else value
    array = np.asarray(value)
    return float(array) if array.ndim == 0 and array.dtype.kind in "biuf" else str(array.tolist())


class HistoryLogger(tf.keras.callbacks.Callback):
    """Writes history.csv: one row per finished epoch, "epoch" then the logs' keys.

    The whole file is rewritten atomically at each epoch's end, so a kill never leaves
    half a row. Put it before `Backup`: an epoch's row is written before its backup, and
    when a run resumes, the first epoch it trains drops the rows of that epoch and later
    ones (an epoch killed between its row and its backup is trained again, and counted
    once). A history.csv of an older zoo with repeated rows or headers is cleaned the
    same way (`runs.read_history`).
    """

    def __init__(self, path):
        super().__init__()
        self.path = Path(path)
        self._rows = None

    def on_train_begin(self, logs=None):
        self._rows = None

    def on_epoch_begin(self, epoch, logs=None):
        if self._rows is None:  # the first epoch of this fit: the backup holds the earlier ones
            rows = runs.read_history(self.path)
            self._rows = [row for row in rows if int(row["epoch"]) < epoch]
            if self.path.exists() and len(self._rows) != len(rows):
                runs.write_history(self.path, self._rows)

    def on_epoch_end(self, epoch, logs=None):
        row = {"epoch": epoch, **{key: _cell(value) for key, value in (logs or {}).items()}}
        self._rows = [r for r in self._rows or [] if int(r["epoch"]) != epoch] + [row]
        runs.write_history(self.path, self._rows)


class Backup(tf.keras.callbacks.BackupAndRestore):
    """Keras' `BackupAndRestore` (kept after training) with the fault points of the tests.

    The backup of an epoch is a TensorFlow checkpoint, committed when its index file is
    renamed into place; a kill before leaves a `ckpt-N_temp` folder, which is removed
    before the next run restores the last committed epoch. Fault points (`zoo.io`):
    "batch" after each training step, "checkpoint" while a checkpoint is written (its
    parts are in `ckpt-N_temp`, not merged yet), "epoch_end" after an epoch's backup.
    """

    def __init__(self, backup_dir):
        super().__init__(str(backup_dir), delete_checkpoint=False)
        self._target = fault_target()

    def on_train_begin(self, logs=None):
        for stale in Path(self.backup_dir).glob("**/*_temp"):  # a write that was killed
            shutil.rmtree(stale, ignore_errors=True)
        super().on_train_begin(logs)

    def _implements_train_batch_hooks(self):
        return self._target == "batch" or super()._implements_train_batch_hooks()

    def on_train_batch_end(self, batch, logs=None):
        super().on_train_batch_end(batch, logs)
        fault_point("batch")

    def on_epoch_end(self, epoch, logs=None):
        super().on_epoch_end(epoch, logs)
        fault_point("epoch_end")

    def _backup(self, epoch, batch=0):
        if self._target != "checkpoint":
            return super()._backup(epoch, batch)
        from tensorflow.python.ops import gen_io_ops  # the merge of a checkpoint's parts

        merge = gen_io_ops.merge_v2_checkpoints

        def killed_before_merge(*args, **kwargs):
            fault_point("checkpoint")
            return merge(*args, **kwargs)

        gen_io_ops.merge_v2_checkpoints = killed_before_merge
        try:
            super()._backup(epoch, batch)
        finally:
            gen_io_ops.merge_v2_checkpoints = merge
