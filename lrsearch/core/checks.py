"""Argument checks in Keras' message shape, written once for every layer.

Each returns the checked value or raises `ConfigError` (through `argument_error`):
``Argument `total_steps` must be > 0. Received: total_steps=-3``.
"""

from __future__ import annotations

import math
from typing import Any

from lrsearch.core.errors import ConfigError, argument_error

__all__ = ["LARGEST_RATE", "SMALLEST_RATE", "choice", "constant_float", "count", "fail", "interval", "non_negative",
           "number", "numbers", "positive", "rate", "rate_problem", "unit"]

SMALLEST_RATE = 1.1754943508222875e-38
"""float32's smallest normal number: a rate below it is zero or subnormal on the device."""
LARGEST_RATE = 1e6
"""The largest learning rate taken: above it every step overflows."""


def fail(name: str, requirement: str, value: Any) -> ConfigError:
    """The `ConfigError` for `name` (the caller raises it)."""
    return argument_error(name, requirement, value)


def number(name: str, value: Any) -> float:
    """A finite real number (a bool is refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) and not hasattr(value, "__float__"):
        raise fail(name, "a number", value)
    result = float(value)
    if not math.isfinite(result):
        raise fail(name, "a finite number", value)
    return result


def rate_problem(value: float) -> str | None:
    """What is wrong with a learning rate (a float), or None: it must be a normal
    float32 number from `SMALLEST_RATE` to `LARGEST_RATE`."""
    if SMALLEST_RATE <= value <= LARGEST_RATE:
        return None
    return f"a learning rate from {SMALLEST_RATE:.4g} (float32's smallest normal number) to {LARGEST_RATE:g}"


def rate(name: str, value: Any) -> float:
    """A learning rate (see `rate_problem`)."""
    result = number(name, value)
    problem = rate_problem(result)
    if problem:
        raise fail(name, problem, value)
    return result


def numbers(name: str, value: Any) -> Any:
    """A sequence of numbers as a float64 NumPy array (of any shape)."""
    import numpy as np

    if value is None or isinstance(value, (str, bytes, bool)):
        raise fail(name, "a sequence of numbers", value)
    try:
        return np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        text = repr(value)
        raise argument_error(name, "a sequence of numbers", value,
                             received=f"{name}={text if len(text) <= 60 else text[:57] + '...'}") from None


def positive(name: str, value: Any) -> float:
    result = number(name, value)
    if result <= 0:
        raise fail(name, "> 0", value)
    return result


def non_negative(name: str, value: Any) -> float:
    result = number(name, value)
    if result < 0:
        raise fail(name, ">= 0", value)
    return result


def count(name: str, value: Any, minimum: int = 0) -> int:
    """A whole number >= `minimum` (a float that is whole is accepted)."""
    result = number(name, value)
    if result != int(result):
        raise fail(name, "a whole number", value)
    if result < minimum:
        raise fail(name, f">= {minimum}" if minimum != 1 else "> 0", value)
    return int(result)


def _interval_text(low: float, high: float, open_low: bool, open_high: bool) -> str:
    return f"{'(' if open_low else '['}{low:g}, {high:g}{')' if open_high else ']'}"


def interval(name: str, value: Any, low: float, high: float, *, open_low: bool = False,
             open_high: bool = False) -> float:
    """A number in the interval from `low` to `high` (each end open or closed)."""
    result = number(name, value)
    low_ok = result > low if open_low else result >= low
    high_ok = result < high if open_high else result <= high
    if not (low_ok and high_ok):
        raise fail(name, f"in {_interval_text(low, high, open_low, open_high)}", value)
    return result


def unit(name: str, value: Any, *, open_low: bool = False, open_high: bool = False) -> float:
    """A number in [0, 1] (either end open)."""
    return interval(name, value, 0.0, 1.0, open_low=open_low, open_high=open_high)


def constant_float(name: str, value: Any, low: float, high: float, *, open_low: bool, open_high: bool,
                   why: str) -> float:
    """A plain float (never a schedule) in an interval: a hyperparameter an optimizer
    needs constant; `why` completes "a float (...)" in the message."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise fail(name, f"a float ({why})", value)
    result = float(value)
    ok = (result > low if open_low else result >= low) and (result < high if open_high else result <= high)
    if not ok or math.isnan(result):
        raise fail(name, f"in {_interval_text(low, high, open_low, open_high)}", value)
    return result


def choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    """One of `choices`."""
    if value not in choices:
        raise fail(name, "one of " + ", ".join(repr(c) for c in choices), value)
    return value
