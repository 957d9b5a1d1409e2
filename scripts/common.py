"""What the benchmarks share that needs neither Keras nor TensorFlow.

Where the repository and its caches are, a hash of some of lrsearch's modules (cached
results are keyed by the code that made them, so a change reruns only what it touches),
and the markdown every benchmark prints: tables and the `target: ... met|MISSED` lines
that `scripts.benchmarks` collects. Light on purpose: the command-line start-up
benchmark and the parent process of the backends benchmark import it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lrsearch"


def cache_dir(*parts: str) -> Path:
    """The default `--cache`: `$XDG_CACHE_HOME/lrsearch-bench/<parts>` (else under ~/.cache)."""
    base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return base.joinpath("lrsearch-bench", *parts)


def package_files(*patterns: str, skip: Iterable[str] = ()) -> list[Path]:
    """lrsearch's files matching `patterns` (globs under lrsearch/, e.g. `"rangetest/*.py"`),
    less those matching a glob of `skip`, sorted by their path in the package. A pattern
    that matches nothing adds nothing (a module not written yet, or gone)."""
    skip = tuple(skip)
    found = {f for pattern in patterns for f in PACKAGE.glob(pattern) if f.is_file()}

    def rel(f: Path) -> str:
        return f.relative_to(PACKAGE).as_posix()

    return sorted((f for f in found if not any(fnmatch.fnmatch(rel(f), s) for s in skip)), key=rel)


def code_tag(*patterns: str, skip: Iterable[str] = (), length: int = 8) -> str:
    """A short hash of the bytes of `package_files(*patterns, skip=skip)`."""
    text = b"".join(f.read_bytes() for f in package_files(*patterns, skip=skip))
    return hashlib.sha1(text).hexdigest()[:length]


def target_line(text: str, ok: bool) -> str:
    """One claim as `scripts.benchmarks` reads it: `target: TEXT: met` or `... MISSED`."""
    return f"target: {text}: {'met' if ok else 'MISSED'}"


def print_targets(checks: Iterable[tuple[str, bool]]) -> None:
    for text, ok in checks:
        print(target_line(text, ok))


def print_table(rows: Sequence[Mapping[str, object]]) -> None:
    """A markdown table of `rows` (one dict each, the first one's keys as the header),
    floats to three decimals."""
    cols = list(rows[0])
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        cells = [f"{v:.3f}" if isinstance(v, float) else str(v) for v in r.values()]
        print("| " + " | ".join(cells) + " |")


def print_grids(summary: str, grids: Mapping[str, Mapping[float, float]]) -> None:
    """Oracle grids (name -> {rate: mean accuracy}) folded into a `<details>` block."""
    print(f"<details><summary>{summary}</summary>\n")
    for name, grid in grids.items():
        print(f"- {name}: " + ", ".join(f"{g:.3g}: {a:.3f}" for g, a in grid.items()))
    print("\n</details>\n")
