"""How long the command line takes to answer `--help`, `--version` and a usage error.

    python -m scripts.bench_cli_startup [--repeat 5] [--root DIR]

Each command runs in a fresh interpreter, `--repeat` times; the table gives the median
and the fastest wall-clock seconds, and whether TensorFlow was imported (read from
`python -X importtime`). `--root` times another checkout (e.g. one from before the
console script deferred TensorFlow: only the `python -m lrsearch` rows apply there).
`import lrsearch` (eager: Keras and TensorFlow, for `keras.saving`) is the reference
row: what every answer cost while the command line imported the package eagerly.

Targets (one `target:` line each): `--help`, `--version` and a usage error answer in
under a second (median) without importing TensorFlow.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from scripts.common import ROOT, target_line

TARGET_S = 1.0
TARGETED = 5  # the first rows: the command line's own answers

COMMANDS = [
    ("lrsearch --help (console script)", ["-c", "import sys, lrsearch_main; sys.exit(lrsearch_main.main(['--help']))"]),
    ("lrsearch --version (console script)", ["-c", "import sys, lrsearch_main; sys.exit(lrsearch_main.main(['--version']))"]),
    ("lrsearch bogus (console script)", ["-c", "import sys, lrsearch_main; sys.exit(lrsearch_main.main(['bogus']))"]),
    ("python -m lrsearch --help", ["-m", "lrsearch", "--help"]),
    ("python -m lrsearch auto (missing MODEL_FILE)", ["-m", "lrsearch", "auto"]),
    ("python -c 'import lrsearch' (eager)", ["-c", "import lrsearch"]),
    ("python -c pass (the interpreter alone)", ["-c", "pass"]),
]


def _run(args: list[str], root: Path, importtime: bool = False) -> tuple[float, str]:
    env = {**os.environ, "PYTHONPATH": str(root)}
    env.pop("TF_CPP_MIN_LOG_LEVEL", None)  # as a user runs it
    cmd = [sys.executable, *(["-X", "importtime"] if importtime else []), *args]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=root, env=env, timeout=600)
    return time.perf_counter() - start, proc.stderr


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--root", type=Path, default=ROOT)
    args = parser.parse_args()
    root = args.root.resolve()
    here = root == ROOT
    print(f"| command{'' if here else f' ({root})'} | median s | fastest s | imports tensorflow |")
    print("|---|---:|---:|---|")
    targets = []
    for i, (name, cmd) in enumerate(COMMANDS):
        _, err = _run(cmd, root, importtime=True)
        if "ModuleNotFoundError" in err:
            print(f"| {name} | n/a | n/a | n/a |")
            continue
        tf = any(line.startswith("import time:") and line.split("|")[-1].strip() == "tensorflow"
                 for line in err.splitlines())
        times = [_run(cmd, root)[0] for _ in range(args.repeat)]
        median = statistics.median(times)
        print(f"| {name} | {median:.2f} | {min(times):.2f} | {'yes' if tf else 'no'} |", flush=True)
        if i < TARGETED:
            ok = median < TARGET_S and not tf
            targets.append(target_line(f"{name}: {median:.2f} s < {TARGET_S:g} s without TensorFlow", ok))
    print()
    print("\n".join(targets))


if __name__ == "__main__":
    main()
