"""A small fine-tuning setup: a Dense backbone with fixed ("pretrained") weights and a new
head, compiled with a `MultiOptimizer` whose backbone group trains at a fraction of the
head's rate, on scikit-learn's digits (no download)."""

from __future__ import annotations

import keras
import numpy as np

BACKBONE = ".*backbone.*"
"""The `OptimizerMap` pattern of the backbone's variables (paths are `model/layer/var`)."""


def digits(n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Digits' 8x8 images scaled to [0, 1] and their labels (the first `n`)."""
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x, y = (x / 16.0).astype("float32"), y.astype("int32")
    return (x, y) if n is None else (x[:n], y[:n])


def network(seed: int = 0, classes: int = 10) -> keras.Model:
    """Backbone (two Dense layers named `backbone_*`) and a head, weights drawn from `seed`."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential([
        keras.Input((64,)),
        keras.layers.Dense(32, activation="relu", name="backbone_1"),
        keras.layers.Dense(16, activation="relu", name="backbone_2"),
        keras.layers.Dense(classes, activation="softmax", name="head"),
    ])


def two_groups(head: keras.optimizers.Optimizer, backbone: keras.optimizers.Optimizer) -> keras.optimizers.Optimizer:
    """`MultiOptimizer`: `backbone` for the backbone's variables, `head` (the default) for the rest."""
    return keras.optimizers.MultiOptimizer(keras.optimizers.OptimizerMap(head, {BACKBONE: backbone}))


def fine_tune_model(head_lr: float = 1e-3, ratio: float = 0.1, cls: type = keras.optimizers.Adam,
                    seed: int = 0) -> keras.Model:
    """`network(seed)` compiled with `cls(head_lr)` on the head and `cls(head_lr * ratio)`
    on the backbone, sparse categorical crossentropy, accuracy."""
    model = network(seed)
    model.compile(two_groups(cls(head_lr), cls(head_lr * ratio)), "sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    return model


def sgd_groups_by_hand(model: keras.Model, x: np.ndarray, y: np.ndarray, batch: int, lrs, ratio: float) -> np.ndarray:
    """Plain SGD of `model` over the batches of `x, y` in order (TensorFlow): the head at
    `lrs[i]`, the backbone at `lrs[i] * ratio`; returns each step's loss before its update."""
    import re

    import tensorflow as tf

    loss_fn = keras.losses.SparseCategoricalCrossentropy()
    losses = []
    for i, lr in enumerate(lrs):
        xb, yb = x[i * batch:(i + 1) * batch], y[i * batch:(i + 1) * batch]
        with tf.GradientTape() as tape:
            loss = loss_fn(yb, model(xb, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        for var, grad in zip(model.trainable_variables, grads):
            scale = ratio if re.fullmatch(BACKBONE, var.path) else 1.0
            var.assign_sub(float(lr) * scale * grad)
        losses.append(float(loss))
    return np.array(losses)


def copy_weights(source: keras.Model, target: keras.Model) -> None:
    """`target`'s trainable weights set to `source`'s."""
    for a, b in zip(source.trainable_variables, target.trainable_variables):
        b.assign(a.numpy())
