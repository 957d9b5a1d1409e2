"""What several tests share: where things are, and the small models and workers they run.

`CLI_MODEL` is the example model file the command-line tests run (`cli_model.py`: 320
samples, 10 steps an epoch at batch 32); `DATA` holds recorded curves and files written
by earlier releases.
"""

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SUPPORT = Path(__file__).resolve().parent
DATA = ROOT / "tests" / "data"
CLI_MODEL = SUPPORT / "cli_model.py"


def reference(module: str):
    """Import another project's package that a test compares with (torch, schedulefree,
    prodigyopt), or skip the test when it is not installed; with
    `LRSEARCH_REQUIRE_REFERENCES=1` (CI's reference stage) a missing one fails instead."""
    import importlib
    import os

    import pytest

    if os.environ.get("LRSEARCH_REQUIRE_REFERENCES") == "1":
        return importlib.import_module(module)
    return pytest.importorskip(module)
