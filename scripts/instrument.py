"""The instrument's eleven setups: tasks generated in code, each with 5,000 validation samples.

Built to tell methods apart, where `scripts.setups`' small sets (224-1,000 validation
samples) cannot: every task is generated (scikit-learn's `make_classification`, digits
upsampled to 16x16 and augmented with shifts, contrast and noise, sequences with a rule
to learn), as many samples as it needs, 5,000 of them for validation (digits' validation
images come from source images no training image was made from). Six have >= 200 steps
an epoch. Labels are noisy or the images degraded, so accuracy does not saturate; where a
rule can be learnt exactly (the sequence tasks) or digits near-saturate, the score is
the validation loss (`Setup.score`). The halves are `scripts.split`'s (names `i-...`).
The pretrained bodies are trained here on one part of a task (classes 0-4) and cached.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits, make_classification  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

from scripts.setups import Setup  # noqa: E402

L = keras.layers
VAL = 5000


@dataclass(frozen=True)
class InstrumentSetup(Setup):
    """A `scripts.setups.Setup` (`epochs`: one trial's length) with its score and budgets."""

    score: str = "acc"  # "acc" (higher is better) or "loss" (validation loss, lower is better)
    long: bool = False  # also run at the long budget (12 trial lengths)
    classes: int = 10


# ---------------------------------------------------------------------------- data


@functools.lru_cache(maxsize=None)
def blobs(seed: int, n_train: int, classes: int, features: int, sep: float, flip: float = 0.03,
          keep: tuple[int, ...] | None = None):
    """`make_classification` (a third of the features informative, labels flipped at rate
    `flip`), standardized on the training part; `keep`: only these classes, relabelled
    from 0 (the same draw, so a body trained on some classes sees the others' features)."""
    n = 3 * (n_train + VAL) if keep else n_train + VAL
    x, y = make_classification(n_samples=n, n_features=features, n_informative=features // 3,
                               n_redundant=features // 6, n_classes=classes, n_clusters_per_class=2,
                               class_sep=sep, flip_y=flip, random_state=seed)
    if keep:
        mask = np.isin(y, keep)
        x, y = x[mask], y[mask] - min(keep)
        x, y = x[: n_train + VAL], y[: n_train + VAL]
    xtr, xva = x[:n_train], x[n_train:]
    sc = StandardScaler().fit(xtr)
    return (sc.transform(xtr).astype("float32"), y[:n_train].astype("int32"),
            sc.transform(xva).astype("float32"), y[n_train:].astype("int32"))


def _augment(images: np.ndarray, labels: np.ndarray, n: int, rng: np.random.Generator, noise: float):
    """`n` 16x16 images drawn from `images` (8x8, in [0, 1]): upsampled, shifted by up to
    3 pixels, contrast 0.5-1.1, Gaussian noise."""
    pick = rng.integers(0, len(images), n)
    up = np.kron(images[pick], np.ones((1, 2, 2), dtype="float32"))  # 16x16
    padded = np.pad(up, ((0, 0), (3, 3), (3, 3)))
    dy, dx = rng.integers(0, 7, n), rng.integers(0, 7, n)
    rows = dy[:, None] + np.arange(16)[None, :]
    cols = dx[:, None] + np.arange(16)[None, :]
    out = padded[np.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
    out = out * rng.uniform(0.5, 1.1, (n, 1, 1)) + rng.normal(0, noise, out.shape)
    return out[..., None].astype("float32"), labels[pick].astype("int32")


@functools.lru_cache(maxsize=None)
def digits16(n_train: int, seed: int, classes: tuple[int, ...] = tuple(range(10)), noise: float = 0.45):
    """Augmented 16x16 digits of `classes` (relabelled from 0): training images from 75%
    of scikit-learn's digits, the 5,000 validation images from the other 25%."""
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32").reshape(-1, 8, 8)
    keep = np.isin(y, classes)
    x, y = x[keep], y[keep] - min(classes)
    idx = np.random.default_rng(0).permutation(len(x))
    cut = int(0.75 * len(x))
    rng = np.random.default_rng(seed)
    xtr, ytr = _augment(x[idx[:cut]], y[idx[:cut]], n_train, rng, noise)
    xva, yva = _augment(x[idx[cut:]], y[idx[cut:]], VAL, rng, noise)
    return xtr, ytr, xva, yva


@functools.lru_cache(maxsize=None)
def token_count(n_train: int, length: int = 24, vocab: int = 4, seed: int = 21):
    """Ten classes: how often token 0 occurs (9 or more as one class), one-hot tokens."""
    rng = np.random.default_rng(seed)
    t = rng.integers(0, vocab, size=(n_train + VAL, length))
    y = np.minimum((t == 0).sum(1), 9).astype("int32")
    x = np.eye(vocab, dtype="float32")[t]
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


@functools.lru_cache(maxsize=None)
def leading_channel(n_train: int, length: int = 20, channels: int = 5, seed: int = 22):
    """Which of five noisy channels has the largest sum, later steps weighted more."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_train + VAL, length, channels)).astype("float32")
    w = np.linspace(0.5, 1.5, length, dtype="float32")[None, :, None]
    y = (x * w).sum(1).argmax(1).astype("int32")
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


@functools.lru_cache(maxsize=None)
def token_mode(n_train: int, length: int = 24, vocab: int = 8, seed: int = 23):
    """Which token occurs most often (one planted 3 extra times; ties to the smallest)."""
    rng = np.random.default_rng(seed)
    n = n_train + VAL
    x = rng.integers(0, vocab, size=(n, length))
    planted = rng.integers(0, vocab, size=n)
    pos = np.argsort(rng.random((n, length)), axis=1)[:, :3]
    x[np.arange(n)[:, None], pos] = planted[:, None]
    counts = (x[:, :, None] == np.arange(vocab)[None, None, :]).sum(1)
    y = counts.argmax(1).astype("int32")
    x = x.astype("int32")
    return x[:n_train], y[:n_train], x[n_train:], y[n_train:]


# ---------------------------------------------------------------------------- models


def _mlp(inputs: int, classes: int, *widths: int) -> keras.Model:
    return keras.Sequential([keras.Input((inputs,)), *[L.Dense(w, activation="relu") for w in widths],
                             L.Dense(classes, activation="softmax")])


def _cnn(bn: bool) -> keras.Model:
    layers = [keras.Input((16, 16, 1))]
    for filters in (16, 32):
        layers.append(L.Conv2D(filters, 3, padding="same", use_bias=not bn))
        if bn:
            layers.append(L.BatchNormalization())
        layers += [L.ReLU(), L.MaxPooling2D()]
    layers += [L.Flatten(), L.Dense(10, activation="softmax")]
    return keras.Sequential(layers)


def _resnet() -> keras.Model:
    inp = keras.Input((16, 16, 1))
    h = L.Conv2D(16, 3, padding="same", activation="relu")(inp)
    for _ in range(2):
        r = L.Conv2D(16, 3, padding="same", activation="relu")(h)
        r = L.Conv2D(16, 3, padding="same")(r)
        h = L.ReLU()(L.Add()([h, r]))
        h = L.MaxPooling2D()(h)
    h = L.GlobalAveragePooling2D()(h)
    return keras.Model(inp, L.Dense(10, activation="softmax")(h))


def _rnn(cell, units: int, length: int, channels: int, classes: int) -> keras.Model:
    return keras.Sequential([keras.Input((length, channels)), cell(units),
                             L.Dense(classes, activation="softmax")])


def _attention(vocab: int = 8, length: int = 24, classes: int = 8, dim: int = 32) -> keras.Model:
    """Embedding, Conv1D, a pre-norm block of MultiHeadAttention and a GELU MLP, LayerNorm."""
    inp = keras.Input((length,), dtype="int32")
    h = L.Conv1D(dim, 3, padding="same")(L.Embedding(vocab, dim)(inp))
    a = L.MultiHeadAttention(num_heads=2, key_dim=16)(L.LayerNormalization()(h), L.LayerNormalization()(h))
    h = L.Add()([h, a])
    f = L.Dense(dim)(L.Dense(2 * dim, activation="gelu")(L.LayerNormalization()(h)))
    h = L.LayerNormalization()(L.Add()([h, f]))
    h = L.GlobalAveragePooling1D()(h)
    return keras.Model(inp, L.Dense(classes, activation="softmax")(h))


def _body(kind: str) -> keras.Model:
    if kind == "mlp":
        return keras.Sequential([keras.Input((40,)), L.Dense(64, activation="relu"),
                                 L.Dense(64, activation="relu")])
    return keras.Sequential([keras.Input((16, 16, 1)), L.Conv2D(16, 3, activation="relu"),
                             L.MaxPooling2D(), L.Conv2D(32, 3, activation="relu"), L.Flatten()])


def _finetune_mlp_data(keep: tuple[int, ...]):
    return blobs(31, 8000, 10, 40, 0.8, 0.03, keep)


def _finetune_cnn_data(keep: tuple[int, ...], n_train: int = 6400):
    return digits16(n_train, 32, keep)


def pretrain(cache: Path) -> None:
    """Each body trained once on classes 0-4 of its task (8 epochs of Adam), kept in `cache`."""
    for kind in ("mlp", "cnn"):
        path = cache / f"pretrained_{kind}.weights.h5"
        if path.exists():
            continue
        keras.utils.set_random_seed(1234)
        body = _body(kind)
        xtr, ytr, _, _ = (_finetune_mlp_data if kind == "mlp" else _finetune_cnn_data)(tuple(range(5)))
        m = keras.Sequential([body, L.Dense(5, activation="softmax")])
        m.compile(keras.optimizers.Adam(2e-3), "sparse_categorical_crossentropy")
        m.fit(xtr, ytr, epochs=8, batch_size=64, verbose=0)
        path.parent.mkdir(parents=True, exist_ok=True)
        body.save_weights(path)
        keras.backend.clear_session()


def _pretrained(cache: Path, kind: str) -> keras.Model:
    body = _body(kind)
    body.load_weights(cache / f"pretrained_{kind}.weights.h5")
    return keras.Sequential([body, L.Dense(5, activation="softmax")])


# ---------------------------------------------------------------------------- setups

HI = tuple(range(5, 10))

SETUPS = (
    InstrumentSetup("i-mlp-adam", "10-class make_classification (40 features, 3% labels flipped), "
                    "MLP 40-64-64-10", lambda: blobs(11, 16000, 10, 40, 0.9), lambda c: _mlp(40, 10, 64, 64),
                    "adam", 64, 2, long=True),
    InstrumentSetup("i-mlp-rmsprop", "6-class make_classification (30 features), MLP 30-48-6",
                    lambda: blobs(12, 8000, 6, 30, 0.7), lambda c: _mlp(30, 6, 48), "rmsprop", 32, 2,
                    long=True, classes=6),
    InstrumentSetup("i-mlp-sgd-b256", "8-class make_classification (40 features), MLP 40-128-128-8",
                    lambda: blobs(13, 20000, 8, 40, 0.8), lambda c: _mlp(40, 8, 128, 128), "sgd", 256, 3,
                    long=True, classes=8),
    InstrumentSetup("i-cnn-adam", "digits 16x16 augmented, CNN 16c3-32c3", lambda: digits16(8000, 41),
                    lambda c: _cnn(False), "adam", 32, 2, score="loss"),
    InstrumentSetup("i-cnn-bn-sgd", "digits 16x16 augmented, CNN 16c3-BN-32c3-BN",
                    lambda: digits16(16000, 42), lambda c: _cnn(True), "sgd", 64, 2, score="loss"),
    InstrumentSetup("i-resnet-adamw", "digits 16x16 augmented, residual CNN (2 blocks)",
                    lambda: digits16(10000, 43), lambda c: _resnet(), "adamw", 128, 3, score="loss"),
    InstrumentSetup("i-gru-adamw", "count of token 0 in 24 of 4 (10 classes), GRU(32)",
                    lambda: token_count(20000), lambda c: _rnn(L.GRU, 32, 24, 4, 10), "adamw", 100, 2,
                    score="loss"),
    InstrumentSetup("i-lstm-adam", "leading channel (20x5, weighted), LSTM(32)",
                    lambda: leading_channel(12800), lambda c: _rnn(L.LSTM, 32, 20, 5, 5), "adam", 64, 2,
                    score="loss", classes=5),
    InstrumentSetup("i-attn-adamw", "token mode (24 of 8), Conv1D + MultiHeadAttention + GELU MLP, "
                    "LayerNorm", lambda: token_mode(12800), lambda c: _attention(), "adamw-wd2", 128, 2,
                    score="loss", classes=8),
    InstrumentSetup("i-finetune-mlp-sgd", "classes 5-9 of a make_classification task, MLP pretrained on 0-4",
                    lambda: _finetune_mlp_data(HI), lambda c: _pretrained(c, "mlp"), "sgd", 64, 2,
                    long=True, classes=5),
    InstrumentSetup("i-finetune-cnn-adam", "digits 5-9 16x16 augmented, CNN pretrained on 0-4",
                    lambda: _finetune_cnn_data(HI), lambda c: _pretrained(c, "cnn"), "adam", 64, 2,
                    score="loss", classes=5),
)
