"""A backbone pretrained on digits 0-4, fine-tuned on digits 5-9 with parameter groups.

`lrsearch auto studies/finetune_groups/model.py` (or `lrsearch tune ...`) imports this
file, calls `load_data()` once and `build_model()` once per range test and trial. The
backbone (two Dense layers) is pretrained once per process on digits 0-4 (Adam 3e-3, 10
epochs, seed 0); every `build_model()` puts those weights under a new 5-way head drawn
from the same seed and compiles a `MultiOptimizer`: the head at AdamW 1e-3, the
backbone (`.*backbone.*`) at a tenth of it. The range test ramps both groups at that
ratio, and the study searches the ratio (`group_ratio`) with the head's schedule.
"""

from __future__ import annotations

import keras
import numpy as np
from sklearn.datasets import load_digits

TRAIN = 300  # images of digits 5-9 to fine-tune on; the rest (596) validate
BACKBONE = ".*backbone.*"
_PRETRAINED: list = []


def _digits():
    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype("float32"), y.astype("int32")


def load_data():
    """((x_train, y_train), (x_val, y_val)): digits 5-9 (labels 0-4), a fixed permutation."""
    x, y = _digits()
    new = y >= 5
    xn, yn = x[new], y[new] - 5
    order = np.random.default_rng(0).permutation(len(yn))
    return (xn[order[:TRAIN]], yn[order[:TRAIN]]), (xn[order[TRAIN:]], yn[order[TRAIN:]])


def _network(head: str) -> keras.Model:
    return keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, activation="relu", name="backbone_1"),
                             keras.layers.Dense(16, activation="relu", name="backbone_2"),
                             keras.layers.Dense(5, activation="softmax", name=head)])


def pretrained_backbone() -> list:
    """The backbone's weights after pretraining on digits 0-4 (computed once per process)."""
    if not _PRETRAINED:
        x, y = _digits()
        keras.utils.set_random_seed(0)
        model = _network("old_head")
        model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
        model.fit(x[y < 5], y[y < 5], epochs=10, batch_size=32, verbose=0)
        _PRETRAINED.extend(layer.get_weights() for layer in model.layers[:2])
    return _PRETRAINED


def build_model() -> keras.Model:
    """The pretrained backbone under a fresh head, compiled with two parameter groups."""
    backbone = pretrained_backbone()
    keras.utils.set_random_seed(1000)
    model = _network("head")
    for layer, weights in zip(model.layers[:2], backbone):
        layer.set_weights(weights)
    head = keras.optimizers.AdamW(1e-3, beta_2=0.99, epsilon=1e-5, weight_decay=0.01)
    body = keras.optimizers.AdamW(1e-4, beta_2=0.99, epsilon=1e-5, weight_decay=0.01)
    model.compile(keras.optimizers.MultiOptimizer(keras.optimizers.OptimizerMap(head, {BACKBONE: body})),
                  "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
