"""The `lrsearch` console script: the command line, reached without loading TensorFlow.

`import lrsearch` imports the schedules and optimizers, and with them Keras and
TensorFlow (seconds), so that a model saved with them loads back after
`import lrsearch`. `lrsearch --help`, `--version` and a mistyped command line need none
of that, so this module imports the package with that step deferred (the package reads
`_DEFER_KERAS`); `lrsearch.cli.main` imports the schedules and optimizers itself before a
command touches Keras. It lives outside the package because importing anything inside
runs the package's `__init__` first.
"""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence

__all__ = ["main", "run"]


def _import_package_light() -> None:
    """Import `lrsearch` with its Keras imports deferred, unless it is imported already."""
    if "lrsearch" in sys.modules:
        return
    spec = importlib.util.find_spec("lrsearch")
    if spec is None or spec.loader is None:  # pragma: no cover - a broken install
        raise ModuleNotFoundError("No module named 'lrsearch'", name="lrsearch")
    module = importlib.util.module_from_spec(spec)
    module._DEFER_KERAS = True  # type: ignore[attr-defined]
    sys.modules["lrsearch"] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules["lrsearch"]
        raise


def main(argv: Sequence[str] | None = None) -> int:
    """`lrsearch.cli.main.main`, with the package imported light; returns the exit status."""
    _import_package_light()
    from lrsearch.cli.main import main as cli_main

    return cli_main(argv)


def run() -> None:
    """The console script: `main` on the process's own command line, ended as
    `lrsearch.cli.signals.exit_process` ends it (at once after Ctrl-C or SIGTERM)."""
    code = main()
    from lrsearch.cli.signals import exit_process

    exit_process(code)


if __name__ == "__main__":  # pragma: no cover
    run()
