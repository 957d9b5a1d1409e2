"""Warmup + cosine decay with the linear batch-size scaling rule (Goyal et al., 2017).

    python studies/warmup_cosine/run.py          # about a minute on a 2-core CPU

A range test at batch 32 gives the peak rate. For batch sizes 32 to 256 the peak is
scaled linearly (`lrsearch.schedules.scale_lr(peak, batch, base_batch_size=32)`) and
reached after a 2-epoch linear warmup, then decays along a cosine (`WarmupCosine`).
Two controls per batch size: the same scaled peak without warmup, and warmup + cosine
at the unscaled peak. Prints a markdown table.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import keras  # noqa: E402
from common import table  # noqa: E402
from model import build_model, load_data  # noqa: E402

import lrsearch  # noqa: E402
from lrsearch.schedules import WarmupCosine, scale_lr  # noqa: E402

BASE_BATCH = 32


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--batches", type=int, nargs="+", default=[32, 64, 128, 256])
    args = parser.parse_args()

    train, val = load_data()
    keras.utils.set_random_seed(0)
    found = lrsearch.range_test(build_model(), train, min_lr=1e-4, max_lr=10.0, steps=200,
                                batch_size=BASE_BATCH, verbose=0)
    peak = found.suggestion.max_lr
    print(f"range test at batch {BASE_BATCH}: peak rate {peak:.4g}\n")

    rows = []
    for batch in args.batches:
        steps = math.ceil(len(train[0]) / batch) * args.epochs
        warmup = 2 * math.ceil(len(train[0]) / batch)
        scaled = scale_lr(peak, batch, base_batch_size=BASE_BATCH)
        arms = {
            "scaled, warmup + cosine": WarmupCosine(scaled, steps, warmup_steps=warmup),
            "scaled, cosine, no warmup": WarmupCosine(scaled, steps),
            "unscaled, warmup + cosine": WarmupCosine(peak, steps, warmup_steps=warmup),
        }
        for name, schedule in arms.items():
            keras.utils.set_random_seed(0)
            model = build_model()
            model.compile(optimizer=keras.optimizers.SGD(schedule, momentum=0.9), loss=model.loss,
                          metrics=["accuracy"])
            history = model.fit(*train, validation_data=val, epochs=args.epochs, batch_size=batch,
                                verbose=0).history
            rows.append({"batch": batch, "arm": name, "peak rate": f"{schedule.base_lr:.4g}",
                         "final val acc": f"{history['val_accuracy'][-1]:.4f}",
                         "final val loss": f"{history['val_loss'][-1]:.4f}"})
            keras.backend.clear_session()
    print(table(rows))


if __name__ == "__main__":
    main()
