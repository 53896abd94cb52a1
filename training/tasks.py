"""The training task: `zoo Train<Model> key=value ...` trains one registered model.

`TrainTask` is the stage loop shared by every model; what differs by task kind
(loss, metrics, targets, evaluation) comes from the model's `Kind`, what differs by
paper (recipes, twins for pre-training) from `zoo.training.recipes`, and what a model
family's training needs (IR-Net's EDE schedule) from its factory's `callbacks()`.

Re-running a task with the same `output_dir` resumes where it stopped: Keras'
`BackupAndRestore` restores the weights, the optimizer state and the epoch; a finished
stage is not trained again, and a finished run only prints its result. A run folder
belongs to one training at a time (a lock) and to one configuration: a run resumes only
with the task and settings that started it (`TrainTask.run`). Two-stage recipes (`pretrain_epochs > 0`): stage 1 trains
`pretrain_model` (the real-valued twin), stage 2 initialises the binary model from it.
The run folder's files are listed in `zoo.training.runs`.
"""
import math
from functools import partial
from pathlib import Path
from typing import ClassVar, Dict, List, Optional

import tensorflow as tf
from zookeeper import ComponentField, Field
from zookeeper.core.component import base_getattr
from zookeeper.tf import Dataset

from zoo.complexity import complexity
from zoo.io import (
    ZooError,
    atomic_write_bytes,
    exclusive_lock,
    fault_point,
    load_weights,
    read_json,
    save_model,
    write_json,
)
from zoo.registry import ModelSpec
from zoo.training import precision, runs
from zoo.training.callbacks import Backup, EpochTimer, HistoryLogger
from zoo.training.datasets import FashionMNIST
from zoo.training.distillation import Distiller, load_teacher
from zoo.training.evaluation import batches, dataset_options
from zoo.training.optimizers import Optimizer, make_strategy


class TrainTask:
    """Base of every `Train<Model>` task (`zoo.training.recipes` makes them).

    Attributes:
        dataset: the dataset component; default `FashionMNIST`.
        model: the model factory to train.
        optimizer: the `Optimizer` of the (last) training stage.
        epochs: epochs of the (last) training stage; default 30.
        batch_size: global batch size; default 128.
        label_smoothing: label smoothing of a classifier's cross-entropy; default 0.0.
        pretrain_epochs: epochs of stage 1 of a two-stage recipe; default 0 (one stage).
        pretrain_model: the model factory of stage 1 (used when `pretrain_epochs > 0`).
        pretrain_optimizer: the `Optimizer` of stage 1.
        strategy: "default", "mirrored" or "multi_worker" (`make_strategy`).
        precision: "auto" (default), "float32" or "mixed_bfloat16": what the layers compute
            in (`zoo.training.precision`); checkpoints, model.h5 and test scores are
            float32 whatever trained them.
        teacher: a classifier to distil from (`zoo.training.distillation`): `MODEL:TAG`
            or a run folder; default None (labels only).
        distill_weight: the distillation loss' weight; the labels' loss gets 1 - it.
        seed: the random seed of TensorFlow, NumPy, Python and the shuffling; default 0.
        shuffle_buffer: size of the shuffle buffer (capped at the split's size).
        steps_per_epoch, validation_steps: limits for quick runs; None: full passes.
        progress_bar: Keras' progress bar (True) or one line per epoch.
        callbacks: extra Keras callbacks, run after the task's own.
        output_dir: the run's folder; default "runs/<Task>_<Dataset>".
    """

    spec: ClassVar[ModelSpec]  # the model this task trains (set when the task is made)
    # Recipe settings: the model's field values, and those of the stage-1 twin.
    model_fields: ClassVar[Dict[str, object]] = {}
    pretrain_twin: ClassVar[Optional[Dict[str, object]]] = None

    dataset: Dataset = ComponentField(FashionMNIST)
    model: tf.keras.Model = ComponentField()
    optimizer: Optimizer = ComponentField(Optimizer)

    epochs: int = Field(30)
    batch_size: int = Field(128)
    label_smoothing: float = Field(0.0)

    pretrain_epochs: int = Field(0)
    pretrain_model: tf.keras.Model = ComponentField(allow_missing=True)
    pretrain_optimizer: Optimizer = ComponentField(Optimizer)

    strategy: str = Field("default")
    precision: str = Field("auto")
    teacher: Optional[str] = Field(None)
    distill_weight: float = Field(1.0)
    seed: int = Field(0)
    shuffle_buffer: int = Field(60_000)
    steps_per_epoch: Optional[int] = Field(None)
    validation_steps: Optional[int] = Field(None)
    progress_bar: bool = Field(True)
    callbacks: List[tf.keras.callbacks.Callback] = Field(lambda: [])

    @Field
    def output_dir(self) -> str:
        return str(Path("runs") / f"{type(self).__name__}_{type(self.dataset).__name__}")

    @property
    def kind(self):
        return self.spec.kind

    def data(self, split: str, training: bool) -> tuple:
        """(batched tf.data.Dataset of (image, target), number of examples) of a split."""
        return batches(self.dataset, split, training, self.batch_size, partial(self.kind.pair, self.dataset),
                       self.shuffle_buffer, self.seed, one_hot=self.kind.one_hot)

    def check_input(self, model: tf.keras.Model) -> None:
        """Raises a ValueError when the model does not take the dataset's input shape."""
        expected, got = tuple(self.dataset.input_shape), tuple(model.input_shape[1:])
        if got != expected:
            raise ValueError(
                f"The model takes inputs of shape {got} but {type(self.dataset).__name__} "
                f"gives {expected}; drop the model.input_shape override or pick a matching dataset."
            )

    def check_settings(self) -> None:
        """Refuses settings no training can use, before any file is written.

        Raises:
            ZooError: `epochs`, `batch_size`, `steps_per_epoch`, `validation_steps` or
                `model.num_classes` below 1, a negative `pretrain_epochs`, or an
                optimizer's bad setting (`Optimizer.check`).
        """
        counts = {"epochs": self.epochs, "batch_size": self.batch_size, "steps_per_epoch": self.steps_per_epoch,
                  "validation_steps": self.validation_steps}
        for attr in ("model", "pretrain_model") if self.pretrain_epochs > 0 else ("model",):
            try:
                counts[f"{attr}.num_classes"] = getattr(base_getattr(self, attr), "num_classes", None)
            except AttributeError:  # no pretrain_model: the recipe has one stage
                raise ZooError(f"{type(self).__name__} has no stage-1 model (pretrain_model) to train "
                               f"pretrain_epochs={self.pretrain_epochs}; pass pretrain_epochs=0.") from None
        for key, value in counts.items():
            if value is not None and value < 1:
                raise ZooError(f"{key}={value} is not a positive number; pass 1 or more.")
        if self.precision not in precision.PRECISIONS:
            raise ZooError(f"precision={self.precision} is not one of {', '.join(precision.PRECISIONS)}.")
        if self.teacher and self.kind.name != "classification":
            raise ZooError(f"teacher= distils a classifier; {self.spec.name} is a {self.kind.name} model.")
        if not 0.0 <= self.distill_weight <= 1.0:
            raise ZooError(f"distill_weight={self.distill_weight} is not in [0, 1].")
        if self.pretrain_epochs < 0:
            raise ZooError(f"pretrain_epochs={self.pretrain_epochs} is negative; pass 0 (one stage) or more.")
        self.optimizer.check("optimizer")
        if self.pretrain_epochs > 0:
            self.pretrain_optimizer.check("pretrain_optimizer")

    def stage_callbacks(self, factory, stage_dir: Path) -> List[tf.keras.callbacks.Callback]:
        """The family's callbacks and the timer first, then loggers, backup, the user's."""
        writes = [  # the chief's, in a multi-worker run
            HistoryLogger(stage_dir / "history.csv"),  # before the backup: see HistoryLogger
            tf.keras.callbacks.TensorBoard(str(stage_dir / "logs"), write_graph=False, profile_batch=0),
        ]
        return [*factory.callbacks(), EpochTimer(), *([] if self.worker else writes), Backup(stage_dir / "backup"),
                *self.callbacks]

    @property
    def worker(self) -> str:
        """"" where this process writes the run folder, else its name in a multi-worker
        cluster ("worker-1"; `runs.worker_name`)."""
        return runs.worker_name(self.strategy)

    def train_stage(self, strategy, attr: str, optimizer: Optimizer, epochs: int,
                    stage_dir: Path, init_weights: Optional[Path]) -> tf.keras.Model:
        """Trains the model of field `attr` ("model" or "pretrain_model") for one stage,
        resuming from its backup; a finished stage only loads its weights. Writes
        model.weights.h5, model.h5 and stage.json to `stage_dir`. `init_weights` (stage
        1's weights) initialise a stage that has no backup yet."""
        stage_dir.mkdir(parents=True, exist_ok=True)
        with strategy.scope():
            model = getattr(self, attr)
            self.check_input(model)
        weights = stage_dir / "model.weights.h5"
        if read_json(stage_dir / "stage.json").get("epochs") == epochs and weights.exists():
            print(f"{stage_dir}: finished earlier ({epochs} epochs); loading its weights.")
            load_weights(model, weights)
            return self.in_float32(model, attr)
        train, n_train = self.data("train", training=True)
        validation, _ = self.data("validation", training=False)
        steps = self.steps_per_epoch or math.ceil(n_train / self.batch_size)
        with strategy.scope():
            trained = self.training_model(model, attr)
            trained.compile(optimizer=optimizer.build(steps, epochs, self.rate_multipliers(trained, attr)),
                            loss=self.loss_function(model),
                            metrics=self.kind.training_metrics(self.dataset.num_classes))
        if init_weights is not None and not (stage_dir / "backup").exists():
            print(f"Initialising {model.name} from {init_weights}")
            load_weights(model, init_weights)
        print(f"{model.name}: {stage_dir}, {strategy.num_replicas_in_sync} replica(s)\n"
              + complexity(model).table(per_layer=False))
        try:
            trained.fit(
                train, epochs=epochs, steps_per_epoch=steps, validation_data=validation,
                validation_steps=self.validation_steps,
                callbacks=self.stage_callbacks(base_getattr(self, attr), stage_dir),
                verbose=1 if self.progress_bar else 2,
            )
        except (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.CancelledError,
                tf.errors.DeadlineExceededError) as e:
            if self.strategy != "multi_worker":
                raise
            raise ZooError(f"a worker of this multi-worker run stopped ({type(e).__name__}); start every worker "
                           "again with the same command: the run resumes from its last backup.") from None
        model = self.in_float32(model, attr)
        if self.worker:
            return model  # the chief writes the run's files
        save_model(model, weights, weights_only=True)
        fault_point("final_save")
        save_model(model, stage_dir / "model.h5", weights_only=False)
        write_json(stage_dir / "stage.json", {"epochs": epochs})
        return model

    def training_model(self, model: tf.keras.Model, attr: str) -> tf.keras.Model:
        """What a stage fits: `model`, or a `Distiller` of it with a `teacher`."""
        if not self.teacher:
            return model
        teacher = load_teacher(self.teacher, self.dataset.input_shape, self.dataset.num_classes)
        return Distiller(model, teacher, self.distill_weight)

    def rate_multipliers(self, trained: tf.keras.Model, attr: str) -> list:
        """(variable, factor) pairs of variables with their own learning rate
        (`Optimizer.build`); none here."""
        return []

    def in_float32(self, model: tf.keras.Model, attr: str) -> tf.keras.Model:
        """`model` itself when it computes in float32 in one process; else the same model
        built anew, in float32 and outside any strategy, with its weights (so model.h5 and
        the test scores are float32's). Every worker of a multi-worker run calls it after
        training: reading the weights (batch normalization's statistics) is collective."""
        if model.compute_dtype == "float32" and self.strategy != "multi_worker":
            return model
        weights = model.get_weights()
        with precision.policy("float32"):
            twin = base_getattr(self, attr).rebuild()
        twin.set_weights(weights)
        return twin

    def choose_precision(self, out: Path) -> str:
        """What this run computes in: the run record's choice when it resumes, else
        `precision.choose` (for "auto" on a CPU with native bfloat16, a probe of the
        model on one training batch), then recorded in run.json."""
        record = read_json(out / "run.json")
        if "precision" not in record:
            train, n_train = self.data("train", training=True)

            def measure():
                self.check_input(base_getattr(self, "model").rebuild())  # before training it on a batch
                return precision.probe(base_getattr(self, "model").rebuild,
                             lambda m: m.compile(optimizer="adam", loss=self.loss_function(m)), next(iter(train)))

            per_epoch = self.steps_per_epoch or math.ceil(n_train / self.batch_size)
            steps = per_epoch * (self.epochs + self.pretrain_epochs)
            if self.precision == "auto" and self.strategy == "multi_worker":
                # Every worker must compute alike: no worker may decide by its own probe.
                record["precision"] = {"setting": "auto", "ran": "float32",
                                       "why": "a multi-worker run: pass precision=mixed_bfloat16 to use it"}
            else:
                record["precision"] = precision.choose(self.precision, measure, steps)
            if not self.worker:
                write_json(out / "run.json", record)
        decision = record["precision"]
        print(f"precision={decision['setting']}: {decision['ran']} ({decision['why']})")
        return decision["ran"]

    def loss_function(self, model: tf.keras.Model) -> tf.keras.losses.Loss:
        return self.kind.loss(model, self.label_smoothing)

    def run(self) -> dict:
        """Trains both stages (or one), evaluates on the test split and writes the run
        folder; returns the metrics record (also written to metrics.json).

        Before anything is written, the settings are checked (`check_settings`) and the
        run folder is locked for the whole run: a second training into it fails at once,
        naming the process that holds it. A folder that holds a run resumes it only with
        the same task and settings (`runs.check_record`; `progress_bar`, `callbacks` and
        `output_dir` may differ, they do not change what is trained); otherwise nothing
        is written and the error lists the settings that differ. The run record
        (config.txt, run.json) is written once these checks pass, when the run starts; a
        finished run (metrics.json) only prints its result, and writes nothing.

        Raises:
            ZooError: a bad setting, an `output_dir` that is a file or under one, a run
                folder in use, of another task or settings, or with a corrupt record.
        """
        self.check_settings()
        out = Path(self.output_dir)
        runs.make_output_dir(out)
        if self.worker:  # a multi-worker run's other workers train, the chief writes
            with exclusive_lock(out / f"{self.worker}.lock", f"{self.worker} of the run in {out}"):
                finished = read_json(out / "metrics.json")
                return self.print_finished(out, finished) if finished else self.train(out)
        config = runs.config_record(self)
        with exclusive_lock(out / runs.LOCK, f"the run folder {out}"):
            record = runs.check_record(out, type(self).__name__, config)
            finished = read_json(out / "metrics.json")
            if finished:
                return self.print_finished(out, finished)
            if "config" not in record:  # a new run (or one an older zoo started)
                atomic_write_bytes(out / "config.txt", (str(self) + "\n").encode("utf-8"))
                # The commit of the code the run started with (a resumed run keeps it).
                write_json(out / "run.json", {
                    "model": self.spec.name, "task": type(self).__name__, "dataset": type(self.dataset).__name__,
                    "git_commit": record.get("git_commit") or runs.git_commit(), "config": config})
            return self.train(out)

    def print_finished(self, out: Path, metrics: dict) -> dict:
        """Prints the result of the run finished earlier in `out`; returns its metrics."""
        try:
            text = (f"Test {self.kind.text(metrics)} on {metrics['test_examples']:,} {metrics['dataset']} "
                    f"test images ({metrics['epochs']} epochs)")
        except (KeyError, TypeError, ValueError) as e:
            raise ZooError(f"{out / 'metrics.json'} is incomplete ({type(e).__name__}: {e}); restore it, or delete "
                           "it to evaluate the run again.") from None
        print(f"{out}: finished earlier. {text}; nothing is trained or written.")
        return metrics

    def train(self, out: Path) -> dict:
        """Trains (or resumes) the stages into `out`, evaluates and writes metrics.json."""
        strategy = make_strategy(self.strategy)
        ran = self.choose_precision(out)
        tf.keras.utils.set_random_seed(self.seed)
        init = None
        with precision.policy(ran):
            if self.pretrain_epochs > 0:
                self.train_stage(strategy, "pretrain_model", self.pretrain_optimizer,
                                 self.pretrain_epochs, out / "pretrain", None)
                init = out / "pretrain" / "model.weights.h5"
            model = self.train_stage(strategy, "model", self.optimizer, self.epochs, out, init)
        if self.worker:
            print(f"{self.worker}: trained; the chief writes {out}.")
            return {}
        metrics = self.metrics_record(model, out)
        write_json(out / "metrics.json", metrics)
        print(f"Test {self.kind.text(metrics)} on {metrics['test_examples']:,} {metrics['dataset']} "
              f"test images; written to {out}")
        return metrics

    def metrics_record(self, model: tf.keras.Model, out: Path) -> dict:
        """The run's record: names, input, classes, architecture options, the test scores
        (`Kind.evaluate`), epochs, batch size, wall time, command, commit, machine,
        versions and the model's cost (`Complexity.as_dict()`)."""
        result = self.kind.evaluate(model, self.dataset, self.batch_size)
        result["test_examples"] = result.pop("examples")
        stages = [out / "pretrain"] if self.pretrain_epochs > 0 else []
        return {
            "model": self.spec.name,
            "task": type(self).__name__,
            "kind": self.kind.name,
            "dataset_options": dataset_options(self.dataset),
            "input_shape": list(model.input_shape[1:]),
            "num_classes": self.kind.predicted_classes(model),
            "options": base_getattr(self, "model").variant(),
            **result,
            "epochs": self.epochs,
            "pretrain_epochs": self.pretrain_epochs,
            "batch_size": self.batch_size,
            "precision": read_json(out / "run.json")["precision"]["ran"],
            "wall_time_seconds": round(sum(runs.epoch_seconds(d / "history.csv") for d in [*stages, out]), 1),
            "command": runs.command_line(),
            "git_commit": read_json(out / "run.json")["git_commit"],  # written by run() at the start
            "machine": runs.machine(),
            "versions": runs.versions(),
            **complexity(model).as_dict(),
        }
