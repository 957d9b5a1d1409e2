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
