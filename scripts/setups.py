"""Data, models and the twelve setups the rate benchmarks train, none needing a download.

The setups (`SETUPS`) cross model families (MLP, CNN with and without BatchNorm, a
residual net, GRU, LSTM, a small attention model, a pretrained model fine-tuned on new
classes), optimizers (SGD with momentum, Adam, AdamW, RMSprop), batch sizes (16-512) and
run lengths (3-20 epochs), split by `scripts.split` into a **fit** half (rules and
constants were chosen on it) and a **check** half (reported only; all of it seen). `bench_suggestions` reads its rules
on them, `bench_study_space`, `bench_schedule_free_rate` and the equal-budget suite
(`scripts.cases`) train on them. Also the digits arrays and the two small digits MLPs
the timing benchmarks build.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits, make_classification  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from scripts import split  # noqa: E402

L = keras.layers


def scaled_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits: pixels scaled to [0, 1] (float32), labels as loaded (int64)."""
    x, y = load_digits(return_X_y=True)
    return (x / 16.0).astype("float32"), y


def digits_mlp() -> keras.Model:
    """MLP 64-32-10 with SGD (Keras' default rate, momentum 0.9), compiled."""
    model = keras.Sequential(
        [keras.Input((64,)), keras.layers.Dense(32, activation="relu"),
         keras.layers.Dense(10, activation="softmax")]
    )
    model.compile(optimizer=keras.optimizers.SGD(momentum=0.9),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def dropout_mlp() -> keras.Model:
    """MLP 64-64-10 with dropout 0.1 and SGD (rate 0.01, momentum 0.9), compiled."""
    model = keras.Sequential(
        [
            keras.Input((64,)),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dropout(0.1),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


# ---------------------------------------------------------------------------- data


def _digits(classes=None):
    x, y = scaled_digits()
    if classes is not None:
        keep = np.isin(y, classes)
        x, y = x[keep], y[keep] - min(classes)
    return _split(x, y.astype("int32"))


def _split(x, y, frac=0.25, seed=0):
    idx = np.random.default_rng(seed).permutation(len(x))
    cut = int(len(x) * (1 - frac))
    return x[idx[:cut]], y[idx[:cut]], x[idx[cut:]], y[idx[cut:]]


def _synthetic(n=4000, classes=4, features=20, seed=0):
    x, y = make_classification(n_samples=n, n_features=features, n_informative=8,
                               n_redundant=4, n_classes=classes, class_sep=1.0,
                               random_state=seed)
    xtr, ytr, xva, yva = _split(x, y.astype("int32"))
    sc = StandardScaler().fit(xtr)
    return sc.transform(xtr).astype("float32"), ytr, sc.transform(xva).astype("float32"), yva


def _halves_sum(n=1600, length=20, seed=1):
    """Is the sum of the first half of a noisy sequence above the second half's?"""
    x = np.random.default_rng(seed).normal(size=(n, length, 1)).astype("float32")
    y = (x[:, : length // 2].sum((1, 2)) > x[:, length // 2:].sum((1, 2))).astype("int32")
    return _split(x, y)


def _leading_channel(n=2400, length=15, seed=2):
    """Which of three noisy channels has the largest total?"""
    x = np.random.default_rng(seed).normal(size=(n, length, 3)).astype("float32")
    return _split(x, x.sum(1).argmax(1).astype("int32"))


def _token_counts(n=2000, length=16, vocab=8, seed=3):
    """Binary: does token 0 occur more often than token 1?"""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, vocab, size=(n, length)).astype("int32")
    y = ((x == 0).sum(1) > (x == 1).sum(1)).astype("int32")
    return _split(x, y)


def _token_mode(n=3000, length=16, vocab=6, seed=4):
    """Which token occurs most often (one token planted 3 extra times)?"""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, vocab, size=(n, length))
    planted = rng.integers(0, vocab, size=n)
    for i in range(n):
        x[i, rng.choice(length, 3, replace=False)] = planted[i]
    y = np.array([np.bincount(r, minlength=vocab).argmax() for r in x], dtype="int32")
    return _split(x.astype("int32"), y)


# ---------------------------------------------------------------------------- models


def _mlp(inputs, classes, width=32, depth=1):
    return keras.Sequential([keras.Input((inputs,)),
                             *[L.Dense(width, activation="relu") for _ in range(depth)],
                             L.Dense(classes, activation="softmax")])


def _cnn(bn=False):
    layers = [keras.Input((8, 8, 1)), L.Conv2D(16, 3, padding="same", use_bias=not bn)]
    if bn:
        layers.append(L.BatchNormalization())
    layers += [L.ReLU(), L.MaxPooling2D(), L.Conv2D(16, 3, activation="relu"), L.Flatten(),
               L.Dense(10, activation="softmax")]
    return keras.Sequential(layers)


def _resnet():
    inp = keras.Input((8, 8, 1))
    h = L.Conv2D(16, 3, padding="same", activation="relu")(inp)
    for _ in range(2):
        r = L.Conv2D(16, 3, padding="same", activation="relu")(h)
        r = L.Conv2D(16, 3, padding="same")(r)
        h = L.ReLU()(L.Add()([h, r]))
    h = L.GlobalAveragePooling2D()(h)
    return keras.Model(inp, L.Dense(10, activation="softmax")(h))


def _rnn(kind, length, channels, classes, units=16):
    cell = L.GRU if kind == "gru" else L.LSTM
    return keras.Sequential([keras.Input((length, channels)), cell(units),
                             L.Dense(classes, activation="softmax")])


def _attention(vocab, length, classes, dim=16):
    inp = keras.Input((length,), dtype="int32")
    h = L.Embedding(vocab, dim)(inp)
    a = L.MultiHeadAttention(num_heads=2, key_dim=8)(h, h)
    h = L.LayerNormalization()(L.Add()([h, a]))
    f = L.Dense(dim)(L.Dense(32, activation="relu")(h))
    h = L.LayerNormalization()(L.Add()([h, f]))
    h = L.GlobalAveragePooling1D()(h)
    return keras.Model(inp, L.Dense(classes, activation="softmax")(h))


def _body(kind: str) -> keras.Model:
    if kind == "mlp":
        return keras.Sequential([keras.Input((64,)), L.Dense(48, activation="relu"),
                                 L.Dense(32, activation="relu")])
    return keras.Sequential([keras.Input((8, 8, 1)), L.Conv2D(16, 3, activation="relu"),
                             L.Conv2D(16, 3, activation="relu"), L.Flatten()])


def pretrain(cache: Path) -> None:
    """Pretrain each body on digits 0-4 once (10 epochs of Adam), kept in the cache."""
    for kind in ("mlp", "cnn"):
        path = cache / f"pretrained_{kind}.weights.h5"
        if path.exists():
            continue
        keras.utils.set_random_seed(1234)
        body = _body(kind)
        xtr, ytr, _, _ = (_digits if kind == "mlp" else _digits_img)(list(range(5)))
        m = keras.Sequential([body, L.Dense(5, activation="softmax")])
        m.compile(keras.optimizers.Adam(3e-3), "sparse_categorical_crossentropy")
        m.fit(xtr, ytr, epochs=10, batch_size=32, verbose=0)
        path.parent.mkdir(parents=True, exist_ok=True)
        body.save_weights(path)
        keras.backend.clear_session()


def _pretrained(cache: Path, kind: str) -> keras.Model:
    """The body pretrained on digits 0-4, with a new head for digits 5-9."""
    body = _body(kind)
    body.load_weights(cache / f"pretrained_{kind}.weights.h5")
    return keras.Sequential([body, L.Dense(5, activation="softmax")])


# ---------------------------------------------------------------------------- setups


@dataclass(frozen=True)
class Setup:
    """One setup: its data (`() -> (x_train, y_train, x_val, y_val)`), a model builder
    taking the cache folder (where the pretrained bodies are), optimizer, batch, epochs."""

    name: str
    about: str
    data: Callable
    model: Callable  # (cache) -> keras.Model
    optimizer: str  # sgd, adam, adamw, rmsprop
    batch: int
    epochs: int

    @property
    def half(self) -> str:
        """`"fit"` or `"check"`, from `scripts.split` (the one place the split is defined)."""
        return split.half(self.name)


def _digits_img(classes=None):
    xtr, ytr, xva, yva = _digits(classes)
    return xtr.reshape(-1, 8, 8, 1), ytr, xva.reshape(-1, 8, 8, 1), yva


def _digits_hi():
    return _digits(classes=list(range(5, 10)))


def _digits_hi_img():
    return _digits_img(classes=list(range(5, 10)))


SETUPS = (
    Setup("mlp-sgd", "digits, MLP 64-32-10", _digits, lambda c: _mlp(64, 10), "sgd", 32, 5),
    Setup("cnn-adam", "digits 8x8, CNN 16c3-16c3", _digits_img, lambda c: _cnn(False), "adam", 100, 8),
    Setup("gru-adamw", "halves-sum sequences (20x1), GRU(16)", _halves_sum,
          lambda c: _rnn("gru", 20, 1, 2), "adamw", 64, 5),
    Setup("attn-adam", "token counts (16 of 8), attention block", _token_counts,
          lambda c: _attention(8, 16, 2), "adam", 64, 4),
    Setup("mlp-rmsprop-b16", "synthetic 4-class, MLP 20-32-4", _synthetic,
          lambda c: _mlp(20, 4), "rmsprop", 16, 3),
    Setup("finetune-mlp-sgd", "digits 5-9, MLP pretrained on 0-4", _digits_hi,
          lambda c: _pretrained(c, "mlp"), "sgd", 16, 3),
    Setup("cnn-bn-sgd", "digits 8x8, CNN 16c3-BN-16c3", _digits_img, lambda c: _cnn(True), "sgd", 32, 4),
    Setup("mlp-adam-b512", "synthetic 4-class, MLP 20-64-64-4", _synthetic,
          lambda c: _mlp(20, 4, 64, 2), "adam", 512, 20),
    Setup("lstm-rmsprop", "leading channel (15x3), LSTM(16)", _leading_channel,
          lambda c: _rnn("lstm", 15, 3, 3), "rmsprop", 32, 4),
    Setup("resnet-adamw", "digits 8x8, residual CNN (2 blocks)", _digits_img, lambda c: _resnet(),
          "adamw", 64, 6),
    Setup("attn-adamw-b128", "token mode (16 of 6), attention block", _token_mode,
          lambda c: _attention(6, 16, 6), "adamw", 128, 10),
    Setup("finetune-cnn-adam", "digits 5-9, CNN pretrained on 0-4", _digits_hi_img,
          lambda c: _pretrained(c, "cnn"), "adam", 32, 3),
)


def optimizer(kind: str, lr) -> keras.optimizers.Optimizer:
    """The setup's optimizer (`Setup.optimizer`) at rate `lr` (a float or a schedule);
    `adamw-wd2` is AdamW with weight decay 1e-2."""
    if kind == "adamw-wd2":
        return keras.optimizers.AdamW(lr, weight_decay=1e-2)
    if kind == "sgd":
        return keras.optimizers.SGD(lr, momentum=0.9)
    if kind == "adam":
        return keras.optimizers.Adam(lr)
    if kind == "adamw":
        return keras.optimizers.AdamW(lr)
    return keras.optimizers.RMSprop(lr)


def grid(setup: Setup) -> list[float]:
    """Seven peaks half a decade apart: 3e-4..0.3 for adaptive optimizers, 3e-3..3 for SGD."""
    lo = -2.5 if setup.optimizer == "sgd" else -3.5
    return [float(10 ** (lo + 0.5 * i)) for i in range(7)]
