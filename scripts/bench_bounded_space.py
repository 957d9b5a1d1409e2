"""Sample efficiency: a study inside the range-test bounds against the same study over
the whole tested range, at the same budget of trials and epochs.

    python -m scripts.bench_bounded_space [--trials 8] [--epochs 3] [--seeds 3]

The range test runs once on the digits classifier (SGD, momentum 0.9); each seed then
runs two studies that differ only in the rate bounds: the suggestion's
`[base_lr, max_lr]`, and the range test's full `[min_lr, max_lr] = [1e-7, 10]`. Prints a
markdown table of the best validation loss / accuracy each found, and how many trials
were wasted (diverged to NaN, or ended no better than chance).
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402

from lrsearch.rangetest.analysis import LRSuggestion  # noqa: E402
from lrsearch.rangetest.finder import range_test  # noqa: E402
from lrsearch.study.tune import tune  # noqa: E402
from scripts.setups import digits_mlp as build_model  # noqa: E402
from scripts.setups import scaled_digits  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.WARNING)
CHANCE = float(np.log(10))  # the loss of a uniform guess over 10 classes


def digits(n_train: int = 512, n_val: int = 512):
    x, y = scaled_digits()
    order = np.random.default_rng(0).permutation(len(x))
    x, y = x[order], y[order]
    return (x[:n_train], y[:n_train]), (x[n_train : n_train + n_val], y[n_train : n_train + n_val])


def run(suggestion, train, val, args, seed: int, out: Path, name: str) -> dict:
    result = tune(build_model, train, validation_data=val, suggestion=suggestion,
                  epochs=args.epochs, trials=args.trials, seed=seed, pruner="none",
                  out_dir=out / name, study_name=name)
    t, h = result.trials, result.history
    last = h.sort_values("epoch").groupby("trial").tail(1).set_index("trial")
    wasted = int((t["state"] == "FAIL").sum()) + int((t["value"] >= CHANCE).sum())
    return {
        "val_loss": float(t["value"].min()),
        "val_accuracy": float(last["val_accuracy"].max()) if len(last) else float("nan"),
        "wasted": wasted,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    train, val = digits()
    keras.utils.set_random_seed(0)
    found = range_test(build_model(), train, batch_size=32, verbose=0).suggestion
    full = LRSuggestion(base_lr=1e-7, max_lr=10.0, steepest_lr=found.steepest_lr,
                        valley_lr=found.valley_lr, min_loss_lr=found.min_loss_lr)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in range(args.seeds):
            for label, sug in (("bounded", found), ("full range", full)):
                r = run(sug, train, val, args, seed, Path(tmp), f"{label[:4]}{seed}")
                rows.append((seed, label, sug, r))
    print(f"Range test bounds: base_lr={found.base_lr:.3g}, max_lr={found.max_lr:.3g}; "
          f"{args.trials} trials x {args.epochs} epochs per study\n")
    print("| seed | space | rates | best val_loss | best val_accuracy | wasted trials |")
    print("|---|---|---|---|---|---|")
    for seed, label, sug, r in rows:
        print(f"| {seed} | {label} | {sug.base_lr:.2g}-{sug.max_lr:.2g} | {r['val_loss']:.4f} "
              f"| {r['val_accuracy']:.4f} | {r['wasted']}/{args.trials} |")
    for label in ("bounded", "full range"):
        losses = [r["val_loss"] for _, lab, _, r in rows if lab == label]
        print(f"\nmedian best val_loss, {label}: {statistics.median(losses):.4f}", end="")
    print()


if __name__ == "__main__":
    main()
