"""Are the suggested bounds good? One-cycle at `suggestion.max_lr` against a grid of peaks.

On scikit-learn's digits (no download), a small model is range-tested once; then the same
model is trained with a one-cycle schedule for `--epochs` epochs at each peak rate of a
log grid, and at the suggested `max_lr`, each over `--seeds` initialisations. The table
gives the mean validation accuracy and loss per peak rate; the last lines compare the
suggestion with the best grid point. The claim under test: one-cycle at the suggested
`max_lr` is as good as the best peak rate of the grid (within one standard error).

    python scripts/bench_suggestions.py [--model mlp|cnn] [--epochs 8] [--seeds 3] [--grid 10]
"""

from __future__ import annotations

import argparse
import os
import statistics

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

import lrsearch  # noqa: E402
from lrsearch.schedules import OneCycle  # noqa: E402


def data(model: str):
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
    if model == "cnn":
        x = x.reshape(-1, 8, 8, 1)
    return train_test_split(x, y.astype("int32"), test_size=0.25, random_state=0, stratify=y)


def build(model: str, lr=0.01, seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    if model == "cnn":
        layers = [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    else:
        layers = [
            keras.Input((64,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    m = keras.Sequential(layers)
    m.compile(
        optimizer=keras.optimizers.SGD(lr, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return m


def train(model: str, peak: float, seed: int, epochs: int, batch_size: int, split) -> tuple[float, float]:
    xtr, xva, ytr, yva = split
    steps = epochs * -(-len(xtr) // batch_size)
    m = build(model, OneCycle(peak, steps, cycle_momentum=False), seed)
    m.fit(xtr, ytr, epochs=epochs, batch_size=batch_size, verbose=0, shuffle=True)
    loss, acc = m.evaluate(xva, yva, verbose=0)
    keras.backend.clear_session()
    return (float(acc) if np.isfinite(loss) else 0.0, float(loss))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--grid", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    args = p.parse_args()
    split = data(args.model)
    xtr, _, ytr, _ = split

    rt = lrsearch.range_test(build(args.model), (xtr, ytr), min_lr=1e-5, max_lr=10.0,
                             batch_size=args.batch_size, verbose=0)
    s = rt.suggestion
    grid = [float(v) for v in np.geomspace(1e-3, 10.0, args.grid)]
    rows = []
    for peak in [*grid, s.max_lr]:
        runs = [train(args.model, peak, seed, args.epochs, args.batch_size, split)
                for seed in range(args.seeds)]
        accs = [a for a, _ in runs]
        rows.append({
            "peak lr": peak,
            "which": "suggested max_lr" if peak == s.max_lr else "grid",
            "val acc": statistics.mean(accs),
            "sem": statistics.stdev(accs) / len(accs) ** 0.5 if len(accs) > 1 else 0.0,
            "val loss": statistics.mean(l for _, l in runs),
        })
    print(f"One-cycle ({args.epochs} epochs, SGD momentum 0.9, batch {args.batch_size}) on "
          f"digits, {args.model}, mean of {args.seeds} seeds\n")
    print(f"Range test: {len(rt.frame)} steps, stopped: {rt.stopped}; suggestion: "
          f"base_lr={s.base_lr:.3g}, max_lr={s.max_lr:.3g}, steepest={s.steepest_lr:.3g}, "
          f"valley={s.valley_lr:.3g}, min_loss={s.min_loss_lr:.3g}, warnings={list(s.warnings)}\n")
    print("| peak lr | which | val acc | sem | val loss |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['peak lr']:.3g} | {r['which']} | {r['val acc']:.4f} | {r['sem']:.4f} | "
              f"{r['val loss']:.4f} |")
    best = max(rows[:-1], key=lambda r: r["val acc"])
    ours = rows[-1]
    ok = ours["val acc"] >= best["val acc"] - max(best["sem"], ours["sem"], 0.005)
    print(f"\nbest grid peak {best['peak lr']:.3g}: {best['val acc']:.4f}; suggested max_lr "
          f"{ours['peak lr']:.3g}: {ours['val acc']:.4f}; as good: {'yes' if ok else 'NO'}")


if __name__ == "__main__":
    main()
