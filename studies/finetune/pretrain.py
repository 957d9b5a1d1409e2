"""Make the pretrained model and the fine-tuning data of this study.

    python studies/finetune/pretrain.py          # writes runs/finetune/{pretrained.keras,data.npz}

The digits CNN is trained for 20 epochs on 15% of the training images only; the
other 85% and the validation images go into `data.npz` (x_train, y_train, x_val, y_val)
for fine-tuning, so the saved model has seen none of them.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent / "digits"), str(HERE.parent)]

import keras  # noqa: E402
import numpy as np  # noqa: E402
from model import build_model, load_data  # noqa: E402  (the digits study's CNN)

PRETRAIN_FRACTION = 0.15


def make(out: Path, epochs: int = 20, seed: int = 0) -> tuple[Path, Path]:
    """Write `pretrained.keras` and `data.npz` into `out`; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    (x, y), (x_val, y_val) = load_data()
    cut = int(len(x) * PRETRAIN_FRACTION)
    keras.utils.set_random_seed(seed)
    model = build_model()
    model.fit(x[:cut], y[:cut], epochs=epochs, batch_size=32, verbose=0)
    model.save(out / "pretrained.keras")
    np.savez(out / "data.npz", x_train=x[cut:], y_train=y[cut:], x_val=x_val, y_val=y_val)
    return out / "pretrained.keras", out / "data.npz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="runs/finetune")
    args = parser.parse_args()
    for path in make(Path(args.out)):
        print(path)


if __name__ == "__main__":
    main()
