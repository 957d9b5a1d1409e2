"""Cost of a range test against `model.fit` over the same batches, on each Keras backend
(target: ratio <= 1.05 on each).

Each backend runs in its own process (`KERAS_BACKEND` is read once, at import), niced.
In it both sides start from a freshly built and compiled model and read the same NumPy
arrays in order (`fit(..., shuffle=False)` over exactly `steps` batches; the range test
with `steps` steps), so both include tracing/compiling their step; the range test also
includes its snapshot and restore. "ratio" compares the whole calls (wall clock);
"cpu ratio" the processor time of the whole calls (all threads), which a machine shared
with other jobs disturbs less; "ratio per step" the marginal wall-clock cost of a step,
from runs of `steps` and `2 * steps` batches (compiling and set-up cancel out). Runs
alternate; medians of `--repeats`.

    python -m scripts.bench_backends [--steps 200] [--repeats 3] [--backends tensorflow,jax,torch]

Prints a markdown table and one `target:` line per backend.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time

from scripts.common import ROOT, print_table, target_line

TARGET = 1.05


def child(steps: int, repeats: int, batch_size: int) -> dict:
    """Runs inside one backend's process: medians of both sides at `steps` and `2 * steps`."""
    import keras
    import numpy as np

    import lrsearch
    from scripts.setups import dropout_mlp as build
    from scripts.setups import scaled_digits

    x, y = scaled_digits()
    y = y.astype("int32")

    def arrays(n: int) -> tuple:
        idx = np.arange(n * batch_size) % len(x)
        return x[idx], y[idx]

    def run(kind: str, k: int) -> tuple[float, float]:
        n = k * steps
        xs, ys = arrays(n)
        model = build()
        t, c = time.perf_counter(), time.process_time()
        if kind == "rt":
            lrsearch.range_test(model, (xs, ys), min_lr=1e-5, max_lr=1e-2, steps=n, batch_size=batch_size,
                                diverge=0, verbose=0)
        else:
            model.fit(xs, ys, batch_size=batch_size, epochs=1, verbose=0, shuffle=False)
        return time.perf_counter() - t, time.process_time() - c

    keras.utils.set_random_seed(0)
    run("rt", 1), run("fit", 1)  # warm-up: imports and first compilations of the process
    times: dict[tuple[str, int], list[tuple[float, float]]] = {
        ("rt", 1): [], ("fit", 1): [], ("rt", 2): [], ("fit", 2): []}
    order = list(times)
    for i in range(repeats):
        for key in order if i % 2 == 0 else order[::-1]:
            times[key].append(run(*key))
            keras.backend.clear_session()
    med = {key: statistics.median(w for w, _ in v) for key, v in times.items()}
    cpu = {key: statistics.median(c for _, c in v) for key, v in times.items()}
    fit_step = (med[("fit", 2)] - med[("fit", 1)]) / steps
    rt_step = (med[("rt", 2)] - med[("rt", 1)]) / steps
    return {
        "backend": keras.backend.backend(),
        "steps": steps,
        "fit s": med[("fit", 1)],
        "range test s": med[("rt", 1)],
        "ratio": med[("rt", 1)] / med[("fit", 1)],
        "cpu ratio": cpu[("rt", 1)] / cpu[("fit", 1)],
        "fit ms/step": 1e3 * fit_step,
        "range test ms/step": 1e3 * rt_step,
        "ratio per step": rt_step / fit_step,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--backends", default="tensorflow,jax,torch")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.child:
        print(json.dumps(child(args.steps, args.repeats, args.batch_size)))
        return
    rows = []
    for backend in args.backends.split(","):
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3",
               "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
        cmd = ["nice", "-n", "10", sys.executable, "-m", "scripts.bench_backends", "--child",
               "--steps", str(args.steps), "--repeats", str(args.repeats),
               "--batch-size", str(args.batch_size)]
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT)
        if proc.returncode != 0:
            print(f"{backend}: failed\n{proc.stderr[-2000:]}", file=sys.stderr)
            continue
        rows.append(json.loads(proc.stdout.strip().splitlines()[-1]))
    if not rows:
        sys.exit(1)
    print(f"Range test vs model.fit over the same {args.steps} batches of {args.batch_size}, MLP 64-64-10 "
          f"with dropout, SGD with momentum (median of {args.repeats}; target ratio <= {TARGET})\n")
    print_table(rows)
    print()
    for r in rows:
        print(target_line(f"{r['backend']}: range test / fit = {r['ratio']:.3f} <= {TARGET}", r["ratio"] <= TARGET)
              + f" (cpu {r['cpu ratio']:.3f})")


if __name__ == "__main__":
    main()
