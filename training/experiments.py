"""Training tasks: `zoo Train<Model> key=value ...` (zookeeper tasks).

Every task trains one registered model on one dataset component and writes to
`output_dir`:

    config.txt            the task's full configuration (zookeeper's printout)
    history.csv           one row per epoch (metrics, learning rate, epoch_seconds)
    logs/                 TensorBoard logs
    backup/               checkpoint of the last finished epoch (model, optimizer, epoch)
    model.weights.h5      final weights;  model.h5  the whole model (reloads with zoo)
    metrics.json          test accuracy, epochs, wall time, cost, command, git commit
    pretrain/             the same for stage 1 of a two-stage recipe

Re-running a task with the same `output_dir` resumes where it stopped: Keras'
`BackupAndRestore` restores the weights, the optimizer state and the epoch; a finished
stage is not trained again.

Two-stage recipes (`pretrain_epochs > 0`): stage 1 trains `pretrain_model` (the
real-valued twin of the binary model), stage 2 initialises the binary model from it.
"""
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import warnings
from pathlib import Path
from typing import ClassVar, List, Optional, Sequence

import tensorflow as tf
from zookeeper import ComponentField, Field, component, task
from zookeeper.tf import Dataset, Preprocessing

from zoo.complexity import complexity
from zoo.models.bireal import (
    REAL_VALUED,
    BiRealNet18Factory,
    BiRealNet20Factory,
    BiRealNet20FPFactory,
    BiRealNet34Factory,
    BiRealNet50Factory,
)
from zoo.models.groupnet import (
    GroupNetResNet18Factory,
    GroupNetResNet20Factory,
    GroupNetResNet34Factory,
    GroupNetResNet50Factory,
)
from zoo.models.irnet import (
    IRNetResNet18Factory,
    IRNetResNet20Factory,
    IRNetResNet34Factory,
    IRNetVGGSmallFactory,
)
from zoo.quantizers import T_MAX, T_MIN
from zoo.training.callbacks import EDEUpdate, EpochTimer, ede_schedules
from zoo.models.groupnet_dense import GroupNetDeepLabFactory, GroupNetFCNFactory
from zoo.models.groupnet_fcos import GroupNetFCOSFactory
from zoo.training.detection import FCOSLoss, FCOSTargets, evaluate_detection, model_geometry
from zoo.training.datasets import (
    IGNORE_LABEL,
    FashionMNIST,
    FashionMNISTScenes,
    ImageClassification,
    ImageNet,
    Segmentation,
)
from zoo.training.evaluation import batches, dataset_options, evaluate, evaluate_segmentation
from zoo.weights import atomic_write_bytes, score_of


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
        lr, total = self.learning_rate, max(1, steps_per_epoch * epochs)
        if self.schedule == "constant":
            return lr
        if self.schedule in ("linear", "poly"):
            power = 1.0 if self.schedule == "linear" else self.power
            return tf.keras.optimizers.schedules.PolynomialDecay(lr, total, 0.0, power=power)
        if self.schedule == "cosine":
            return tf.keras.optimizers.schedules.CosineDecay(lr, total)
        if self.schedule == "steps":
            boundaries = [int(e) * steps_per_epoch for e in self.decay_epochs]
            values = [lr * self.decay_factor**i for i in range(len(boundaries) + 1)]
            return tf.keras.optimizers.schedules.PiecewiseConstantDecay(boundaries, values)
        raise ValueError(
            f"Unknown schedule {self.schedule!r}; use constant, linear, poly, cosine or steps "
            "(e.g. optimizer.schedule=steps optimizer.decay_epochs=[10,15])."
        )

    def build(self, steps_per_epoch: int, epochs: int) -> tf.keras.optimizers.Optimizer:
        """A fresh Keras optimizer with the stage's learning-rate schedule.

        Arguments:
            steps_per_epoch: optimizer steps per epoch.
            epochs: epochs of the stage.

        Returns:
            `tf.keras.optimizers.Adam` or `tf.keras.optimizers.SGD`, its learning rate
            wrapped in `WarmUp` when `warmup_epochs > 0`.

        Raises:
            ValueError: `name` is neither "adam" nor "sgd", or `schedule` is unknown.
        """
        lr = self.learning_rate_schedule(steps_per_epoch, epochs)
        if self.warmup_epochs > 0:
            lr = WarmUp(self.warmup_from, lr, int(self.warmup_epochs * steps_per_epoch))
        wd = self.weight_decay or None
        if self.name == "adam":
            return tf.keras.optimizers.Adam(lr, weight_decay=wd)
        if self.name == "sgd":
            return tf.keras.optimizers.SGD(
                lr, momentum=self.momentum, nesterov=self.nesterov, weight_decay=wd
            )
        raise ValueError(f"Unknown optimizer {self.name!r}; use adam or sgd (optimizer.name=sgd).")


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


def git_commit() -> str:
    """The commit of the zoo's source checkout (with '-dirty'), or 'unknown'.

    Returns:
        The hex commit of the git checkout holding this file, with "-dirty" appended
        when tracked files have changes; "unknown" when git or the checkout is missing.
    """
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


def write_json(path: Path, record: dict) -> None:
    """Writes JSON atomically (a temporary file, then a rename).

    Arguments:
        path: the file to write (replaced if it exists; missing folders are created).
        record: a JSON-serializable dict, written with sorted keys and indent 2.
    """
    atomic_write_bytes(path, (json.dumps(record, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def save_atomically(model: tf.keras.Model, path: Path, weights_only: bool) -> None:
    """Saves weights (or the whole model, without optimizer) as h5, atomically.

    The file is written as ".tmp-<name>" next to `path`, then renamed; Keras picks the
    format from the suffix, so `path` should end with ".h5".

    Arguments:
        model: the Keras model to save.
        path: the destination file (replaced if it exists).
        weights_only: True saves the weights only, False the whole model without its
            optimizer state.
    """
    tmp = path.with_name(".tmp-" + path.name)  # same suffix: Keras picks the format by it
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Keras calls h5 "legacy"; it is what LCE/larq read
        if weights_only:
            model.save_weights(str(tmp))
        else:
            model.save(str(tmp), include_optimizer=False)
    os.replace(tmp, path)


# The arguments of the running `zoo` command (set by zoo.cli.main), for metrics.json.
COMMAND_LINE: List[str] = []


class TrainTask:
    """Base of every `Train<Model>` task. Subclasses set `model` (and recipes).

    The fields below are set on the command line (`zoo TrainBiRealNet20 epochs=5`);
    `run()` trains and writes everything to `output_dir`.

    Attributes:
        dataset: the dataset component; default `FashionMNIST`.
        preprocessing: the preprocessing component; default `ImageClassification`.
        model: the model factory to train (set by each task).
        optimizer: the `Optimizer` of the (last) training stage.
        epochs: epochs of the (last) training stage; default 30.
        batch_size: global batch size; default 128.
        label_smoothing: label smoothing of the cross-entropy loss; default 0.0.
        pretrain_epochs: epochs of stage 1 of a two-stage recipe; default 0 (one stage).
        pretrain_model: the model factory of stage 1 (only needed when
            `pretrain_epochs > 0`).
        pretrain_optimizer: the `Optimizer` of stage 1.
        ede_t_min: EDE's t at the start of training; default `T_MIN` (0.1).
        ede_t_max: EDE's t at the end of training; default `T_MAX` (10).
        ede_update_every: None (default) updates EDE's t and k per epoch, an integer
            every that many steps. Used only for models with EDE quantizers.
        strategy: the distribution strategy, "default", "mirrored" or "multi_worker"
            (see `make_strategy`); default "default".
        seed: the random seed of TensorFlow, NumPy and Python and of the shuffling;
            default 0.
        shuffle_buffer: size of the training data's shuffle buffer (capped at the
            number of examples); default 60000.
        steps_per_epoch: limit of training steps per epoch; default None (a full pass
            over the train split).
        validation_steps: limit of validation steps; default None (a full pass).
        progress_bar: Keras' progress bar (True, default) or one line per epoch.
        callbacks: extra Keras callbacks, run after the task's own; default none.
        output_dir: the run's folder; default "runs/<Task>_<Dataset>".
    """

    dataset: Dataset = ComponentField(FashionMNIST)
    preprocessing: Preprocessing = ComponentField(ImageClassification)
    model: tf.keras.Model = ComponentField()
    optimizer: Optimizer = ComponentField(Optimizer)

    epochs: int = Field(30)
    batch_size: int = Field(128)
    label_smoothing: float = Field(0.0)

    # Stage 1 of a two-stage recipe: epochs (0: one stage), model and optimizer.
    pretrain_epochs: int = Field(0)
    pretrain_model: tf.keras.Model = ComponentField(allow_missing=True)
    pretrain_optimizer: Optimizer = ComponentField(Optimizer)

    # IR-Net's Error Decay Estimator, driven for any model with EDE quantizers: t from
    # ede_t_min to ede_t_max, per epoch (None) or every ede_update_every steps.
    ede_t_min: float = Field(T_MIN)
    ede_t_max: float = Field(T_MAX)
    ede_update_every: Optional[int] = Field(None)

    strategy: str = Field("default")
    seed: int = Field(0)
    shuffle_buffer: int = Field(60_000)
    # Limits for quick runs (None: a full pass over the split).
    steps_per_epoch: Optional[int] = Field(None)
    validation_steps: Optional[int] = Field(None)
    progress_bar: bool = Field(True)
    callbacks: List[tf.keras.callbacks.Callback] = Field(lambda: [])

    one_hot_labels: ClassVar[bool] = True  # classification: one-hot labels for the loss

    @Field
    def output_dir(self) -> str:
        """The default output folder: "runs/<Task>_<Dataset>".

        Returns:
            The path as a string.
        """
        return str(Path("runs") / f"{type(self).__name__}_{type(self.dataset).__name__}")

    # -- data -----------------------------------------------------------------
    def data(self, split: str, training: bool) -> tuple:
        """(batched tf.data.Dataset of (image, one-hot label), number of examples).

        Arguments:
            split: the dataset split, "train", "validation" or "test".
            training: True shuffles (with `seed` and `shuffle_buffer`), repeats forever
                and preprocesses for training; False makes one pass in order.

        Returns:
            A pair `(dataset, count)`: batches of `batch_size`, and the split's number
            of examples.
        """
        return batches(self.dataset, split, training, self.batch_size, self.preprocessing,
                       self.shuffle_buffer, self.seed, one_hot=self.one_hot_labels)

    # -- one stage ----------------------------------------------------------------
    def compile(self, model: tf.keras.Model, optimizer: Optimizer, epochs: int, steps: int) -> None:
        """Compiles `model` with the task's `loss_function` and `training_metrics`.

        Arguments:
            model: the model to compile.
            optimizer: the stage's `Optimizer` component (built here).
            epochs: epochs of the stage.
            steps: optimizer steps per epoch.
        """
        model.compile(optimizer=optimizer.build(steps, epochs), loss=self.loss_function(model),
                      metrics=self.training_metrics(model))

    def loss_function(self, model: tf.keras.Model) -> tf.keras.losses.Loss:
        """Cross-entropy of one-hot labels (with `label_smoothing`)."""
        return tf.keras.losses.CategoricalCrossentropy(label_smoothing=self.label_smoothing)

    def training_metrics(self, model: tf.keras.Model) -> List[tf.keras.metrics.Metric]:
        """Top-1 and top-5 accuracy, logged every epoch."""
        return [tf.keras.metrics.CategoricalAccuracy(name="accuracy"),
                tf.keras.metrics.TopKCategoricalAccuracy(5, name="top5_accuracy")]

    def stage_callbacks(self, model: tf.keras.Model, stage_dir: Path) -> List[tf.keras.callbacks.Callback]:
        """EDE and the timer first, then the loggers, the backup, the user's callbacks.

        Arguments:
            model: the stage's model; `EDEUpdate` is added only if it has EDE quantizers.
            stage_dir: the stage's folder, for history.csv, logs/ and backup/.

        Returns:
            The list of Keras callbacks.
        """
        ede = [EDEUpdate(self.ede_t_min, self.ede_t_max, self.ede_update_every)] if ede_schedules(model) else []
        return [
            *ede,
            EpochTimer(),
            tf.keras.callbacks.CSVLogger(str(stage_dir / "history.csv"), append=True),
            tf.keras.callbacks.TensorBoard(str(stage_dir / "logs"), write_graph=False, profile_batch=0),
            tf.keras.callbacks.BackupAndRestore(str(stage_dir / "backup"), delete_checkpoint=False),
            *self.callbacks,
        ]

    def train_stage(self, strategy, attr: str, optimizer: Optimizer, epochs: int,
                    stage_dir: Path, init_weights: Optional[Path]) -> tf.keras.Model:
        """Trains one stage, resuming from its backup; a finished stage only loads its weights.

        At the end it writes model.weights.h5, model.h5 and stage.json to `stage_dir`.

        Arguments:
            strategy: the `tf.distribute.Strategy` to build and train under.
            attr: the task's field holding the model, "model" or "pretrain_model".
            optimizer: the stage's `Optimizer`.
            epochs: epochs of the stage.
            stage_dir: the stage's output folder (created if missing).
            init_weights: a weights file to initialise the model from (stage 1's
                weights), used only when the stage has no backup yet; or None.

        Returns:
            The trained model.

        Raises:
            ValueError: the model's input shape does not match the dataset's.
        """
        stage_dir.mkdir(parents=True, exist_ok=True)
        with strategy.scope():
            model = getattr(self, attr)
            self.check_input(model)
        train, n_train = self.data("train", training=True)
        validation, _ = self.data("validation", training=False)
        steps = self.steps_per_epoch or math.ceil(n_train / self.batch_size)
        with strategy.scope():
            self.compile(model, optimizer, epochs, steps)
        weights = stage_dir / "model.weights.h5"
        done = read_json(stage_dir / "stage.json").get("epochs") == epochs and weights.exists()
        if done:
            print(f"{stage_dir}: finished earlier ({epochs} epochs); loading its weights.")
            model.load_weights(str(weights))
            return model
        if init_weights is not None and not (stage_dir / "backup").exists():
            print(f"Initialising {model.name} from {init_weights}")
            model.load_weights(str(init_weights))
        print(f"{model.name}: {stage_dir}, {strategy.num_replicas_in_sync} replica(s)\n"
              + complexity(model).table(per_layer=False))
        model.fit(
            train, epochs=epochs, steps_per_epoch=steps, validation_data=validation,
            validation_steps=self.validation_steps, callbacks=self.stage_callbacks(model, stage_dir),
            verbose=1 if self.progress_bar else 2,
        )
        save_atomically(model, weights, weights_only=True)
        save_atomically(model, stage_dir / "model.h5", weights_only=False)
        write_json(stage_dir / "stage.json", {"epochs": epochs})
        return model

    def check_input(self, model: tf.keras.Model) -> None:
        """Checks that the model takes the dataset's input shape.

        Arguments:
            model: the model to train.

        Raises:
            ValueError: the model's input shape is not the dataset's `input_shape`.
        """
        expected = tuple(self.dataset.input_shape)
        got = tuple(model.input_shape[1:])
        if got != expected:
            raise ValueError(
                f"The model takes inputs of shape {got} but {type(self.dataset).__name__} "
                f"gives {expected}; drop the model.input_shape override or pick a matching "
                "dataset."
            )

    # -- the task -------------------------------------------------------------
    def run(self) -> dict:
        """Runs the task: both stages (or one), then the test evaluation.

        Writes config.txt, run.json, the stages' files and metrics.json to
        `output_dir`; a re-run resumes where the last one stopped.

        Returns:
            The metrics record written to metrics.json (see `metrics_record`).

        Raises:
            ValueError: the model's input shape does not match the dataset's, or an
                unknown strategy, optimizer or schedule.
        """
        out = Path(self.output_dir)
        out.mkdir(parents=True, exist_ok=True)
        tf.keras.utils.set_random_seed(self.seed)
        (out / "config.txt").write_text(str(self) + "\n", encoding="utf-8")
        # The commit of the code this run imported (a resumed run keeps its first one).
        commit = read_json(out / "run.json").get("git_commit") or git_commit()
        write_json(out / "run.json", {"model": model_name(self), "task": type(self).__name__,
                                      "dataset": type(self.dataset).__name__, "git_commit": commit})
        strategy = make_strategy(self.strategy)
        init = None
        if self.pretrain_epochs > 0:
            self.train_stage(strategy, "pretrain_model", self.pretrain_optimizer,
                             self.pretrain_epochs, out / "pretrain", None)
            init = out / "pretrain" / "model.weights.h5"
        model = self.train_stage(strategy, "model", self.optimizer, self.epochs, out, init)
        metrics = self.metrics_record(model, out)
        write_json(out / "metrics.json", metrics)
        print(f"Test {score_of(metrics).text(metrics)} on {metrics['test_examples']:,} {metrics['dataset']} "
              f"test images; written to {out}")
        return metrics

    def test_metrics(self, model: tf.keras.Model) -> dict:
        """The trained model's metrics on the whole test split.

        Arguments:
            model: the trained model.

        Returns:
            `top1`, `top5` (fractions) and `test_examples`.
        """
        result = evaluate(model, self.dataset, self.batch_size)
        return {"top1": result["top1"], "top5": result["top5"], "test_examples": result["examples"]}

    @staticmethod
    def predicted_classes(model: tf.keras.Model) -> int:
        """The number of classes the trained model predicts."""
        return int(model.output_shape[-1])

    def metrics_record(self, model: tf.keras.Model, out: Path) -> dict:
        """Evaluates the trained model on the test split and gathers the run's record.

        Arguments:
            model: the trained model.
            out: the run's output folder (its run.json and history files are read).

        Returns:
            A dict with the model, task and dataset names, input shape, number of
            classes, architecture options, top-1 and top-5 accuracy (fractions) and
            the number of test examples (`test_metrics`), epochs, batch size, training wall time in
            seconds, command, git commit, machine, library versions and the model's
            cost (`Complexity.as_dict()`).
        """
        result = self.test_metrics(model)
        cost = complexity(model)
        stages = [out / "pretrain"] if self.pretrain_epochs > 0 else []
        seconds = sum(epoch_seconds(d / "history.csv") for d in [*stages, out])
        return {
            "model": model_name(self),
            "task": type(self).__name__,
            "dataset": type(self.dataset).__name__,
            "dataset_options": dataset_options(self.dataset),
            "input_shape": list(model.input_shape[1:]),
            "num_classes": self.predicted_classes(model),
            "options": getattr(model, "_zoo_variant", {}),
            **result,
            "epochs": self.epochs,
            "pretrain_epochs": self.pretrain_epochs,
            "batch_size": self.batch_size,
            "wall_time_seconds": round(seconds, 1),
            "command": shlex.join(["zoo", *(COMMAND_LINE or sys.argv[1:])]),
            "git_commit": read_json(out / "run.json")["git_commit"],  # written by run() at the start
            "machine": f"{platform.machine()}, {os.cpu_count()} CPU cores, "
                       f"{len(tf.config.list_physical_devices('GPU'))} GPUs",
            "versions": {"tensorflow": tf.__version__, "larq": lq_version()},
            **{k: v for k, v in cost.as_dict().items()},
        }


def model_name(task_instance: TrainTask) -> str:
    """The registry name of a task's model ("TrainBiRealNet20" trains "BiRealNet20").

    Arguments:
        task_instance: a training task.

    Returns:
        The task's class name without its "Train" prefix.
    """
    return type(task_instance).__name__.removeprefix("Train")


def lq_version() -> str:
    """The installed larq version.

    Returns:
        The version string of the `larq` distribution.
    """
    from importlib.metadata import version

    return version("larq")


def read_json(path: Path) -> dict:
    """Reads a JSON file.

    Arguments:
        path: the file.

    Returns:
        Its content, or an empty dict when the file does not exist.
    """
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def epoch_seconds(history: Path) -> float:
    """Sum of the `epoch_seconds` column of a CSVLogger history.

    Arguments:
        history: a history.csv file.

    Returns:
        The total in seconds; 0.0 when the file does not exist (empty cells count 0).
    """
    import csv

    if not history.exists():
        return 0.0
    with open(history, newline="", encoding="utf-8") as f:
        return sum(float(row.get("epoch_seconds") or 0) for row in csv.DictReader(f))


# -- Bi-Real Net -----------------------------------------------------------------------

class TrainBiRealNet(TrainTask):
    """Bi-Real Net on ImageNet. Defaults: the paper's two-stage recipe.

    Stage 1 trains the real-valued twin with clip(-1, x, 1) instead of sign (SGD,
    momentum 0.9, lr 0.1, weight decay 1e-4, cosine, `pretrain_epochs` epochs); stage 2
    trains the binary net from it: SGD momentum 0.9, batch 128, lr 0.01 divided by 10
    at epochs 10 and 15, 20 epochs, no weight decay (paper, Section 4.1).
    For the later PyTorch re-training recipe use `pretrain_epochs=0 epochs=256
    batch_size=512 optimizer.name=adam optimizer.learning_rate=1e-3
    optimizer.schedule=linear label_smoothing=0.1`.

    References:
        - Liu et al., Bi-Real Net, ECCV 2018, Section 3.4 (real-valued initialisation)
          and Section 4.1 (training details).
    """

    dataset = ComponentField(ImageNet)
    epochs = Field(20)
    batch_size = Field(128)
    optimizer = ComponentField(
        Optimizer, name="sgd", learning_rate=0.01, schedule="steps", decay_epochs=(10, 15)
    )
    pretrain_epochs = Field(90)
    pretrain_optimizer = ComponentField(
        Optimizer, name="sgd", learning_rate=0.1, weight_decay=1e-4, schedule="cosine"
    )


@task
class TrainBiRealNet18(TrainBiRealNet):
    """Bi-Real Net 18 on ImageNet, the recipe of `TrainBiRealNet`."""

    model = ComponentField(BiRealNet18Factory)
    pretrain_model = ComponentField(BiRealNet18Factory, **REAL_VALUED)


@task
class TrainBiRealNet34(TrainBiRealNet):
    """Bi-Real Net 34 on ImageNet, the recipe of `TrainBiRealNet`."""

    model = ComponentField(BiRealNet34Factory)
    pretrain_model = ComponentField(BiRealNet34Factory, **REAL_VALUED)


@task
class TrainBiRealNet50(TrainBiRealNet):
    """Bi-Real Net 50 on ImageNet, the recipe of `TrainBiRealNet`."""

    model = ComponentField(BiRealNet50Factory)
    pretrain_model = ComponentField(BiRealNet50Factory, **REAL_VALUED)


@task
class TrainBiRealNet20(TrainTask):
    """Bi-Real Net 20 on small images (default: Fashion-MNIST).

    One stage by default: Adam, lr 1e-3 decayed linearly to 0, batch 128 (the PyTorch
    re-training recipe, which reports the paper's accuracy without pre-training).
    `pretrain_epochs=N` adds the paper's real-valued clip pre-training first.

    References:
        - Liu et al., Bi-Real Net, ECCV 2018, Section 3.4 (real-valued initialisation).
    """

    model = ComponentField(BiRealNet20Factory)
    pretrain_model = ComponentField(BiRealNet20Factory, **REAL_VALUED)
    epochs = Field(30)


@task
class TrainBiRealNet20FP(TrainBiRealNet20):
    """The full-precision twin of Bi-Real Net 20 under the same recipe: the baseline."""

    model = ComponentField(BiRealNet20FPFactory)


# -- IR-Net -----------------------------------------------------------------------------
class TrainIRNetImageNet(TrainTask):
    """IR-Net on ImageNet, the official recipe: global batch 2048, SGD (Nesterov,
    momentum 0.9, weight decay 1e-4), lr warmed up from 0.2 to 0.8 over 4 epochs, then
    divided by 10 at epochs 30, 60 and 90 of 100; EDE refreshed every 100 steps.

    References:
        - Qin et al., IR-Net, CVPR 2020; official code (ImageNet recipe), Section 3.2
          (EDE).
    """

    dataset = ComponentField(ImageNet)
    epochs = Field(100)
    batch_size = Field(2048)
    optimizer = ComponentField(
        Optimizer, name="sgd", nesterov=True, learning_rate=0.8, weight_decay=1e-4,
        schedule="steps", decay_epochs=(30, 60, 90), warmup_epochs=4.0, warmup_from=0.2,
    )
    ede_update_every = Field(100)


@task
class TrainIRNetResNet18(TrainIRNetImageNet):
    """IR-Net ResNet-18 on ImageNet, the recipe of `TrainIRNetImageNet`."""

    model = ComponentField(IRNetResNet18Factory)


@task
class TrainIRNetResNet34(TrainIRNetImageNet):
    """IR-Net ResNet-34 on ImageNet, the recipe of `TrainIRNetImageNet`."""

    model = ComponentField(IRNetResNet34Factory)


@task
class TrainIRNetResNet20(TrainTask):
    """IR-Net ResNet-20 on small images (default Fashion-MNIST), the official CIFAR
    recipe: 400 epochs, batch 128, SGD momentum 0.9, lr 0.1, weight decay 1e-4, cosine
    to 0; EDE per epoch. Ablations: model.libra_pb=False, model.ede=False.

    References:
        - Qin et al., IR-Net, CVPR 2020; official code (CIFAR recipe).
    """

    model = ComponentField(IRNetResNet20Factory)
    epochs = Field(400)
    optimizer = ComponentField(Optimizer, name="sgd", learning_rate=0.1, weight_decay=1e-4, schedule="cosine")


@task
class TrainIRNetVGGSmall(TrainIRNetResNet20):
    """IR-Net VGG-Small, the official recipe: 300 epochs, batch 128, SGD momentum 0.9,
    lr 0.007, weight decay 1e-4, cosine to 0; EDE per epoch.

    References:
        - Qin et al., IR-Net, CVPR 2020; official code (CIFAR recipe).
    """

    model = ComponentField(IRNetVGGSmallFactory)
    epochs = Field(300)
    optimizer = ComponentField(Optimizer, name="sgd", learning_rate=0.007, weight_decay=1e-4, schedule="cosine")


# -- Group-Net --------------------------------------------------------------------------
# Stage 1 of the official recipe: the same K-branch net with real weights, tanh for sign.
TANH_TWIN = dict(input_quantizer="tanh", kernel_quantizer=None)


class TrainGroupNet(TrainTask):
    """Group-Net's two-stage recipe (official code).

    Stage 1 trains the K-branch net with real weights and tanh instead of sign: SGD,
    momentum 0.9, lr 0.05, weight decay 1e-4, 40 epochs, divided by 10 at epochs 25 and
    35. Stage 2 fine-tunes the binary net from it: Adam, lr 5e-4, no weight decay, 40
    epochs, divided by 10 at epochs 20 and 30; no distillation. `pretrain_epochs=0`
    trains the binary net in one stage.

    `num_bases`, `aggregation` and `soft_gates` are set here, on the task, so that both
    stages build the same architecture (`zoo TrainGroupNetResNet20 num_bases=3`).

    Attributes:
        num_bases: K, the binary bases per block; default 5.
        aggregation: "scales" (a learnable lambda per base, the conference version;
            default) or "mean" (the journal version).
        soft_gates: whether to add the learnable gate between consecutive blocks;
            default True.

    References:
        - Zhuang et al., Group-Net, CVPR 2019; official code.
    """

    num_bases: int = Field(5)
    aggregation: str = Field("scales")
    soft_gates: bool = Field(True)
    epochs = Field(40)
    pretrain_epochs = Field(40)
    optimizer = ComponentField(Optimizer, name="adam", learning_rate=5e-4, schedule="steps", decay_epochs=(20, 30))
    pretrain_optimizer = ComponentField(
        Optimizer, name="sgd", learning_rate=0.05, weight_decay=1e-4, schedule="steps", decay_epochs=(25, 35)
    )


class TrainGroupNetImageNet(TrainGroupNet):
    """Group-Net on ImageNet (the paper's dataset), same two stages."""

    dataset = ComponentField(ImageNet)


@task
class TrainGroupNetResNet18(TrainGroupNetImageNet):
    """Group-Net ResNet-18 on ImageNet, the two stages of `TrainGroupNet`."""

    model = ComponentField(GroupNetResNet18Factory)
    pretrain_model = ComponentField(GroupNetResNet18Factory, **TANH_TWIN)


@task
class TrainGroupNetResNet34(TrainGroupNetImageNet):
    """Group-Net ResNet-34 on ImageNet, the two stages of `TrainGroupNet`."""

    model = ComponentField(GroupNetResNet34Factory)
    pretrain_model = ComponentField(GroupNetResNet34Factory, **TANH_TWIN)


@task
class TrainGroupNetResNet50(TrainGroupNetImageNet):
    """Group-Net ResNet-50 on ImageNet, the two stages of `TrainGroupNet`."""

    model = ComponentField(GroupNetResNet50Factory)
    pretrain_model = ComponentField(GroupNetResNet50Factory, **TANH_TWIN)


@task
class TrainGroupNetResNet20(TrainGroupNet):
    """Group-Net ResNet-20 on small images (default Fashion-MNIST), same two stages."""

    model = ComponentField(GroupNetResNet20Factory)
    pretrain_model = ComponentField(GroupNetResNet20Factory, **TANH_TWIN)


# -- Group-Net semantic segmentation -----------------------------------------------------
class TrainSegmentation(TrainTask):
    """Semantic segmentation: per-pixel cross-entropy and mean IoU, pixels labelled
    `IGNORE_LABEL` (255) counted in neither.

    Defaults for the 96x96 Fashion-MNIST scenes: batch 32, Adam lr 1e-3 with the
    "poly" (power 0.9) decay of the paper's recipe, no weight decay. The paper's VOC
    recipe (from an ImageNet backbone) is Adam lr 1e-4, weight decay 1e-4, batch 16,
    50 epochs: `optimizer.learning_rate=1e-4 optimizer.weight_decay=1e-4
    batch_size=16 epochs=50`. The paper's 10x learning rate of the head is not
    implemented (one optimizer for every weight).

    References:
        - Zhuang et al., Group-Net, CVPR 2019, Section 5; official segmentation code.
    """

    one_hot_labels = False
    dataset = ComponentField(FashionMNISTScenes)
    preprocessing = ComponentField(Segmentation)
    batch_size = Field(32)
    epochs = Field(30)
    shuffle_buffer = Field(20_000)
    optimizer = ComponentField(Optimizer, name="adam", learning_rate=1e-3, schedule="poly")

    def loss_function(self, model: tf.keras.Model) -> tf.keras.losses.Loss:
        """Per-pixel cross-entropy of class ids; `IGNORE_LABEL` pixels do not count."""
        return tf.keras.losses.SparseCategoricalCrossentropy(ignore_class=IGNORE_LABEL)

    def training_metrics(self, model: tf.keras.Model) -> List[tf.keras.metrics.Metric]:
        """Mean IoU and pixel accuracy, logged every epoch."""
        return [tf.keras.metrics.MeanIoU(self.dataset.num_classes, sparse_y_pred=False,
                                         ignore_class=IGNORE_LABEL, name="miou"),
                tf.keras.metrics.SparseCategoricalAccuracy(name="pixel_accuracy")]

    def test_metrics(self, model: tf.keras.Model) -> dict:
        """Mean IoU, per-class IoU and pixel accuracy on the whole test split.

        Arguments:
            model: the trained model.

        Returns:
            `miou`, `pixel_accuracy` (fractions), `class_iou` (class name -> IoU or
            None when the class is absent) and `test_examples`.
        """
        result = evaluate_segmentation(model, self.dataset, self.batch_size)
        return {"miou": result["miou"], "pixel_accuracy": result["pixel_accuracy"],
                "class_iou": result["class_iou"], "test_examples": result["examples"]}


# The small variant for the 96x96 scenes: the ResNet-20 layout with a stride-2 stem,
# its last stage dilated with BPAC (output stride 4, 24x24 features).
SCENES_BACKBONE = dict(backbone="GroupNetResNet20", backbone_options=lambda: {"stem_strides": 2}, output_stride=4)


@task
class TrainGroupNetFCN(TrainSegmentation):
    """Group-Net FCN on Fashion-MNIST scenes (the small variant; for VOC use
    `dataset=VocSegmentation model.backbone=GroupNetResNet18 model.backbone_options={}
    model.output_stride=8`). `model.backbone_weights=TAG` starts the backbone from a
    classification checkpoint; `model.num_bases=K` sets K."""

    model = ComponentField(GroupNetFCNFactory, **SCENES_BACKBONE)


@task
class TrainGroupNetDeepLab(TrainSegmentation):
    """Group-Net DeepLab on Fashion-MNIST scenes, ASPP rates (4, 8, 12) for its 24x24
    features (the paper's (12, 24, 36) are for 60x60 ones: `model.aspp_rates=[12,24,36]`)."""

    model = ComponentField(GroupNetDeepLabFactory, **SCENES_BACKBONE, aspp_rates=(4, 8, 12))


# -- Group-Net object detection ------------------------------------------------------------
@task
class TrainGroupNetFCOS(TrainTask):
    """Group-Net FCOS on Fashion-MNIST scenes (the small variant: the ResNet-20 layout
    with a stride-2 stem, FPN on its last two stages (strides 4 and 8) plus one extra
    level (16), 64 channels, 2 convolutions per head tower).

    Recipe: Adam lr 1e-3, linear decay, batch 32 (FCOS' own is SGD lr 0.01 with batch
    16 on COCO, for a full-precision ResNet-50). The loss is `FCOSLoss`; the test
    metric COCO mAP@[.5:.95], with mAP@.5 and mAP@.75, by pycocotools.
    For COCO: `dataset=CocoDetection model.backbone=GroupNetResNet18 model.backbone_options={}
    model.fpn_stages=[2,3,4] model.extra_levels=2 model.fpn_channels=256 model.head_convs=4`.

    References:
        - Zhuang et al., Structured Binary Neural Networks for Image Recognition
          (arXiv 1909.09934), the binary detector; Tian et al., FCOS, ICCV 2019.
    """

    one_hot_labels = False
    dataset = ComponentField(FashionMNISTScenes)
    preprocessing = ComponentField(ImageClassification)  # unused: targets come from the model
    model = ComponentField(
        GroupNetFCOSFactory, backbone="GroupNetResNet20", backbone_options=lambda: {"stem_strides": 2},
        fpn_stages=(2, 3), extra_levels=1, fpn_channels=64, head_convs=2, decode=False,
    )
    batch_size = Field(32)
    epochs = Field(30)
    shuffle_buffer = Field(20_000)

    def data(self, split: str, training: bool) -> tuple:
        """Batched (image, packed FCOS targets) pairs of a split, and its example count."""
        return batches(self.dataset, split, training, self.batch_size, FCOSTargets(self.dataset, self.model),
                       self.shuffle_buffer, self.seed, one_hot=False)

    def check_input(self, model: tf.keras.Model) -> None:
        super().check_input(model)
        model_geometry(model)  # raises for a model that is not FCOS

    @staticmethod
    def predicted_classes(model: tf.keras.Model) -> int:
        return int(model.output_shape[-1]) - 5  # class logits, l, t, r, b, centerness

    def loss_function(self, model: tf.keras.Model) -> tf.keras.losses.Loss:
        """`FCOSLoss` on the raw predictions."""
        return FCOSLoss(self.predicted_classes(model))

    def training_metrics(self, model: tf.keras.Model) -> List[tf.keras.metrics.Metric]:
        """None: mAP needs decoding, so it is measured on the test split at the end."""
        return []

    def test_metrics(self, model: tf.keras.Model) -> dict:
        """COCO mAP@[.5:.95], mAP@.5 and mAP@.75 on the whole test split (fractions)."""
        result = evaluate_detection(model, self.dataset, self.batch_size)
        return {k: result[k] for k in ("map", "map50", "map75")} | {"test_examples": result["examples"]}
