"""The command-line tests' digits model (`cli_model.py`), trained on every JAX device:
the file sets `keras.distribution.DataParallel` before any model is built."""

from __future__ import annotations

import keras

keras.distribution.set_distribution(keras.distribution.DataParallel())

from tests.support.cli_model import build_model, load_data  # noqa: E402

__all__ = ["build_model", "load_data"]
