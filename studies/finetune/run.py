"""Fine-tuning a small saved model with the ramp / sustain / decay schedule and early stopping.

    python studies/finetune/run.py               # about a minute on a 2-core CPU

Loads runs/finetune/pretrained.keras (made by pretrain.py when missing), finds the peak
rate with a range test on the pretrained weights (restored afterwards), then fine-tunes
with `RampSustainDecay` (ramp from peak/25 over 3 epochs, sustain 2, decay by 0.8 per
epoch down to peak/25) and `EarlyStopping(restore_best_weights=True)`. Controls: the same
schedule from scratch, and a constant peak rate on the pretrained weights. Three seeds.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent), str(HERE.parent / "digits")]

import keras  # noqa: E402
import numpy as np  # noqa: E402
from common import fit, table  # noqa: E402
from pretrain import make  # noqa: E402

import lrsearch  # noqa: E402
from lrsearch.schedules import RampSustainDecay  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/finetune")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    out = Path(args.out)
    model_path, data_path = out / "pretrained.keras", out / "data.npz"
    if not model_path.exists() or not data_path.exists():
        make(out)
    with np.load(data_path) as d:
        train, val = (d["x_train"], d["y_train"]), (d["x_val"], d["y_val"])

    pretrained = keras.saving.load_model(model_path)
    print(f"pretrained model, before fine-tuning: val accuracy "
          f"{pretrained.evaluate(*val, verbose=0, return_dict=True)['accuracy']:.4f}")
    peak = lrsearch.range_test(pretrained, train, min_lr=1e-4, max_lr=10.0, steps=200, batch_size=64,
                               verbose=0).suggestion.max_lr
    steps_per_epoch = math.ceil(len(train[0]) / 32)
    print(f"range test on the pretrained weights: peak rate {peak:.4g}\n")

    def schedule() -> RampSustainDecay:
        return RampSustainDecay(start_lr=peak / 25, max_lr=peak, min_lr=peak / 25, rampup_epochs=3,
                                sustain_epochs=2, exp_decay=0.8, steps_per_epoch=steps_per_epoch)

    def compiled(model: keras.Model, rate) -> keras.Model:
        model.compile(optimizer=keras.optimizers.SGD(rate, momentum=0.9), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        return model

    def scratch() -> keras.Model:
        return compiled(keras.models.clone_model(pretrained), schedule())

    def early_stop() -> list:
        return [keras.callbacks.EarlyStopping(monitor="val_loss", patience=4, restore_best_weights=True)]

    arms = {
        "pretrained, ramp/sustain/decay": lambda: compiled(keras.saving.load_model(model_path), schedule()),
        "pretrained, constant peak rate": lambda: compiled(keras.saving.load_model(model_path), peak),
        "from scratch, ramp/sustain/decay": scratch,
    }
    rows = [{"arm": name, **fit(build, train, val, epochs=args.epochs, seeds=range(args.seeds),
                                callbacks=early_stop)} for name, build in arms.items()]
    print(table(rows))


if __name__ == "__main__":
    main()
