"""`python -m lrsearch ...`: the same as the `lrsearch` command."""

from __future__ import annotations

from lrsearch.cli.main import exit_process, main

if __name__ == "__main__":
    exit_process(main())
