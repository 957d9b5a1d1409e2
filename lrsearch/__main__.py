"""`python -m lrsearch ...`: the same as the `lrsearch` command."""

from __future__ import annotations

import sys

from lrsearch.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
