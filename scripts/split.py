"""The one fit / check split of every benchmark setup, and the ledger of check-half runs.

Rules and constants are chosen on the **fit** half; the **check** half is only reported.
A check setup whose numbers were looked at while lrsearch was being changed is **seen**:
it is still run with `--half check`, but no longer counts as held out. Every setup that
was labelled check before this split existed has been seen. Scripts with halves take
`--half fit|check` (default fit) through `add_half_argument`, select their setups with
`select`, and wrap a check run in `check_run`, which appends one row to
`scripts/check_ledger.jsonl`: commit (and whether the tree was dirty), UTC date, the
script, its arguments and what it printed. Light on purpose: no Keras.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import subprocess
import sys
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path

from scripts.common import ROOT

FIT = frozenset({
    # the twelve setups of scripts.setups
    "mlp-sgd", "cnn-adam", "gru-adamw", "attn-adam", "mlp-rmsprop-b16", "finetune-mlp-sgd",
    # the equal-budget cases of scripts.cases (a setup at another batch is another name)
    "gru-adamw-b16", "mlp-rmsprop-b10",
    # the instrument's setups (scripts.instrument)
    "i-mlp-adam", "i-mlp-rmsprop", "i-cnn-adam", "i-cnn-bn-sgd", "i-gru-adamw", "i-attn-adamw",
    "i-finetune-mlp-sgd",
})
"""Names of the setups rules and constants may be chosen on."""

SEEN = frozenset({
    "cnn-bn-sgd", "mlp-adam-b512", "lstm-rmsprop", "resnet-adamw", "attn-adamw-b128",
    "finetune-cnn-adam", "attn-adam-b32", "mlp-adam-b10",
})
"""Check setups whose numbers have been read during development: reported, not held out."""

CHECK = SEEN | frozenset({"i-mlp-sgd-b256", "i-resnet-adamw", "i-lstm-adam", "i-finetune-cnn-adam"})
"""Names of the setups only reported (`--half check`)."""

HALVES = ("fit", "check")
LEDGER = ROOT / "scripts" / "check_ledger.jsonl"


def half(name: str) -> str:
    """`"fit"` or `"check"` for a setup's name; a name in neither is refused (KeyError), so
    that a new setup cannot run without being put in one half here."""
    if name in FIT:
        return "fit"
    if name in CHECK:
        return "check"
    raise KeyError(f"setup {name!r} is in neither half: add it to scripts/split.py")


def select(items: Iterable, which: str) -> list:
    """The items (anything with a `.name`) of half `which`."""
    return [x for x in items if half(x.name) == which]


def add_half_argument(parser: argparse.ArgumentParser) -> None:
    """`--half fit|check`, default fit: the check half runs only when asked for by name."""
    parser.add_argument("--half", choices=HALVES, default="fit",
                        help="which setups to run (default fit; check only reports final numbers "
                             "and appends a row to scripts/check_ledger.jsonl)")


def commit() -> tuple[str, bool]:
    """(`git rev-parse HEAD`, whether the work tree differs from it); ("unknown", True)
    outside a git checkout."""
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True,
                              text=True, check=True).stdout.strip()
        dirty = bool(subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT,
                                    capture_output=True, text=True, check=True).stdout.strip())
        return head, dirty
    except (OSError, subprocess.CalledProcessError):
        return "unknown", True


def append_row(path: Path, script: str, args: Sequence[str], printed: str, **extra: object) -> dict:
    """Append one JSON line to the ledger `path` and return it."""
    head, dirty = commit()
    row = {"commit": head, "dirty": dirty,
           "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
           "script": script, "args": list(args), "printed": printed, **extra}
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(json.dumps(row) + "\n")
    return row


def read_ledger(path: Path = LEDGER) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()] if path.exists() else []


class _Tee(io.TextIOBase):
    def __init__(self, *streams) -> None:
        self.streams = streams

    def write(self, s: str) -> int:
        for st in self.streams:
            st.write(s)
        return len(s)

    def flush(self) -> None:
        for st in self.streams:
            st.flush()


@contextlib.contextmanager
def check_run(which: str, script: str, args: Sequence[str] | None = None,
              ledger: Path | None = None) -> Iterator[None]:
    """Around a script's run: on the check half, what it prints to stdout is also kept and,
    when the run ends without an error, appended to the ledger as one row. On the fit half,
    nothing."""
    if which != "check":
        yield
        return
    kept = io.StringIO()
    real = sys.stdout
    sys.stdout = _Tee(real, kept)
    try:
        yield
    finally:
        sys.stdout = real
    append_row(ledger or LEDGER, script, sys.argv[1:] if args is None else args, kept.getvalue(),
               recorded="run")
