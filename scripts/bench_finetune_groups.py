"""Fine-tuning with parameter groups: `lrsearch.fine_tune` against fastai's `fine_tune` recipe.

A small MLP (two Dense backbone layers, a head) is pretrained on digits 0-4 (Adam 3e-3,
10 epochs) and fine-tuned on a few hundred images of digits 5-9 with a new head; the
rest of 5-9 is the test set. Both arms start from the same pretrained backbone and the
same new head, train `1 + --epochs` epochs (1 with the backbone frozen, then all
layers), with the optimizer fastai uses by default (Adam with decoupled weight decay
0.01, `beta_2=0.99`, `eps=1e-5`, biases not decayed: lrsearch's AdamW with those
settings), at batch 32:

- `fastai`: fastai's `Learner.fine_tune(epochs, base_lr=2e-3, freeze_epochs=1,
  lr_mult=100, pct_start=0.3, div=5.0)` transcribed from `fastai/callback/schedule.py`
  (fastai 2.x; the body is the same from 2.4 to 2.7): freeze, `fit_one_cycle(1,
  slice(2e-3), pct_start=0.99)`; halve the rate; unfreeze, `fit_one_cycle(epochs,
  slice(1e-3 / 100, 1e-3), pct_start=0.3, div=5)` (two groups: backbone 1e-5, head
  1e-3). fastai's `fit_one_cycle`: cosine up from `lr / div` to `lr` over `pct_start`
  and down to `lr / div_final` (`div=25`, `div_final=1e5` unless given), momentum
  (`beta_1`) 0.95 -> 0.85 -> 0.95; here `OneCycle(lr, div_factor=div,
  final_div_factor=div_final / div)` in the compiled step (PyTorch's phase boundaries,
  one step apart from fastai's per-batch progress). Unlike fastai, the optimizer's
  moments start afresh in stage 2 (a recompile), as in the other arm.
- `lrsearch`: `lrsearch.fine_tune(model, data, epochs, backbone=".*backbone.*")` with
  its defaults: a range test of the head (backbone frozen), one-cycle at its suggested
  peak for 1 epoch; unfrozen, a range test with the backbone at 0.1 of the head's rate,
  one-cycle at the new peak for `epochs`. Its two range tests also read batches
  (their steps are reported; the weights are put back after each).
- `fastai, lr_find valley`: the same fastai recipe with `base_lr` read the way fastai
  users do before calling it, `lr_find()` on the frozen model and its default
  suggestion, `valley` (`LRSuggestion.valley_lr`: the same rule on lrsearch's curve).
- `fastai, lrsearch's max_lr`: the same fastai recipe with `base_lr` = the suggested
  `max_lr` of that curve (the peak lrsearch's own stage 1 trains at), which separates
  the rate from the rest of the recipe (pct_start 0.99 in stage 1, the halved rate and
  the 1/100 backbone in stage 2).

Per seed (the pretraining, the new head, the split), the paired difference lrsearch -
each fastai arm of test accuracy and loss; means and 95% bootstrap intervals of the mean paired
difference (10,000 resamples of the seeds).

    python -m scripts.bench_finetune_groups [--seeds 5] [--epochs 4] [--train 300]
"""

from __future__ import annotations

import argparse
import logging
import math

import numpy as np

from scripts.common import print_table

BACKBONE = ".*backbone.*"
BATCH = 32


def _data(seed: int, train: int):
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x, y = (x / 16.0).astype("float32"), y.astype("int32")
    old, new = y < 5, y >= 5
    xn, yn = x[new], y[new] - 5
    order = np.random.default_rng(seed).permutation(len(yn))
    tr, te = order[:train], order[train:]
    return (x[old], y[old]), (xn[tr], yn[tr]), (xn[te], yn[te])


def _pretrained_backbone(seed: int, old):
    import keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, activation="relu", name="backbone_1"),
                              keras.layers.Dense(16, activation="relu", name="backbone_2"),
                              keras.layers.Dense(5, activation="softmax", name="old_head")])
    model.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
    model.fit(*old, epochs=10, batch_size=BATCH, verbose=0)
    return [layer.get_weights() for layer in model.layers[:2]]


def _model(backbone, seed: int):
    """The pretrained backbone with a new 5-way head drawn from `seed` (same in both arms)."""
    import keras

    keras.utils.set_random_seed(seed + 1000)
    model = keras.Sequential([keras.Input((64,)), keras.layers.Dense(32, activation="relu", name="backbone_1"),
                              keras.layers.Dense(16, activation="relu", name="backbone_2"),
                              keras.layers.Dense(5, activation="softmax", name="head")])
    for layer, weights in zip(model.layers[:2], backbone):
        layer.set_weights(weights)
    return model


def _adamw(lr, momentum=None):
    import lrsearch

    return lrsearch.optimizers.AdamW(lr, beta_1=0.9 if momentum is None else momentum, beta_2=0.99, epsilon=1e-5,
                                     weight_decay=0.01)


def _fastai_cycle(lr, steps, pct_start, div, div_final=1e5):
    from lrsearch.schedules import OneCycle

    return OneCycle(lr, total_steps=steps, pct_start=pct_start, div_factor=div, final_div_factor=div_final / div,
                    base_momentum=0.85, max_momentum=0.95)


def _fastai(model, train, epochs: int, base_lr=2e-3, freeze_epochs=1, lr_mult=100, pct_start=0.3, div=5.0):
    import keras

    from lrsearch.schedules import Scaled

    steps = math.ceil(len(train[1]) / BATCH)
    loss = "sparse_categorical_crossentropy"
    for layer in model.layers[:2]:
        layer.trainable = False
    first = _fastai_cycle(base_lr, freeze_epochs * steps, 0.99, 25.0)
    model.compile(_adamw(first, first.momentum_schedule()), loss, metrics=["accuracy"])
    model.fit(*train, epochs=freeze_epochs, batch_size=BATCH, verbose=0)
    base_lr /= 2
    for layer in model.layers[:2]:
        layer.trainable = True
    second = _fastai_cycle(base_lr, epochs * steps, pct_start, div)
    head = _adamw(second, second.momentum_schedule())
    body = _adamw(Scaled(second, 1.0 / lr_mult), second.momentum_schedule())
    model.compile(keras.optimizers.MultiOptimizer(keras.optimizers.OptimizerMap(head, {BACKBONE: body})), loss,
                  metrics=["accuracy"])
    model.fit(*train, epochs=epochs, batch_size=BATCH, verbose=0)
    return {"range-test steps": 0, "peaks": f"{base_lr * 2:.3g} / {base_lr:.3g}"}


def _fastai_found(rule: str):
    """fastai's habit before `fine_tune`: `lr_find()` on the frozen model, one of its
    suggestions as `base_lr` (`valley`, fastai's default: `LRSuggestion.valley_lr`, the
    same rule on lrsearch's curve; or lrsearch's `max_lr`, the peak its own stage 1 uses)."""

    def recipe(model, train, epochs: int):
        import lrsearch

        for layer in model.layers[:2]:
            layer.trainable = False
        model.compile(_adamw(1e-3), "sparse_categorical_crossentropy")
        result = lrsearch.range_test(model, train, batch_size=BATCH, verbose=0)
        for layer in model.layers[:2]:
            layer.trainable = True
        out = _fastai(model, train, epochs, base_lr=float(getattr(result.suggestion, rule)))
        return {**out, "range-test steps": sum(r["recorded"] for r in result.meta["rounds"])}

    return recipe


def _lrsearch(model, train, epochs: int):
    import lrsearch

    model.compile(_adamw(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    run = lrsearch.fine_tune(model, train, epochs, backbone=BACKBONE, batch_size=BATCH, verbose=0)
    steps = sum(r["recorded"] for fit in (run.frozen, run.unfrozen) for r in fit.range_test.meta["rounds"])
    peaks = (fit.schedule.schedule.max_lr for fit in (run.frozen, run.unfrozen))
    return {"range-test steps": steps, "peaks": " / ".join(f"{p:.3g}" for p in peaks)}


def bootstrap(diffs: np.ndarray, resamples: int = 10_000, seed: int = 0) -> tuple[float, float]:
    """95% percentile interval of the mean of `diffs` over resamples with replacement."""
    rng = np.random.default_rng(seed)
    means = rng.choice(diffs, size=(resamples, diffs.size), replace=True).mean(axis=1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5, help="paired seeds (default 5)")
    parser.add_argument("--epochs", type=int, default=4, help="epochs after the frozen one (default 4)")
    parser.add_argument("--train", type=int, default=300, help="training images of digits 5-9 (default 300)")
    args = parser.parse_args(argv)

    import keras

    logging.getLogger("lrsearch").setLevel(logging.ERROR)
    arms = (("fastai", _fastai), ("fastai, lr_find valley", _fastai_found("valley_lr")),
            ("fastai, lrsearch's max_lr", _fastai_found("max_lr")), ("lrsearch", _lrsearch))
    rows, results = [], {arm: [] for arm, _ in arms}
    for seed in range(args.seeds):
        old, train, test = _data(seed, args.train)
        backbone = _pretrained_backbone(seed, old)
        for arm, recipe in arms:
            keras.backend.clear_session()
            model = _model(backbone, seed)
            extra = recipe(model, train, args.epochs)
            loss, acc = model.evaluate(*test, batch_size=256, verbose=0)
            results[arm].append((acc, loss))
            rows.append({"seed": seed, "arm": arm, "test acc": f"{acc:.4f}", "test loss": f"{loss:.4f}", **extra})
    print(f"{args.seeds} seeds; {args.train} training images of digits 5-9, {len(test[1])} test images; "
          f"1 + {args.epochs} epochs at batch {BATCH}\n")
    print_table(rows)
    print()
    ls = np.array(results["lrsearch"])
    summary = []
    for other in ("fastai", "fastai, lr_find valley", "fastai, lrsearch's max_lr"):
        fa = np.array(results[other])
        for i, name in enumerate(("test acc", "test loss")):
            diff = ls[:, i] - fa[:, i]
            lo, hi = bootstrap(diff)
            summary.append({"against": other, "metric": name, "its mean": f"{fa[:, i].mean():.4f}",
                            "lrsearch mean": f"{ls[:, i].mean():.4f}",
                            "mean paired difference (lrsearch - it)": f"{diff.mean():+.4f}",
                            "95% bootstrap interval": f"[{lo:+.4f}, {hi:+.4f}]",
                            "seeds lrsearch ahead": f"{int(np.sum(diff > 0 if i == 0 else diff < 0))} of {diff.size}"})
    print_table(summary)


if __name__ == "__main__":
    main()
