"""Shared test setup: quiet TensorFlow, the backend, seeds, --slow.

The backend is TensorFlow unless KERAS_BACKEND says otherwise; under JAX or PyTorch only
the tests marked `backends` (the core that must hold on every backend) run.
"""

from __future__ import annotations

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("MPLBACKEND", "Agg")

import pytest  # noqa: E402


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--slow", action="store_true", help="also run tests marked slow")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    backend = os.environ["KERAS_BACKEND"]
    if backend != "tensorflow":
        other = pytest.mark.skip(reason=f"TensorFlow only (KERAS_BACKEND={backend} runs the tests marked backends)")
        for item in items:
            if "backends" not in item.keywords:
                item.add_marker(other)
    if config.getoption("--slow") or os.environ.get("CI") == "true":
        return
    skip = pytest.mark.skip(reason="slow: run with --slow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def compiled():
    """`compiled(fn)`: `fn(step)` traced as the backend traces a train step (`tf.function`,
    `jax.jit`; PyTorch's `fit` runs eagerly), called with an integer step tensor."""
    backend = os.environ["KERAS_BACKEND"]
    if backend == "tensorflow":
        import tensorflow as tf

        return lambda fn: (lambda step, f=tf.function(fn): f(tf.constant(step, tf.int64)))
    if backend == "jax":
        import jax
        import jax.numpy as jnp

        return lambda fn: (lambda step, f=jax.jit(fn): f(jnp.asarray(step, jnp.int32)))
    import torch

    return lambda fn: (lambda step: fn(torch.tensor(step, dtype=torch.int64)))


def _logger_state() -> tuple:
    import logging

    logger = logging.getLogger("lrsearch")
    return list(logger.handlers), logger.level, logger.propagate


_LOGGER_AT_START = _logger_state()


@pytest.fixture(autouse=True)
def _seed_and_clear():
    """Every test starts from the same random state and an empty Keras session, and
    leaves the `lrsearch` logger as the session began with it: the command line, run
    in-process (also by a module-scoped fixture), points it at the stderr of its moment,
    which pytest closes afterwards, and stops it propagating to pytest's log capture."""
    import logging

    import keras

    keras.utils.set_random_seed(1234)
    yield
    keras.backend.clear_session()
    logger = logging.getLogger("lrsearch")
    handlers, level, propagate = _LOGGER_AT_START
    logger.handlers[:], logger.level, logger.propagate = list(handlers), level, propagate
