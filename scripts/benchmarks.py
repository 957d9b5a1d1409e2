"""Run every benchmark with small settings and write BENCHMARKS.md.

Each benchmark module prints markdown (tables, then one `target: ... met|MISSED` line per
claim it checks). This runner runs them one after another with the settings in
`scripts.sections`, collects what they print, and writes one file: the date, the
machine, a summary of every target met or missed, then each benchmark's tables under the
command that made them.

    python -m scripts.benchmarks [--only range_test,search_efficiency] [--out BENCHMARKS.md]
        [--dry-run]

With `--only`, the chosen sections (and their rows of the targets table) replace their
namesakes in an existing file; the others are kept as they were.

With the default settings the whole run takes about 20-25 minutes on a 2-core CPU;
every benchmark takes flags for bigger runs (see each module's docstring, or `--help`).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

from scripts.common import ROOT
from scripts.sections import BENCHES, Bench


TARGET_LINE = re.compile(r"^target:\s*(.*):\s*(met|MISSED)\s*$")


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def version(dist: str) -> str:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return "not installed"


def commit() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT,
                             capture_output=True, text=True, check=True)
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def machine() -> str:
    cores = os.cpu_count()
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = cores
    return (f"{cpu_model()}, {cores} cores ({usable} usable), {platform.system()} "
            f"{platform.release()}; Python {platform.python_version()}, TensorFlow "
            f"{version('tensorflow')}, Keras {version('keras')}, Optuna {version('optuna')}, "
            f"KerasTuner {version('keras-tuner')}; {accelerator()}")


def accelerator() -> str:
    code = "import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                             env=env, check=True, timeout=120)
        gpus = int(out.stdout.strip().splitlines()[-1])
    except (OSError, ValueError, IndexError, subprocess.SubprocessError):
        return "GPUs unknown"
    return f"{gpus} GPU(s) visible to TensorFlow" if gpus else "CPU only (no GPU visible to TensorFlow)"


def run(bench: Bench) -> tuple[str, list[tuple[str, bool]], float, int]:
    cmd = [sys.executable, "-m", f"scripts.{bench.module}", *bench.args]
    print(f"== {bench.title}: {' '.join(cmd[1:])}", file=sys.stderr, flush=True)
    start = time.perf_counter()
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    proc = subprocess.run(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True, env=env)
    seconds = time.perf_counter() - start
    targets = []
    for line in proc.stdout.splitlines():
        m = TARGET_LINE.match(line.strip())
        if m:
            targets.append((m.group(1), m.group(2) == "met"))
    print(f"   {seconds:.0f} s, exit {proc.returncode}", file=sys.stderr, flush=True)
    return proc.stdout.strip(), targets, seconds, proc.returncode


def _parts(lines: list[str]) -> tuple[list[str], dict[str, list[str]], dict[str, list[str]]]:
    """A written file's header (down to the targets table), its target rows per
    benchmark title and its sections per title."""
    head_end = lines.index("## Targets") if "## Targets" in lines else len(lines)
    rows: dict[str, list[str]] = {}
    sections: dict[str, list[str]] = {}
    title = None
    for line in lines[head_end:]:
        if line.startswith("## ") and line != "## Targets":
            title = line[3:]
            sections[title] = [line]
        elif title is not None:
            sections[title].append(line)
        elif line.startswith("| ") and not line.startswith("| benchmark |"):
            rows.setdefault(line[2:].split(" | ", 1)[0], []).append(line)
    return lines[:head_end], rows, sections


def splice(old: list[str], new: list[str], titles: list[str]) -> list[str]:
    """`old` with the sections and target rows of `titles` taken from `new`, in the
    order of `BENCHES`; the header says which sections this run replaced."""
    old_head, old_rows, old_sections = _parts(old)
    new_head, new_rows, new_sections = _parts(new)
    date = next((ln for ln in new_head if ln.startswith("- Date:")), "")
    rerun = f"; {', '.join(titles)} rerun {date.removeprefix('- Date: ')}"
    head = [ln + rerun if ln.startswith("- Date:") and date else ln for ln in old_head]
    order = [b.title for b in BENCHES]
    known = sorted(set(old_sections) | set(new_sections),
                   key=lambda t: order.index(t) if t in order else len(order))
    pick = {t: (new_rows.get(t, []), new_sections[t]) if t in titles
            else (old_rows.get(t, []), old_sections.get(t, [])) for t in known}
    out = [*head, "## Targets", "", "| benchmark | claim | result |", "|---|---|---|"]
    for t in known:
        out += pick[t][0]
    out.append("")
    for t in known:
        out += pick[t][1]
        if out[-1] != "":
            out.append("")
    return out


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--only", default="", help="comma-separated keys: "
                   + ",".join(b.key for b in BENCHES))
    p.add_argument("--out", type=Path, default=ROOT / "BENCHMARKS.md")
    p.add_argument("--dry-run", action="store_true", help="print the commands only")
    args = p.parse_args()
    keys = {k.strip() for k in args.only.split(",") if k.strip()}
    unknown = keys - {b.key for b in BENCHES}
    if unknown:
        p.error(f"unknown benchmark(s) {sorted(unknown)}: use {[b.key for b in BENCHES]}")
    chosen = [b for b in BENCHES if not keys or b.key in keys]
    if args.dry_run:
        for b in chosen:
            print(f"python -m scripts.{b.module} {' '.join(b.args)}")
        return 0

    started = dt.datetime.now(dt.timezone.utc)
    revision = commit()
    done = [(b, *run(b)) for b in chosen]
    lines = [
        "# Benchmarks",
        "",
        "What lrsearch buys, measured against the alternatives. Written by "
        "`python -m scripts.benchmarks`; every table below sits under the command that "
        "made it. Timings are ratios measured within one run (baseline and candidate "
        "interleaved, medians over repeats): the machine is shared, so absolute seconds "
        "are only indicative.",
        "",
        f"- Date: {started:%Y-%m-%d %H:%M} UTC (commit {revision}"
        + ("" if commit() == revision else f"; the checkout moved to {commit()} during the run")
        + ")",
        f"- Machine: {machine()}",
        "",
        "## Targets",
        "",
        "| benchmark | claim | result |",
        "|---|---|---|",
    ]
    for b, _, targets, _, rc in done:
        if rc != 0:
            lines.append(f"| {b.title} | the script failed (exit {rc}) | **MISSED** |")
        for text, ok in targets:
            lines.append(f"| {b.title} | {text} | {'met' if ok else '**MISSED**'} |")
        if rc == 0 and not targets:
            lines.append(f"| {b.title} | (no target) | - |")
    for b, out, targets, seconds, rc in done:
        lines += ["", f"## {b.title}", "", b.about, "", "```",
                  f"python -m scripts.{b.module} {' '.join(b.args)}", "```", "",
                  f"({seconds / 60:.1f} min on this machine)", ""]
        body = [ln for ln in out.splitlines() if not TARGET_LINE.match(ln.strip())]
        lines += [ln if not ln.startswith("#") else "#" + ln for ln in body]
        if targets:
            lines += ["", "Targets:", ""]
            lines += [f"- {text}: {'met' if ok else '**MISSED**'}" for text, ok in targets]
        if b.miss_note and (rc != 0 or not all(ok for _, ok in targets)):
            lines += ["", f"**Why the miss.** {b.miss_note}"]
    if keys and args.out.exists():
        lines = splice(args.out.read_text().splitlines(), lines, [b.title for b in chosen])
    args.out.write_text("\n".join(lines).rstrip() + "\n")
    total = sum(seconds for _, _, _, seconds, _ in done)
    print(f"wrote {args.out} ({total / 60:.1f} min)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
