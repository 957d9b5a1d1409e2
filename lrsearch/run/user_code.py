"""The user's model file run as if it were started alone.

A model file is imported as a fresh module with its folder on `sys.path` (its helper
modules import), `sys.argv` set to just its path (lrsearch's flags are not its own, so
an `argparse` in it sees no arguments and takes its defaults), and what it writes to
stderr shown as it would be. Whatever goes wrong is one `ModelFileError` line: a syntax
or import error, an exception, or a `sys.exit` (argparse's exit too, with its message).
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lrsearch.core.errors import ModelFileError, first_line

__all__ = ["import_model_file", "exit_message", "as_own_script"]


def import_model_file(path: Path) -> Any:
    """Import the Python file `path` as a fresh module, its folder on `sys.path` meanwhile.

    Raises:
        ModelFileError: the file cannot be read, does not compile, fails to import,
            raises or exits.
    """
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    module_name = f"_lrsearch_model_{path.stem}_{digest}"
    try:
        source = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise ModelFileError(f"cannot read model file {path}: {first_line(exc)}") from exc
    try:
        code = compile(source, str(path), "exec")
    except SyntaxError as exc:
        raise ModelFileError(
            f"model file {path} has a syntax error at line {exc.lineno}: {exc.msg}; fix it and rerun"
        ) from exc
    spec = importlib.util.spec_from_file_location(module_name, path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    folder = str(path.resolve().parent)
    sys.path.insert(0, folder)
    sys.modules[module_name] = module
    try:
        with as_own_script(path, "being imported"):
            exec(code, module.__dict__)  # noqa: S102 - running the user's own model file
    except ModelFileError:
        sys.modules.pop(module_name, None)
        raise
    except ImportError as exc:
        sys.modules.pop(module_name, None)
        raise ModelFileError(
            f"model file {path} failed to import: {first_line(exc)}; install the package or fix the import"
        ) from exc
    except Exception as exc:
        sys.modules.pop(module_name, None)
        raise ModelFileError(
            f"model file {path} raised {type(exc).__name__} while being imported: {first_line(exc)}"
        ) from exc
    finally:
        try:
            sys.path.remove(folder)
        except ValueError:
            pass
    return module


def exit_message(path: Any, code: Any, when: str, said: str = "") -> str:
    """The line for a model file that called `sys.exit(code)` (argparse's exit too)."""
    told = said.strip().splitlines()[-1] if said.strip() else ""
    return (f"model file {path} called sys.exit({code!r}) while {when}"
            + (f" ({told})" if told else "")
            + "; a model file must not exit: lrsearch passes it no command-line arguments, so give any "
              "it parses defaults")


@contextlib.contextmanager
def as_own_script(path: Path, when: str) -> Iterator[None]:
    """Run the user's code as if the model file were started alone: `sys.argv` is just its
    path (lrsearch's flags are not its own), and a `sys.exit` is a `ModelFileError`
    naming the exit and what the code printed last (argparse's message)."""
    argv, sys.argv = sys.argv, [str(path)]
    said = io.StringIO()
    try:
        with contextlib.redirect_stderr(said):
            yield
    except SystemExit as exc:
        raise ModelFileError(exit_message(path, exc.code, when, said.getvalue())) from None
    except BaseException:
        sys.stderr.write(said.getvalue())
        raise
    else:
        sys.stderr.write(said.getvalue())  # what it printed, shown as it would have been
    finally:
        sys.argv = argv
