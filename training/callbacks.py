"""Callbacks of the training tasks."""
import time

import tensorflow as tf


class EpochTimer(tf.keras.callbacks.Callback):
    """Adds `epoch_seconds` (wall time of the epoch, validation included) to the logs.

    Put it first in the callback list so that loggers after it (CSVLogger,
    TensorBoard) record the time; summed over the history it gives the run's training
    wall time across interruptions and resumes.
    """

    def on_epoch_begin(self, epoch, logs=None):
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None:
            logs["epoch_seconds"] = time.perf_counter() - self._start
