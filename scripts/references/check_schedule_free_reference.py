"""Schedule-Free AdamW and SGD against the reference package over a longer run.

Trains the same tanh MLP on scikit-learn's digits for `--steps` batches with lrsearch's
`ScheduleFreeAdamW` / `ScheduleFreeSGD` (Keras, float32, `fit`) and with `schedulefree`'s
`AdamWScheduleFree` / `SGDScheduleFree` (PyTorch, float64, `train()` ... `eval()`), from
the same initial weights and batches, and prints the largest relative difference of the
final averaged weights x and both evaluation losses. Needs `pip install -e ".[reference]"`.

    python -m scripts.references.check_schedule_free_reference [--steps 300] [--batch-size 32]
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

from lrsearch.optimizers import ScheduleFreeAdamW, ScheduleFreeSGD  # noqa: E402
from scripts.setups import scaled_digits  # noqa: E402

CASES = {  # lrsearch's optimizer, the reference class's name in schedulefree, its arguments
    "AdamW": (lambda: ScheduleFreeAdamW(0.01, warmup_steps=20, weight_decay=0.01, decay_all=True),
              "AdamWScheduleFree", {"lr": 0.01, "warmup_steps": 20, "weight_decay": 0.01}),
    "SGD": (lambda: ScheduleFreeSGD(0.5, warmup_steps=20, weight_decay=1e-4, decay_all=True),
            "SGDScheduleFree", {"lr": 0.5, "warmup_steps": 20, "weight_decay": 1e-4}),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=32)
    args = parser.parse_args()
    try:  # the reference extra; --help needs neither
        import schedulefree
        import torch
    except ImportError as exc:
        raise SystemExit(f"{exc.name} is not installed: pip install -e \".[reference]\"") from None
    x, y = scaled_digits()
    y = y.astype("int64")
    n = args.steps * args.batch_size
    rng = np.random.default_rng(0)
    order = np.concatenate([rng.permutation(len(x)) for _ in range(n // len(x) + 1)])[:n]
    xs, ys = x[order], y[order]

    def forward(params, inputs):
        w1, b1, w2, b2 = params
        return torch.tanh(inputs @ w1 + b1) @ w2 + b2

    print(f"{args.steps} steps of {args.batch_size}\n")
    print("| optimizer | max relative difference of x | eval loss, lrsearch | eval loss, schedulefree |")
    print("|---|---:|---:|---:|")
    for name, (make, reference_name, kwargs) in CASES.items():
        reference = getattr(schedulefree, reference_name)
        keras.utils.set_random_seed(0)
        model = keras.Sequential(
            [keras.Input((64,)), keras.layers.Dense(32, activation="tanh"), keras.layers.Dense(10)]
        )
        model.compile(make(), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        params = [torch.tensor(np.asarray(v), dtype=torch.float64, requires_grad=True) for v in model.get_weights()]
        optimizer = reference(params, **kwargs)
        optimizer.train()
        for i in range(args.steps):
            batch = slice(i * args.batch_size, (i + 1) * args.batch_size)
            optimizer.zero_grad()
            logits = forward(params, torch.tensor(xs[batch], dtype=torch.float64))
            torch.nn.functional.cross_entropy(logits, torch.tensor(ys[batch])).backward()
            optimizer.step()
        optimizer.eval()
        model.fit(xs, ys, batch_size=args.batch_size, shuffle=False, verbose=0)
        diff = max(
            float(np.max(np.abs(mine - theirs.detach().numpy())) / np.max(np.abs(theirs.detach().numpy())))
            for mine, theirs in zip(model.get_weights(), params)
        )
        with torch.no_grad():
            logits = forward(params, torch.tensor(x, dtype=torch.float64))
            theirs_loss = float(torch.nn.functional.cross_entropy(logits, torch.tensor(y)))
        mine_loss = model.evaluate(x, y, verbose=0)
        print(f"| {name} | {diff:.1e} | {mine_loss:.6f} | {theirs_loss:.6f} |")


if __name__ == "__main__":
    main()
