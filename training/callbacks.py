"""Callbacks of the training tasks."""
import time
from typing import Optional

import tensorflow as tf

from zoo.quantizers import T_MAX, T_MIN, EDESign, LibraPBSign, ede_t_k


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


def ede_schedules(model: tf.keras.Model) -> list:
    """The distinct `EDESchedule`s that the quantizers of `model` read."""
    found = {}
    for layer in model.submodules:
        if isinstance(layer, (EDESign, LibraPBSign)):
            found[id(layer.schedule)] = layer.schedule
    return list(found.values())


class EDEUpdate(tf.keras.callbacks.Callback):
    """IR-Net's Error Decay Estimator schedule: sets t and k of every EDE quantizer.

    t = T_min * 10^(p * log10(T_max / T_min)), k = max(1/t, 1), with p the training
    progress: epoch / epochs at the start of each epoch (`update_every=None`, the CIFAR
    code), or step / steps, refreshed every `update_every` steps (the ImageNet code).
    The values derive from the epoch and the optimizer's step, so a resumed run picks
    up the schedule where it stopped.
    """

    def __init__(self, t_min: float = T_MIN, t_max: float = T_MAX, update_every: Optional[int] = None):
        super().__init__()
        self.t_min, self.t_max, self.update_every = t_min, t_max, update_every
        self.value = None

    def set_progress(self, progress: float) -> None:
        t, k = ede_t_k(min(max(progress, 0.0), 1.0), self.t_min, self.t_max)
        if (t, k) != self.value:
            for schedule in ede_schedules(self.model):
                schedule.assign(t, k)
            self.value = (t, k)

    def on_train_begin(self, logs=None):
        self.value = None
        self.total_steps = self.params["epochs"] * self.params["steps"]

    def on_epoch_begin(self, epoch, logs=None):
        if self.update_every is None:
            self.set_progress(epoch / self.params["epochs"])

    def on_train_batch_begin(self, batch, logs=None):
        if self.update_every is not None:
            step = int(self.model.optimizer.iterations)
            self.set_progress((step - step % self.update_every) / self.total_steps)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.value is not None:
            logs["ede_t"], logs["ede_k"] = self.value
