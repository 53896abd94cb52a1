"""Optimizers, learning-rate schedules and distribution strategies of the training tasks."""
from typing import Sequence, Tuple

import tensorflow as tf
from zookeeper import Field, component

from zoo.io import ZooError


@component
class Optimizer:
    """The optimizer and learning-rate schedule of one training stage.

    `schedule` is one of "constant", "linear" (to 0 over the stage), "poly" ((1 -
    step/steps) ** `power`, DeepLab's), "cosine" (to 0 over the stage) or "steps"
    (multiply by `decay_factor` at each of `decay_epochs`).
    With `warmup_epochs > 0` the rate first rises linearly from `warmup_from` to
    `learning_rate`. `weight_decay` is Keras' decoupled weight decay.

    The fields are set on the command line, e.g. `optimizer.name=sgd`.

    Attributes:
        name: "adam" (default) or "sgd".
        learning_rate: the peak learning rate; default 1e-3.
        momentum: SGD's momentum; default 0.9 (unused by Adam).
        nesterov: whether SGD uses Nesterov momentum; default False.
        weight_decay: decoupled weight decay; default 0.0 (none).
        schedule: "constant", "linear" (default), "poly", "cosine" or "steps".
        power: the exponent of "poly"; default 0.9.
        decay_epochs: the epochs at which "steps" multiplies the rate by
            `decay_factor`; default none.
        decay_factor: the factor of each "steps" decay; default 0.1.
        warmup_epochs: length of the linear warm-up in epochs (may be fractional);
            default 0.0 (none).
        warmup_from: the learning rate at the start of the warm-up; default 0.0.
    """

    name: str = Field("adam")
    learning_rate: float = Field(1e-3)
    momentum: float = Field(0.9)
    nesterov: bool = Field(False)
    weight_decay: float = Field(0.0)
    schedule: str = Field("linear")
    power: float = Field(0.9)
    decay_epochs: Sequence[int] = Field(())
    decay_factor: float = Field(0.1)
    warmup_epochs: float = Field(0.0)
    warmup_from: float = Field(0.0)

    def check(self, prefix: str = "optimizer") -> None:
        """Refuses settings no training can use, before anything is built or written.

        Arguments:
            prefix: the component's key on the command line ("pretrain_optimizer").

        Raises:
            ZooError: a negative learning rate, warm-up rate, weight decay or warm-up,
                a momentum outside [0, 1], or an unknown `name` or `schedule`.
        """
        for key in ("learning_rate", "warmup_from", "weight_decay", "warmup_epochs"):
            if float(getattr(self, key)) < 0:
                raise ZooError(f"{prefix}.{key}={getattr(self, key)} is negative; pass a value >= 0, "
                               f"e.g. {prefix}.learning_rate=0.001.")
        if not 0 <= float(self.momentum) <= 1:
            raise ZooError(f"{prefix}.momentum={self.momentum} is not in [0, 1]; e.g. {prefix}.momentum=0.9.")
        if self.name not in ("adam", "sgd"):
            raise ZooError(f"Unknown optimizer {prefix}.name={self.name!r}; use adam or sgd.")
        if self.schedule not in ("constant", "linear", "poly", "cosine", "steps"):
            raise ZooError(f"Unknown schedule {prefix}.schedule={self.schedule!r}; use constant, linear, poly, "
                           "cosine or steps.")

    def learning_rate_schedule(self, steps_per_epoch: int, epochs: int):
        """The learning rate over a stage, without the warm-up.

        Arguments:
            steps_per_epoch: optimizer steps per epoch.
            epochs: epochs of the stage; the decays run over `steps_per_epoch * epochs`
                steps (at least 1).

        Returns:
            `learning_rate` (a float) for "constant", else a Keras
            `LearningRateSchedule` of the optimizer step.

        Raises:
            ValueError: `schedule` is not one of the four names.
        """
        # Numbers as floats: `learning_rate=1` from the command line is an int, which
        # TensorFlow's schedules refuse.
        lr, total = float(self.learning_rate), max(1, steps_per_epoch * epochs)
        if self.schedule == "constant":
            return lr
        if self.schedule in ("linear", "poly"):
            power = 1.0 if self.schedule == "linear" else self.power
            return tf.keras.optimizers.schedules.PolynomialDecay(lr, total, 0.0, power=float(power))
        if self.schedule == "cosine":
            return tf.keras.optimizers.schedules.CosineDecay(lr, total)
        if self.schedule == "steps":
            boundaries = [int(e) * steps_per_epoch for e in self.decay_epochs]
            values = [lr * float(self.decay_factor)**i for i in range(len(boundaries) + 1)]
            return tf.keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
        raise ValueError(
            f"Unknown schedule {self.schedule!r}; use constant, linear, poly, cosine or steps "
            "(e.g. optimizer.schedule=steps optimizer.decay_epochs=[10,15])."
        )

    def build(self, steps_per_epoch: int, epochs: int,
              multipliers: Sequence[Tuple[tf.Variable, float]] = ()) -> tf.keras.optimizers.Optimizer:
        """A fresh Keras optimizer with the stage's learning-rate schedule.

        Arguments:
            steps_per_epoch: optimizer steps per epoch.
            epochs: epochs of the stage.
            multipliers: (variable, factor) pairs: the variable's learning rate (and
                weight decay) is the factor times the schedule's (`PerVariableRates`);
                empty: one rate for every variable.

        Returns:
            `tf.keras.optimizers.Adam` or `tf.keras.optimizers.SGD`, its learning rate
            wrapped in `WarmUp` when `warmup_epochs > 0`; with `multipliers` other than 1,
            its `PerVariableRates` subclass.

        Raises:
            ValueError: `name` is neither "adam" nor "sgd", or `schedule` is unknown.
        """
        lr = self.learning_rate_schedule(steps_per_epoch, epochs)
        if self.warmup_epochs > 0:
            lr = WarmUp(float(self.warmup_from), lr, int(self.warmup_epochs * steps_per_epoch))
        wd = float(self.weight_decay) or None
        multipliers = [(v, float(m)) for v, m in multipliers if float(m) != 1.0]
        extra = {"multipliers": multipliers} if multipliers else {}
        if self.name == "adam":
            return (ScaledAdam if multipliers else tf.keras.optimizers.Adam)(lr, weight_decay=wd, **extra)
        if self.name == "sgd":
            return (ScaledSGD if multipliers else tf.keras.optimizers.SGD)(
                lr, momentum=float(self.momentum), nesterov=self.nesterov, weight_decay=wd, **extra
            )
        raise ValueError(f"Unknown optimizer {self.name!r}; use adam or sgd (optimizer.name=sgd).")


class PerVariableRates:
    """A Keras optimizer whose learning rate is scaled per variable, as PyTorch's
    parameter groups (the Group-Net segmentation code's 10x rate for the head): the
    update and the decoupled weight decay of a variable in `multipliers` use that factor
    times the schedule's rate; every other variable uses the rate itself.

    Keras reads `learning_rate` inside `update_step` and the weight decay of each
    variable; this mixin scales it while one of those runs for a scaled variable.

    Arguments:
        multipliers: (variable, factor) pairs.
    """

    _factor = 1.0  # the factor of the variable being updated

    def __init__(self, *args, multipliers: Sequence[Tuple[tf.Variable, float]], **kwargs):
        super().__init__(*args, **kwargs)
        self._factors = {self._var_key(v): float(m) for v, m in multipliers}

    @property
    def learning_rate(self):
        rate = super().learning_rate
        return rate if self._factor == 1.0 else rate * self._factor

    @learning_rate.setter
    def learning_rate(self, value):
        tf.keras.optimizers.Optimizer.learning_rate.fset(self, value)

    def update_step(self, gradient, variable):
        self._factor = self._factors.get(self._var_key(variable), 1.0)
        try:
            return super().update_step(gradient, variable)
        finally:
            self._factor = 1.0

    def _use_weight_decay(self, variable):
        # Keras reads the learning rate right after asking this, for this variable.
        self._factor = self._factors.get(self._var_key(variable), 1.0)
        return super()._use_weight_decay(variable)

    def _apply_weight_decay(self, variables):
        try:
            return super()._apply_weight_decay(variables)
        finally:
            self._factor = 1.0


class ScaledAdam(PerVariableRates, tf.keras.optimizers.Adam):
    """Adam with per-variable learning-rate factors (`PerVariableRates`)."""


class ScaledSGD(PerVariableRates, tf.keras.optimizers.SGD):
    """SGD with per-variable learning-rate factors (`PerVariableRates`)."""


@tf.keras.utils.register_keras_serializable(package="zoo")
class WarmUp(tf.keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up from `start` to the schedule's value over `steps`, then the schedule.

    During the warm-up the rate at step s is start + (target - start) * s / steps,
    with target the schedule's value at step s; afterwards it is the schedule's value.

    Arguments:
        start: the learning rate at step 0.
        schedule: the rate to warm up to, a float or a Keras `LearningRateSchedule`
            (evaluated at the global step).
        steps: the number of warm-up steps (at least 1 is used).
    """

    def __init__(self, start: float, schedule, steps: int):
        self.start, self.schedule, self.steps = start, schedule, max(1, steps)

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        target = self.schedule(step) if callable(self.schedule) else tf.constant(self.schedule, tf.float32)
        warm = self.start + (target - self.start) * step / self.steps
        return tf.where(step < self.steps, warm, target)

    def get_config(self):
        """The schedule's configuration, for serialization.

        Returns:
            A dict with `start`, `schedule` (serialized when it is a
            `LearningRateSchedule`) and `steps`.
        """
        schedule = self.schedule
        if isinstance(schedule, tf.keras.optimizers.schedules.LearningRateSchedule):
            schedule = tf.keras.optimizers.schedules.serialize(schedule)
        return {"start": self.start, "schedule": schedule, "steps": self.steps}


def make_strategy(name: str) -> tf.distribute.Strategy:
    """A `tf.distribute` strategy by name.

    Arguments:
        name: "default" (one device), "mirrored" (all GPUs, else all CPU devices of
            this machine) or "multi_worker" (MultiWorkerMirroredStrategy, configured by
            TF_CONFIG).

    Returns:
        The strategy.

    Raises:
        ValueError: an unknown `name`.
    """
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        devices = tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("CPU")
        return tf.distribute.MirroredStrategy([d.name for d in devices])
    if name == "multi_worker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    raise ValueError(f"Unknown strategy {name!r}; use default, mirrored or multi_worker.")
