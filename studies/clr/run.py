"""Cyclical learning rates: triangular, triangular2 and exp_range inside range-test bounds.

    python studies/clr/run.py            # about a minute on a 2-core CPU

A range test on a fresh model gives `base_lr` and `max_lr` (Smith's recipe); each CLR
mode then cycles between them with a half-cycle of 2 epochs, against a constant rate at
each bound. Prints a markdown table; writes runs/clr/clr_modes.png (rates and accuracy).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import keras  # noqa: E402
import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from common import table  # noqa: E402
from model import build_model, load_data  # noqa: E402

import lrsearch  # noqa: E402
from lrsearch.schedules import CyclicLR  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--out", default="runs/clr")
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    train, val = load_data()
    batch = 32
    steps_per_epoch = math.ceil(len(train[0]) / batch)
    keras.utils.set_random_seed(0)
    found = lrsearch.range_test(build_model(), train, min_lr=1e-4, max_lr=10.0, steps=200, verbose=0)
    found.save(out / "range_test.csv")
    s = found.suggestion
    print(f"range test bounds: base_lr {s.base_lr:.4g}, max_lr {s.max_lr:.4g}\n")

    arms = {
        f"constant {s.base_lr:.3g} (base_lr)": lambda: s.base_lr,
        f"constant {s.max_lr:.3g} (max_lr)": lambda: s.max_lr,
    }
    for mode in ("triangular", "triangular2", "exp_range"):
        arms[f"CLR {mode}"] = lambda mode=mode: CyclicLR(
            s.base_lr, s.max_lr, step_size_up=2 * steps_per_epoch, mode=mode,
            gamma=0.999 if mode == "exp_range" else 1.0, cycle_momentum=False)

    rows, curves = [], {}
    for name, make in arms.items():
        keras.utils.set_random_seed(0)
        model = build_model()
        model.compile(optimizer=keras.optimizers.SGD(make(), momentum=0.9), loss=model.loss, metrics=["accuracy"])
        history = model.fit(*train, validation_data=val, epochs=args.epochs, batch_size=batch, verbose=0).history
        curves[name] = history["val_accuracy"]
        rows.append({"schedule": name, "final val acc": f"{history['val_accuracy'][-1]:.4f}",
                     "best val acc": f"{max(history['val_accuracy']):.4f}",
                     "final val loss": f"{history['val_loss'][-1]:.4f}"})
        keras.backend.clear_session()
    print(table(rows))

    fig, (ax_lr, ax_acc) = plt.subplots(1, 2, figsize=(11, 4))
    steps = range(args.epochs * steps_per_epoch)
    for mode in ("triangular", "triangular2", "exp_range"):
        sched = arms[f"CLR {mode}"]()
        ax_lr.plot(list(steps), [float(sched(i)) for i in steps], label=mode)
    ax_lr.set(xlabel="step", ylabel="learning rate", title="CLR modes")
    ax_lr.legend()
    for name, acc in curves.items():
        ax_acc.plot(range(1, len(acc) + 1), acc, label=name)
    ax_acc.set(xlabel="epoch", ylabel="val accuracy", title="validation accuracy", ylim=(0.8, 1.0))
    ax_acc.legend(fontsize=8)
    fig.savefig(out / "clr_modes.png", dpi=100, bbox_inches="tight")
    print(f"\nwrote {out / 'clr_modes.png'}")


if __name__ == "__main__":
    main()
