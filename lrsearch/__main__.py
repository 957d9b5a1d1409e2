"""`python -m lrsearch ...`: the same as the `lrsearch` command."""

from __future__ import annotations

from lrsearch.cli.main import main
from lrsearch.cli.signals import exit_process

if __name__ == "__main__":
    exit_process(main())
