"""One worker of a shared study (run as a separate process by the storage tests).

    python tests/support/study_worker.py STORAGE_URL STUDY_NAME --trials 2 --out DIR
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import keras  # noqa: E402
from study_workload import SUGGESTION, build_model, digits  # noqa: E402  (this script's folder)

import lrsearch  # noqa: E402


class Sleep(keras.callbacks.Callback):
    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds

    def on_epoch_end(self, epoch, logs=None):
        time.sleep(self.seconds)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("storage")
    parser.add_argument("study")
    parser.add_argument("--trials", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--out", required=True)
    parser.add_argument("--sleep", type=float, default=0.0, help="seconds after each epoch")
    parser.add_argument("--heartbeat", type=int, default=1)
    parser.add_argument("--grace", type=int, default=3)
    args = parser.parse_args()
    train, val = digits(128, 64)
    lrsearch.tune(
        build_model,
        train,
        validation_data=val,
        suggestion=SUGGESTION,
        epochs=args.epochs,
        trials=args.trials,
        storage=args.storage,
        study_name=args.study,
        out_dir=args.out,
        pruner="none",
        callbacks=[Sleep(args.sleep)] if args.sleep else None,
        heartbeat_interval=args.heartbeat,
        grace_period=args.grace,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
