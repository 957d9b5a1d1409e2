"""Whether a short race can pick a long run's peak: one-cycle at three peaks, at several lengths.

A short budget's race (`lrsearch.study.budget`) compares complete one-cycle schedules of one or
two epochs and trains the winner over many more. That only works when the best peak does
not move with the run's length. For each setup of the equal-budget suite's fit half
(`scripts.cases.CASES` in `scripts.split`'s fit half; it has no check run): a range test as `auto` runs it (160 steps, per seed), then
one-cycle runs (pct_start 0.3, div 25, final div 1e4, cos; momentum 0.95 -> 0.85 where
the optimizer has one) peaking at `max_lr` x 1, x 10**-0.25 and x 10**-0.5, at each length
(the last one the final fit's length in the suite). Cells: mean validation loss over
seeds at the end of the run (mean validation accuracy in brackets); the best factor per
length is in bold.

    python -m scripts.bench_race_horizon [--seeds 2] [--only SETUP,...]

Prints a markdown table; no target.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

import lrsearch  # noqa: E402
from lrsearch.optimizers import rebuild  # noqa: E402
from lrsearch.schedules import OneCycle  # noqa: E402
from lrsearch.study.options import StudyOptions  # noqa: E402
from scripts import split  # noqa: E402
from scripts.cases import CASES, CaseData  # noqa: E402
from scripts.common import cache_dir  # noqa: E402

FACTORS = (1.0, 10**-0.25, 10**-0.5)
LENGTHS = {"mlp-sgd": (1, 2, 4, 12), "gru-adamw-b16": (1, 2, 4, 13),
           "mlp-rmsprop-b10": (1, 2, 8)}  # the last: the final fit's epochs in the suite


def run(bench: CaseData, peak: float, epochs: int, seed: int) -> tuple[float, float]:
    """(val loss, val accuracy) at the end of one one-cycle run."""
    keras.utils.set_random_seed(seed)
    model = bench.build()
    sched = OneCycle(peak, epochs * bench.spe, pct_start=0.3, div_factor=25.0, final_div_factor=1e4)
    cycled = bench.s.optimizer != "rmsprop"  # Keras' RMSprop has no momentum by default
    opt = rebuild(model.optimizer, learning_rate=sched, momentum=sched.momentum_schedule() if cycled else None)
    model.compile(optimizer=opt, loss=model.loss, metrics=["accuracy"], jit_compile=False)
    h = model.fit(*bench.train, validation_data=bench.val, epochs=epochs, batch_size=bench.s.batch, verbose=0)
    keras.backend.clear_session()
    return float(h.history["val_loss"][-1]), float(h.history["val_accuracy"][-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--only", default="", help="comma-separated setups: " + ",".join(LENGTHS))
    p.add_argument("--cache", type=Path, default=cache_dir())
    args = p.parse_args()
    only = [n for n in args.only.split(",") if n] or list(LENGTHS)
    cases = [c for c in split.select(CASES, "fit") if c.name in only]
    print(f"One-cycle at `max_lr` x factor (each seed's own range test, as `auto` runs it); mean "
          f"validation loss (accuracy) at the end of the run over {args.seeds} seeds; best per length in bold.\n")
    print("| setup | max_lr per seed | epochs | " + " | ".join(f"x{f:.2f}" for f in FACTORS) + " |")
    print("|---|---|---|" + "---|" * len(FACTORS))
    for case in cases:
        bench = CaseData(case, args.cache / "suggestions")
        tops = []
        for seed in range(args.seeds):
            keras.utils.set_random_seed(seed)
            kwargs = {**StudyOptions().range_test_kwargs(), "batch_size": case.setup.batch}
            rt = lrsearch.range_test(bench.build(), bench.train, verbose=0, **kwargs)
            keras.backend.clear_session()
            tops.append(float(rt.suggestion.max_lr))
        for epochs in LENGTHS[case.name]:
            cells = []
            for factor in FACTORS:
                runs = [run(bench, top * factor, epochs, seed) for seed, top in enumerate(tops)]
                cells.append((statistics.mean(r[0] for r in runs), statistics.mean(r[1] for r in runs)))
                print(f"{case.name} {epochs} x{factor:.2f}: {cells[-1]}", file=sys.stderr, flush=True)
            best = min(range(len(cells)), key=lambda i: cells[i][0])
            shown = [f"{'**' if i == best else ''}{loss:.4f} ({acc:.3f}){'**' if i == best else ''}"
                     for i, (loss, acc) in enumerate(cells)]
            print(f"| {case.name} | {', '.join(f'{t:.3g}' for t in tops)} | {epochs} | " + " | ".join(shown) + " |")


if __name__ == "__main__":
    main()
