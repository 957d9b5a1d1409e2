"""Exceptions a user can cause, one class per kind of mistake.

Every class derives from `LRSearchError` and from the builtin it refines, so callers
can catch either. Messages are one line: what went wrong, then what to do. The CLI
prints `str(exc)` and exits with status 1.
"""

from __future__ import annotations

import re

__all__ = [
    "LRSearchError",
    "ConfigError",
    "DataError",
    "CurveError",
    "DivergenceError",
    "ScheduleFormatError",
    "ModelFileError",
    "StorageError",
    "argument_error",
    "first_line",
    "data_cause",
    "raised_by",
]


class LRSearchError(Exception):
    """Base class of every error lrsearch raises on purpose."""


class ConfigError(LRSearchError, ValueError):
    """An argument or option is out of range or inconsistent with another one."""


class DataError(LRSearchError, ValueError):
    """Training or validation data is missing, malformed, or does not fit the model."""


class CurveError(LRSearchError, ValueError):
    """A loss curve from which nothing can be said (too short, all NaN, ...)."""


class DivergenceError(LRSearchError, ArithmeticError):
    """Training produced a NaN or infinite loss before anything useful was recorded."""


class ScheduleFormatError(LRSearchError, ValueError):
    """A schedule file is not JSON, of another format or version, or misses a field."""


class ModelFileError(LRSearchError, ValueError):
    """A model file cannot be read, imported, or lacks what it must define."""


class StorageError(LRSearchError, ValueError):
    """A study storage URL cannot be opened or is of an unknown kind."""


def first_line(exc: BaseException, limit: int = 240) -> str:
    """The first non-empty line of an exception's message (its class name when empty),
    without a final period and cut at `limit` characters: the part of a library's long
    error that fits on the one line lrsearch shows."""
    text = str(exc).strip()
    line = next((part.strip() for part in text.splitlines() if part.strip()), "")
    line = (line or type(exc).__name__).rstrip(".")
    return line if len(line) <= limit else line[: limit - 3] + "..."


def raised_by(exc: BaseException) -> str:
    """`Type: message` of an error raised in the user's code (a custom `train_step`);
    TensorFlow puts the original one last, after "in user code:" and the trace."""
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("in user code") and ": " in lines[-1]:
        return lines[-1]
    return f"{type(exc).__name__}: {first_line(exc)}"


def argument_error(name: str, requirement: str, value: object,
                   cls: type[LRSearchError] = ConfigError, *, received: str | None = None) -> LRSearchError:
    """An error in Keras' shape: "Argument `name` must be REQUIREMENT. Received: name=VALUE".

    `requirement` continues "must be" ("an integer >= 1", "one of ('a', 'b')"); the caller
    raises what it returns, so the traceback points at the check. `received` replaces
    `name=VALUE` when the value is better told otherwise (cut short, or beside another).
    """
    shown = f"{name}={value!r}" if received is None else received
    return cls(f"Argument `{name}` must be {requirement}. Received: {shown}")


_LABEL = re.compile(r"label value of (-?\d+) which is outside the valid range of \[0, (\d+)\)")
_TORCH_LABEL = re.compile(r"Target (-?\d+) is out of bounds")
_NOISE = ("Graph execution error", "Detected at node", "defined at", "File \"", "[[", "{{", "Error in user-defined")


def data_cause(exc: BaseException, classes: int | None = None) -> str:
    """What a data error raised mid-training (TensorFlow's `InvalidArgumentError`,
    PyTorch's `IndexError`) says about the data, in a few words: "label 10 out of range
    for 10 classes", or the line of its long message that states the cause (not the
    graph's node names and stack). PyTorch does not name the number of classes: `classes`
    (the model's output width) fills it in."""
    text = str(exc)
    match = _LABEL.search(text)
    torch_match = None if match else _TORCH_LABEL.search(text)
    if match or (torch_match and classes):
        value, classes = (int(match.group(1)), int(match.group(2))) if match else (int(torch_match.group(1)), classes)
        return f"label {value} out of range for {classes} classes (labels must be 0 to {classes - 1})"
    if torch_match:
        return f"label {int(torch_match.group(1))} out of range"
    text = re.sub(r"\{\{[^}]*\}\}\s*", "", text)  # TensorFlow's node names
    text = re.sub(r"\s*\[Op:[^\]]*\](\s*name:\s*\S*)?", "", text)
    lines = [line.strip() for line in text.splitlines()
             if line.strip() and not line.startswith((" ", "\t")) and not any(n in line for n in _NOISE)]
    line = lines[-1] if lines else first_line(exc)
    line = re.sub(r"\s*\[Op:[^\]]*\]\s*$", "", line).rstrip(".")
    return line if len(line) <= 200 else line[:197] + "..."
