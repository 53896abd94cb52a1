"""Training with a second loss term beside the labels' one: the models the training loop
fits when a run distils from a teacher (`zoo.training.distillation.Distiller`) or adds
an auxiliary head's loss (`AuxiliaryLoss`). Calling such a wrapper calls the model it
trains; the checkpoints, model.h5 and test scores are that model's alone.
"""
from typing import List

import tensorflow as tf


class ExtraLoss(tf.keras.Model):
    """Trains `student` on its compiled loss mixed with a second term; calling the
    wrapper calls the student. Subclasses say what the network computes (`forward`),
    what the second term is (`extra`) and how the two mix (`mix`). The epoch's means of
    the loss trained on and of the second term are logged as "loss" and `extra_name`.

    Arguments:
        student: the model trained (softmax outputs).
        weight: the second term's weight (its meaning is the subclass' `mix`).
    """

    extra_name = "extra"

    def __init__(self, student: tf.keras.Model, weight: float, name: str, **kwargs):
        super().__init__(name=name, **kwargs)
        self.student, self.weight = student, float(weight)
        self.trackers = [tf.keras.metrics.Mean(name="loss"), tf.keras.metrics.Mean(name=self.extra_name)]

    @property
    def metrics(self):
        return [*self.trackers, *self.compiled_metrics.metrics]

    def call(self, inputs, training=None):
        return self.student(inputs, training=training)

    def forward(self, x, training: bool) -> List[tf.Tensor]:
        """The student's predictions first, then what `extra` needs of the same pass."""
        return [self.student(x, training=training)]

    def extra(self, x, y, outputs: List[tf.Tensor]) -> tf.Tensor:
        """The second term, averaged over the global batch (as the compiled loss is)."""
        raise NotImplementedError

    def mix(self, hard: tf.Tensor, extra: tf.Tensor) -> tf.Tensor:
        raise NotImplementedError

    def losses_of(self, x, y, training: bool):
        """The loss of a batch; updates the metrics (the loss and its second term)."""
        outputs = self.forward(x, training)
        hard = self.compiled_loss(y, outputs[0], regularization_losses=self.student.losses)
        extra = self.extra(x, y, outputs)
        loss = self.mix(hard, extra)
        self.compiled_metrics.update_state(y, outputs[0])
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        for tracker, value in zip(self.trackers, (loss, extra)):
            tracker.update_state(value * replicas)
        return loss

    def train_step(self, data):
        with tf.GradientTape() as tape:
            loss = self.losses_of(*data[:2], training=True)
        self.optimizer.minimize(loss, self.trainable_variables, tape=tape)
        return {m.name: m.result() for m in self.metrics}

    def test_step(self, data):
        self.losses_of(*data[:2], training=False)
        return {m.name: m.result() for m in self.metrics}


class AuxiliaryLoss(ExtraLoss):
    """The segmentation code's auxiliary loss (PyTorch-Encoding's `--aux`, which the
    Group-Net segmentation code trains with): a second head on an earlier stage predicts
    the same masks, and its loss, times `weight`, is added to the main head's:
    loss = CE(main) + weight * CE(auxiliary). The auxiliary head is trained with the
    model and then dropped: inference and the checkpoints have the main head only.

    Arguments:
        student: the model trained.
        auxiliary: a model from the student's inputs to the auxiliary head's
            predictions, sharing the student's layers up to the stage it reads.
        weight: the auxiliary loss' weight (the official default: 0.2).
    """

    extra_name = "auxiliary"

    def __init__(self, student: tf.keras.Model, auxiliary: tf.keras.Model, weight: float, **kwargs):
        super().__init__(student, weight, name=f"{student.name}_auxiliary", **kwargs)
        self.both = tf.keras.Model(student.inputs, [student.outputs[0], auxiliary.outputs[0]])

    def forward(self, x, training):
        return self.both(x, training=training)

    def extra(self, x, y, outputs):
        return self.compiled_loss(y, outputs[1])

    def mix(self, hard, extra):
        return hard + self.weight * extra
