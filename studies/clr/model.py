"""A small MLP on the 8x8 digits for the cyclical-rate study (CLR, Smith 2017)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import keras  # noqa: E402
from common import digits, mlp  # noqa: E402


def load_data():
    """((x_train, y_train), (x_val, y_val)): 64 pixel features in [0, 1], labels 0-9."""
    return digits(images=False)


def build_model() -> keras.Model:
    """A fresh compiled 64-64-10 MLP with SGD, momentum 0.9 (the rate is replaced by the study)."""
    return mlp()
