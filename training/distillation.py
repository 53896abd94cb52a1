"""Distillation from a teacher: `zoo Train<Model> teacher=BiRealNet20FP:fashion_mnist`.

ReActNet's distributional loss (Liu et al., ECCV 2020, Section 3.3): the binary student
learns to match the output distribution of a real-valued teacher, the KL divergence
KL(p_teacher || p_student) over the classes, averaged over the batch. `distill_weight`
(default 1.0, ReActNet's: the distributional loss alone) mixes it with the cross-entropy
on the labels: weight * KL + (1 - weight) * CE. The teacher sees the same (augmented)
batch, in inference mode and float32, and is never trained; the checkpoints, model.h5
and test scores are the student's alone.

A teacher is a published checkpoint, `MODEL:TAG` (`zoo weights list`), or a finished
run folder (its model.h5), predicting the task's classes from the task's images.
"""
from pathlib import Path

import tensorflow as tf

from zoo import registry
from zoo.io import ZooError
from zoo.training import precision
from zoo.training.extra_loss import ExtraLoss


class Distiller(ExtraLoss):
    """Trains `student` on a mix of the labels' cross-entropy (the compiled loss) and
    the KL divergence to `teacher`'s predictions; calling it calls the student.

    Arguments:
        student: the model trained (softmax outputs).
        teacher: the frozen model whose predictions (softmax) the student matches.
        weight: the distillation loss' weight in [0, 1]; the cross-entropy gets 1 - weight.
    """

    extra_name = "distillation"

    def __init__(self, student: tf.keras.Model, teacher: tf.keras.Model, weight: float = 1.0, **kwargs):
        super().__init__(student, weight, name=f"{student.name}_distilled", **kwargs)
        self.teacher = teacher
        teacher.trainable = False

    def divergence(self, soft: tf.Tensor, probabilities: tf.Tensor) -> tf.Tensor:
        """KL(soft || probabilities) of each example, in float32."""
        soft, probabilities = tf.cast(soft, tf.float32), tf.cast(probabilities, tf.float32)
        return tf.keras.losses.KLDivergence(reduction=tf.keras.losses.Reduction.NONE)(soft, probabilities)

    def extra(self, x, y, outputs):
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        return tf.nn.compute_average_loss(self.divergence(self.teacher(x, training=False), outputs[0]),
                                          global_batch_size=tf.shape(x)[0] * replicas)

    def mix(self, hard, extra):
        return self.weight * extra + (1.0 - self.weight) * hard


def load_teacher(teacher: str, input_shape, num_classes: int) -> tf.keras.Model:
    """The teacher model of `teacher=`: `MODEL:TAG` (a published checkpoint) or a run
    folder, built in float32.

    Raises:
        ZooError: not a run folder nor `MODEL:TAG`, an unknown model or tag, a run folder
            without model.h5, or a teacher of another input shape or number of classes.
    """
    path = Path(teacher).expanduser()
    with precision.policy("float32"):
        if path.is_dir():
            from zoo.training.evaluation import load_run_or_model

            model = load_run_or_model(str(path), None, None)[0]
        else:
            name, _, tag = teacher.partition(":")
            if not tag or "/" in teacher:
                raise ZooError(f"teacher={teacher} is neither a run folder nor MODEL:TAG (e.g. "
                               "BiRealNet20FP:fashion_mnist, from `zoo weights list`).")
            model = registry.get(name).constructor(weights=tag, input_shape=tuple(input_shape),
                                                   num_classes=num_classes)
    if tuple(model.input_shape[1:]) != tuple(input_shape) or model.output_shape[-1] != num_classes:
        raise ZooError(f"teacher={teacher} takes {tuple(model.input_shape[1:])} and predicts "
                       f"{model.output_shape[-1]} classes; the task needs {tuple(input_shape)} and {num_classes}.")
    return model
