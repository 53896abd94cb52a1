"""Helpers shared by the test modules (tests/ is on sys.path under pytest)."""
import numpy as np
import tensorflow as tf


def randomize_batch_norm(model: tf.keras.Model, seed: int = 0) -> None:
    """BN statistics like a trained net's, so no pre-activation sits exactly at a sign tie
    (in an untrained net many do, and float rounding then flips signs after export)."""
    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            shape = layer.gamma.shape
            layer.set_weights([rng.uniform(0.5, 1.5, shape), rng.normal(0, 0.3, shape),
                               rng.normal(0, 1, shape), rng.uniform(0.5, 2, shape)])


def value_and_grad(fn, x, upstream=None):
    """fn(x) and d(sum(fn(x) * upstream))/dx (upstream defaults to ones)."""
    x = tf.Variable(x)
    with tf.GradientTape() as tape:
        y = fn(x)
        loss = tf.reduce_sum(y if upstream is None else y * upstream)
    return y.numpy(), tape.gradient(loss, x).numpy()
