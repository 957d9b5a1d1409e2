"""The schedule `lrsearch auto` found against Adam at its default rate, same epochs.

    lrsearch auto studies/digits/model.py --out runs/digits
    python studies/digits/compare.py runs/digits/schedule.json

Each arm trains the same CNN from `model.py` with three seeds and prints a markdown
table of validation accuracy and loss.
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent)]

import keras  # noqa: E402
from common import fit, table  # noqa: E402
from model import build_model, load_data  # noqa: E402

import lrsearch  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("schedule", nargs="?", default="runs/digits/schedule.json")
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()

    spec = lrsearch.load_schedule(args.schedule)
    train, val = load_data()
    epochs = spec.epochs
    batch = math.ceil(len(train[0]) / spec.steps_per_epoch) if spec.steps_per_epoch else 32
    seeds = range(args.seeds)

    def with_spec() -> keras.Model:
        model = build_model()
        model.compile(optimizer=spec.build_optimizer(), loss=model.loss, metrics=["accuracy"])
        return model

    def with_adam() -> keras.Model:
        model = build_model()
        model.compile(optimizer=keras.optimizers.Adam(), loss=model.loss, metrics=["accuracy"])
        return model

    name = spec.to_dict()["schedule"]["class_name"]
    rows = [
        {"arm": f"lrsearch: {name} from {Path(args.schedule).name}", **fit(with_spec, train, val, epochs=epochs,
                                                                           batch_size=batch, seeds=seeds)},
        {"arm": "Adam, default rate 1e-3", **fit(with_adam, train, val, epochs=epochs, batch_size=batch, seeds=seeds)},
    ]
    print(f"digits CNN, {epochs} epochs, batch {batch}, {args.seeds} seeds\n")
    print(table(rows))


if __name__ == "__main__":
    main()
