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


@pytest.fixture(autouse=True)
def _seed_and_clear():
    """Every test starts from the same random state and an empty Keras session."""
    import keras

    keras.utils.set_random_seed(1234)
    yield
    keras.backend.clear_session()
