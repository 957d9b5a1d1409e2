"""Are the suggested bounds good? One-cycle at `suggestion.max_lr` against a grid of peaks.

On data that needs no download (scikit-learn's digits and breast-cancer sets, or a
generated 4-class problem), a small model is range-tested once; then the same model is
trained with a one-cycle schedule for `--epochs` epochs at each peak rate of a log grid,
at the suggested `max_lr`, and at the rate fastai's valley rule reads from the same
curve (`suggestion.valley_lr`, the rate fastai hands to `fit_one_cycle`), each over
`--seeds` initialisations. Two more rows try rules that might replace `max_lr` as a
one-cycle peak: the `max_lr` of a range test three times as long (the rate then rises
slowly enough for momentum to build up, as in real training), and `min_loss_lr / 3`.
The table gives the mean validation accuracy and loss per peak rate. The claim under test: one-cycle at the suggested `max_lr` reaches at least
0.99 of the best grid point's accuracy (accuracy ratio >= 0.99), on every dataset.

    python scripts/bench_suggestions.py [--datasets digits,breast_cancer] [--model mlp|cnn]
        [--epochs 8] [--seeds 3] [--grid 10]

`--model` applies to digits (the other datasets use an MLP). Prints markdown tables.
"""

from __future__ import annotations

import argparse
import os
import statistics

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_breast_cancer, load_digits, make_classification  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import lrsearch  # noqa: E402
from lrsearch.schedules import OneCycle  # noqa: E402

DATASETS = ("digits", "breast_cancer", "synthetic")
TARGET = 0.99


def data(name: str, model: str):
    """(x_train, x_val, y_train, y_val) and the number of classes."""
    if name == "digits":
        x, y = load_digits(return_X_y=True)
        x = (x / 16.0).astype("float32")
        if model == "cnn":
            x = x.reshape(-1, 8, 8, 1)
    elif name == "breast_cancer":
        x, y = load_breast_cancer(return_X_y=True)
    else:  # 4 overlapping classes, 20 features of which 8 informative
        x, y = make_classification(n_samples=2000, n_features=20, n_informative=8,
                                   n_redundant=4, n_classes=4, class_sep=1.0, random_state=0)
    split = train_test_split(x, y.astype("int32"), test_size=0.25, random_state=0, stratify=y)
    if name != "digits":
        scaler = StandardScaler().fit(split[0])
        split[0], split[1] = scaler.transform(split[0]), scaler.transform(split[1])
    split[0], split[1] = split[0].astype("float32"), split[1].astype("float32")
    return split, int(y.max()) + 1


def build(name: str, model: str, classes: int, lr=0.01, seed: int = 0) -> keras.Model:
    keras.utils.set_random_seed(seed)
    if name == "digits" and model == "cnn":
        layers = [
            keras.Input((8, 8, 1)),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ]
    else:
        features = {"digits": 64, "breast_cancer": 30, "synthetic": 20}[name]
        layers = [
            keras.Input((features,)),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(classes, activation="softmax"),
        ]
    m = keras.Sequential(layers)
    m.compile(
        optimizer=keras.optimizers.SGD(lr, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return m


def train(name, model, classes, peak, seed, epochs, batch_size, split) -> tuple[float, float]:
    xtr, xva, ytr, yva = split
    steps = epochs * -(-len(xtr) // batch_size)
    m = build(name, model, classes, OneCycle(peak, steps, cycle_momentum=False), seed)
    m.fit(xtr, ytr, epochs=epochs, batch_size=batch_size, verbose=0, shuffle=True)
    loss, acc = m.evaluate(xva, yva, verbose=0)
    keras.backend.clear_session()
    return (float(acc) if np.isfinite(loss) else 0.0, float(loss))


def bench(name: str, args) -> bool:
    split, classes = data(name, args.model)
    xtr, _, ytr, _ = split
    rt = lrsearch.range_test(build(name, args.model, classes), (xtr, ytr), min_lr=1e-5,
                             max_lr=10.0, batch_size=args.batch_size, verbose=0)
    s = rt.suggestion
    grid = [float(v) for v in np.geomspace(1e-3, 10.0, args.grid)]
    slow = lrsearch.range_test(build(name, args.model, classes), (xtr, ytr), min_lr=1e-5,
                               max_lr=10.0, steps=3 * len(rt.frame), batch_size=args.batch_size,
                               verbose=0).suggestion
    picks = [(s.max_lr, "suggested max_lr"), (s.valley_lr, "fastai valley"),
             (slow.max_lr, f"max_lr, {3 * len(rt.frame)}-step range test (candidate)"),
             (s.min_loss_lr / 3, "min_loss_lr / 3 (candidate)")]
    rows = []
    for peak, which in [*((g, "grid") for g in grid), *picks]:
        runs = [train(name, args.model, classes, peak, seed, args.epochs, args.batch_size, split)
                for seed in range(args.seeds)]
        accs = [a for a, _ in runs]
        rows.append({
            "peak lr": peak,
            "which": which,
            "val acc": statistics.mean(accs),
            "sem": statistics.stdev(accs) / len(accs) ** 0.5 if len(accs) > 1 else 0.0,
            "val loss": statistics.mean(l for _, l in runs),
        })
    label = f"{name}, {args.model if name == 'digits' else 'mlp'}"
    print(f"### {label}\n")
    print(f"One-cycle ({args.epochs} epochs, SGD momentum 0.9, batch {args.batch_size}), "
          f"{len(xtr)} training samples, mean of {args.seeds} seeds. Range test: "
          f"{len(rt.frame)} steps, stopped: {rt.stopped}; suggestion: base_lr={s.base_lr:.3g}, "
          f"max_lr={s.max_lr:.3g}, steepest={s.steepest_lr:.3g}, valley={s.valley_lr:.3g}, "
          f"min_loss={s.min_loss_lr:.3g}, warnings={list(s.warnings)}\n")
    print("| peak lr | which | val acc | sem | val loss |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['peak lr']:.3g} | {r['which']} | {r['val acc']:.4f} | {r['sem']:.4f} | "
              f"{r['val loss']:.4f} |")
    best = max(rows[: len(grid)], key=lambda r: r["val acc"])
    ours, valley, *others = rows[len(grid):]
    ratio = ours["val acc"] / best["val acc"]
    print(f"\nbest grid peak {best['peak lr']:.3g}: {best['val acc']:.4f}; suggested max_lr "
          f"{ours['peak lr']:.3g}: {ours['val acc']:.4f} (ratio {ratio:.3f}); fastai valley "
          f"{valley['peak lr']:.3g}: {valley['val acc']:.4f} (ratio "
          f"{valley['val acc'] / best['val acc']:.3f}); candidates: "
          + "; ".join(f"{r['which'].removesuffix(' (candidate)')} {r['peak lr']:.3g}: "
                      f"{r['val acc']:.4f} (ratio {r['val acc'] / best['val acc']:.3f})"
                      for r in others) + "\n")
    ok = ratio >= TARGET
    print(f"target: {label}: accuracy at the suggested max_lr / best grid accuracy = "
          f"{ratio:.3f} >= {TARGET}: {'met' if ok else 'MISSED'}\n")
    return ok


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--datasets", default="digits,breast_cancer",
                   help=f"comma-separated, from {','.join(DATASETS)}")
    p.add_argument("--model", choices=("mlp", "cnn"), default="mlp")
    p.add_argument("--epochs", type=int, default=8)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--grid", type=int, default=10)
    p.add_argument("--batch-size", type=int, default=32)
    args = p.parse_args()
    names = [n.strip() for n in args.datasets.split(",") if n.strip()]
    for n in names:
        if n not in DATASETS:
            p.error(f"unknown dataset {n!r}: use {', '.join(DATASETS)}")
    for n in names:
        bench(n, args)


if __name__ == "__main__":
    main()
