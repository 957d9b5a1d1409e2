"""A tiny model file for the command-line tests: softmax regression on 8x8 digits."""

from __future__ import annotations

import keras
from sklearn.datasets import load_digits


def load_data():
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    return (x[:320], y[:320]), (x[320:480], y[320:480])


def build_model():
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10, activation="softmax")])
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model
