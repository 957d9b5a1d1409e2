"""Do the suggested rates hold on models they were not fitted to?

Twelve small setups that need no download cross model families (MLP, CNN with and
without BatchNorm, a residual net, GRU, LSTM, a small attention model, a pretrained
model fine-tuned on new classes), optimizers (SGD with momentum, Adam, AdamW, RMSprop),
batch sizes (16-512) and run lengths (3-20 epochs). They are split once, here, into a
**fit** half (rules and constants were chosen on it) and a **check** half (reported
only). Per setup:

- the oracle: one-cycle training at each peak of a log grid (half-decade steps), mean
  validation accuracy over `--seeds` initialisations; the best grid point is the yardstick;
- lrsearch: `range_test` with its defaults (`steps=None`), `suggestion.max_lr` used as
  the one-cycle peak; ratio = its mean accuracy / the oracle's best;
- the anchors, run as their users get them: fastai's `valley`, `steep` and `minimum`
  on `lr_find`'s 100-step test from 1e-7 to 10 recorded as fastai records it
  (debiased EMA 0.98, first 10% and last 5 points dropped, stop at 4x the best smoothed
  loss), and Lightning's steepest-gradient rule on a 100-step test from 1e-8 to 1 (same
  EMA and stop; first 10 and last point dropped; gradient with respect to the rate
  itself, not its log). fastai's rules are fastai's own functions when an interpreter
  with fastai is at hand (`--fastai-python`, e.g. a separate venv with torch and
  fastai), else a transcription (`fastai_anchor.py`); the output says which ran.
  Lightning's rule follows `_LRFinder.suggestion` in `lightning/pytorch/tuner/lr_finder.py`
  (`torch.gradient(losses, spacing=[lrs])` on its EMA curve, `[10:-1]`): on an
  exponential sweep a gradient in the rate itself favours the smallest rates, which is
  why its peaks land near 1e-7 (as Lightning users get them);
- stability: lrsearch's `max_lr` from `--spread-seeds` range tests (other initialisation
  and batch order each), max / min.

Range-test curves and trained results are cached under `--cache` (keyed by setup, rate,
seed and the range-test code), so that trying a new rule only trains at its new peaks.

    python scripts/bench_suggestions.py [--half fit|check|both] [--seeds 2]
        [--spread-seeds 5] [--only NAME,...] [--cache DIR] [--candidates]

`--candidates` also prints the candidate peak rules on the fit half (how the rule was
chosen). Prints markdown tables and one `target:` line per claim on the check half.
"""

from __future__ import annotations

import argparse
import ast
import hashlib
import json
import logging
import os
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.datasets import load_digits, make_classification  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import lrsearch  # noqa: E402
from lrsearch.rangetest.curve import smooth_loss  # noqa: E402
from lrsearch.core.errors import CurveError  # noqa: E402
from lrsearch.rangetest.result import RangeTestResult  # noqa: E402
from lrsearch.schedules import OneCycle  # noqa: E402

import fastai_anchor  # noqa: E402  (beside this script)

ROOT = Path(__file__).resolve().parents[1]
L = keras.layers

# ---------------------------------------------------------------------------- data


def _digits(classes=None):
    x, y = load_digits(return_X_y=True)
    x = (x / 16.0).astype("float32")
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
    name: str
    half: str  # "fit" or "check"
    about: str
    data: Callable
    model: Callable  # (cache) -> keras.Model
    optimizer: str  # sgd, adam, adamw, rmsprop
    batch: int
    epochs: int


def _digits_img(classes=None):
    xtr, ytr, xva, yva = _digits(classes)
    return xtr.reshape(-1, 8, 8, 1), ytr, xva.reshape(-1, 8, 8, 1), yva


def _digits_hi():
    return _digits(classes=list(range(5, 10)))


def _digits_hi_img():
    return _digits_img(classes=list(range(5, 10)))


SETUPS = (
    Setup("mlp-sgd", "fit", "digits, MLP 64-32-10", _digits, lambda c: _mlp(64, 10), "sgd", 32, 5),
    Setup("cnn-adam", "fit", "digits 8x8, CNN 16c3-16c3", _digits_img, lambda c: _cnn(False), "adam", 100, 8),
    Setup("gru-adamw", "fit", "halves-sum sequences (20x1), GRU(16)", _halves_sum,
          lambda c: _rnn("gru", 20, 1, 2), "adamw", 64, 5),
    Setup("attn-adam", "fit", "token counts (16 of 8), attention block", _token_counts,
          lambda c: _attention(8, 16, 2), "adam", 64, 4),
    Setup("mlp-rmsprop-b16", "fit", "synthetic 4-class, MLP 20-32-4", _synthetic,
          lambda c: _mlp(20, 4), "rmsprop", 16, 3),
    Setup("finetune-mlp-sgd", "fit", "digits 5-9, MLP pretrained on 0-4", _digits_hi,
          lambda c: _pretrained(c, "mlp"), "sgd", 16, 3),
    Setup("cnn-bn-sgd", "check", "digits 8x8, CNN 16c3-BN-16c3", _digits_img, lambda c: _cnn(True), "sgd", 32, 4),
    Setup("mlp-adam-b512", "check", "synthetic 4-class, MLP 20-64-64-4", _synthetic,
          lambda c: _mlp(20, 4, 64, 2), "adam", 512, 20),
    Setup("lstm-rmsprop", "check", "leading channel (15x3), LSTM(16)", _leading_channel,
          lambda c: _rnn("lstm", 15, 3, 3), "rmsprop", 32, 4),
    Setup("resnet-adamw", "check", "digits 8x8, residual CNN (2 blocks)", _digits_img, lambda c: _resnet(),
          "adamw", 64, 6),
    Setup("attn-adamw-b128", "check", "token mode (16 of 6), attention block", _token_mode,
          lambda c: _attention(6, 16, 6), "adamw", 128, 10),
    Setup("finetune-cnn-adam", "check", "digits 5-9, CNN pretrained on 0-4", _digits_hi_img,
          lambda c: _pretrained(c, "cnn"), "adam", 32, 3),
)


def optimizer(kind: str, lr):
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


# ---------------------------------------------------------------------------- cache


class Cache:
    def __init__(self, root: Path, setup: Setup) -> None:
        self.dir = root / setup.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.file = self.dir / "train.json"
        self.runs = json.loads(self.file.read_text()) if self.file.exists() else {}

    def train(self, key: str, fn: Callable[[], list[float]]) -> list[float]:
        if key not in self.runs:
            self.runs[key] = fn()
            self.file.write_text(json.dumps(self.runs, indent=0))
        return self.runs[key]

    def curve(self, key: str, fn: Callable[[], RangeTestResult]) -> RangeTestResult:
        path = self.dir / f"rt_{key}.csv"
        if not path.exists():
            fn().save(path)
        return RangeTestResult.load(path)


def _code_tag() -> str:
    """lrsearch's curves depend on the range test's code and, through the rounds it
    runs, on the curve reading: a hash of their code keys the cache. Docstrings and the
    margins (they move `max_lr`, not the problems that decide the rounds) are left out,
    so that editing those does not rerun every range test."""
    parts = []
    for f in ("finder.py", "rangestep.py", "analysis.py"):
        tree = ast.parse((ROOT / "lrsearch" / f).read_text())
        for node in ast.walk(tree):
            body = getattr(node, "body", None)
            if isinstance(body, list):
                node.body = [b for b in body if not (
                    isinstance(b, ast.Expr) and isinstance(b.value, ast.Constant)
                    and isinstance(b.value.value, str))
                    and not (isinstance(b, ast.Assign) and any(
                        isinstance(t, ast.Name) and t.id.startswith("MARGIN_") for t in b.targets))] or [ast.Pass()]
        parts.append(ast.dump(tree))
    return hashlib.sha1("".join(parts).encode()).hexdigest()[:8]


# ---------------------------------------------------------------------------- runs


class Runner:
    def __init__(self, setup: Setup, cache_root: Path, seeds: int) -> None:
        self.s = setup
        self.cache_root = cache_root
        self.cache = Cache(cache_root, setup)
        self.data = setup.data()
        self.seeds = seeds

    def build(self, lr, seed: int) -> keras.Model:
        keras.utils.set_random_seed(seed)
        m = self.s.model(self.cache_root)
        m.compile(optimizer=optimizer(self.s.optimizer, lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=False)
        return m

    def _fit(self, peak: float, seed: int) -> list[float]:
        xtr, ytr, xva, yva = self.data
        steps = self.s.epochs * (len(xtr) // self.s.batch)
        m = self.build(OneCycle(peak, steps, cycle_momentum=False), seed)
        m.fit(xtr, ytr, epochs=self.s.epochs, batch_size=self.s.batch, verbose=0, shuffle=True)
        loss, acc = m.evaluate(xva, yva, verbose=0, batch_size=512)
        keras.backend.clear_session()
        return [float(acc) if np.isfinite(loss) else 0.0, float(loss)]

    def acc(self, peak: float) -> float:
        """Mean validation accuracy of one-cycle at `peak` over the seeds."""
        peak = float(f"{peak:.4g}")
        accs = [self.cache.train(f"{peak:.4g}|{seed}", lambda sd=seed: self._fit(peak, sd))[0]
                for seed in range(self.seeds)]
        return statistics.mean(accs)

    def range_test(self, kind: str, seed: int = 0) -> RangeTestResult:
        """kind: 'lrsearch' (defaults), 'fastai' (100 steps 1e-7..10), 'lightning' (1e-8..1)."""
        tag = _code_tag()

        def run():
            xtr, ytr, _, _ = self.data
            order = np.random.default_rng(100 + seed).permutation(len(xtr)) if seed else np.arange(len(xtr))
            model = self.build(1e-3, 10_000 + seed)
            kw = {"lrsearch": {}, "fastai": dict(min_lr=fastai_anchor.MIN_LR, max_lr=fastai_anchor.MAX_LR,
                                                 steps=fastai_anchor.NUM_IT),
                  "lightning": dict(min_lr=1e-8, max_lr=1.0, steps=100)}[kind]
            r = lrsearch.range_test(model, (xtr[order], ytr[order]), batch_size=self.s.batch,
                                    verbose=0, **kw)
            keras.backend.clear_session()
            return r

        # the anchors' tests run a fixed number of steps: their curves do not change
        return self.cache.curve(f"{kind}_{seed}_{tag}" if kind == "lrsearch" else f"{kind}_{seed}", run)


# ---------------------------------------------------------------------------- anchors


def fastai_rules(r: RangeTestResult) -> dict[str, float]:
    """fastai's valley, steep and minimum on its test's curve (`fastai_anchor`)."""
    return fastai_anchor.suggestions(r.frame["lr"].to_numpy(), r.frame["loss"].to_numpy())


def lightning_steepest(r):
    """Lightning's `_LRFinder.suggestion(skip_begin=10, skip_end=1)`: argmin of the
    gradient of the smoothed loss with respect to the rate."""
    lrs = r.frame["lr"].to_numpy()[10:-1]
    losses = smooth_loss(r.frame["loss"].to_numpy(), 0.98)[10:-1]
    ok = np.isfinite(losses)
    lrs, losses = lrs[ok], losses[ok]
    return float(lrs[int(np.argmin(np.gradient(losses, lrs)))])


# ---------------------------------------------------------------------------- report


def _ratio(run: Runner, peak: float, best: float) -> float:
    return run.acc(peak) / best


def bench(setups, args) -> dict[str, dict]:
    out = {}
    for s in setups:
        run = Runner(s, args.cache, args.seeds)
        accs = {g: run.acc(g) for g in grid(s)}
        best_peak = max(accs, key=accs.get)
        best = accs[best_peak]
        tests = []
        for sd in range(args.spread_seeds):
            try:  # a curve lrsearch refuses to read (CurveError) counts as a miss
                tests.append(run.range_test("lrsearch", sd))
            except CurveError as exc:
                tests.append(None)
                print(f"<!-- {s.name} seed {sd}: {exc} -->", flush=True)
        rt = tests[0]
        sug = rt.suggestion if rt is not None else None
        fa, li = run.range_test("fastai"), run.range_test("lightning")
        peaks = {"lrsearch": sug.max_lr if sug else float("nan"), **fastai_rules(fa),
                 "lightning": lightning_steepest(li)}
        ratios = {k: _ratio(run, v, best) if np.isfinite(v) else 0.0 for k, v in peaks.items()}
        spread_peaks = [t.suggestion.max_lr for t in tests if t is not None] or [float("nan")]
        out[s.name] = dict(setup=s, grid=accs, best_peak=best_peak, best=best, peaks=peaks,
                           ratios=ratios, spread=(max(spread_peaks) / min(spread_peaks)) if None not in tests else float("inf"),
                           spread_peaks=spread_peaks, rt=rt, sug=sug, run=run)
        print(f"<!-- {s.name}: done -->", flush=True)
    return out


def _rt_cell(rt) -> str:
    if rt is None:
        return "CurveError"
    return f"{len(rt.frame)}, {rt.stopped}" + (f", {len(rt.meta['rounds'])} rounds"
                                               if len(rt.meta.get("rounds", ())) > 1 else "")


def report(half: str, res: dict[str, dict], args) -> None:
    names = [n for n, r in res.items() if r["setup"].half == half]
    if not names:
        return
    print(f"### {half} half\n")
    print("| setup | data, model | optimizer, batch, epochs | range test (steps, end) | "
          "best grid peak (acc) | lrsearch max_lr | ratio | valley | steep | minimum | "
          "Lightning | max_lr spread (5 seeds) |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for n in names:
        r = res[n]
        s, rt, q = r["setup"], r["rt"], r["ratios"]
        print(f"| {n} | {s.about} | {s.optimizer}, {s.batch}, {s.epochs} | "
              f"{_rt_cell(rt)} | {r['best_peak']:.3g} ({r['best']:.4f}) | "
              f"{r['peaks']['lrsearch']:.3g} | {q['lrsearch']:.3f} | "
              + " | ".join(f"{q[k]:.3f} ({r['peaks'][k]:.2g})" for k in ("valley", "steep", "minimum", "lightning"))
              + f" | {r['spread']:.2f} |")
    print()
    for k in ("lrsearch", "valley", "steep", "minimum", "lightning"):
        vals = [res[n]["ratios"][k] for n in names]
        print(f"- {k}: median ratio {statistics.median(vals):.3f}, worst {min(vals):.3f}")
    print()
    warned = [(n, w) for n in names for w in (res[n]["sug"].warnings if res[n]["sug"] else ())]
    if warned:
        print("Curve warnings: " + "; ".join(f"{n}: {w}" for n, w in warned) + "\n")
    if args.grids:
        print("<details><summary>oracle grids (mean val accuracy per peak)</summary>\n")
        for n in names:
            print(f"- {n}: " + ", ".join(f"{g:.3g}: {a:.3f}" for g, a in res[n]["grid"].items()))
        print("\n</details>\n")
    if half == "check":
        vals = [res[n]["ratios"]["lrsearch"] for n in names]
        med, worst = statistics.median(vals), min(vals)
        print(f"target: check half: median ratio {med:.3f} >= 0.99: {'met' if med >= 0.99 else 'MISSED'}")
        print(f"target: check half: worst ratio {worst:.3f} >= 0.97: {'met' if worst >= 0.97 else 'MISSED'}")
        for n in names:
            q = res[n]["ratios"]
            ok = q["lrsearch"] > q["valley"]
            print(f"target: {n}: lrsearch {q['lrsearch']:.3f} > fastai valley {q['valley']:.3f}: "
                  f"{'met' if ok else 'MISSED'}")
        spread = max(res[n]["spread"] for n in names)  # NaN (no readable curve) is a miss
        spread = spread if np.isfinite(spread) else float("inf")
        print(f"target: check half: max_lr spread over {args.spread_seeds} range-test seeds, "
              f"worst {spread:.2f} <= 1.5: {'met' if spread <= 1.5 else 'MISSED'}")
        print()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--half", choices=("fit", "check", "both"), default="both")
    p.add_argument("--only", default="")
    p.add_argument("--seeds", type=int, default=2)
    p.add_argument("--spread-seeds", type=int, default=5)
    p.add_argument("--cache", type=Path,
                   default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                   / "lrsearch-bench" / "suggestions")
    p.add_argument("--grid-only", action="store_true", help="only train the oracle grids")
    p.add_argument("--grids", action="store_true", help="print each oracle grid")
    p.add_argument("--candidates", action="store_true", help="print candidate rules (fit half)")
    p.add_argument("--fastai-python", default=None,
                   help="a Python with torch and fastai that runs fastai's rules "
                        "(default: $LRSEARCH_BENCH_FASTAI_PYTHON, else this one)")
    args = p.parse_args()
    logging.getLogger("lrsearch").setLevel(logging.ERROR)
    if args.fastai_python:
        os.environ["LRSEARCH_BENCH_FASTAI_PYTHON"] = args.fastai_python
    only = {n.strip() for n in args.only.split(",") if n.strip()}
    setups = [s for s in SETUPS if (args.half == "both" or s.half == args.half)
              and (not only or s.name in only)]
    pretrain(args.cache)
    if args.grid_only:
        for s in setups:
            run = Runner(s, args.cache, args.seeds)
            print(s.name, {f"{g:.3g}": round(run.acc(g), 4) for g in grid(s)}, flush=True)
        return
    res = bench(setups, args)
    print(f"One-cycle (cos, div 25, pct_start 0.3, fixed momentum) at each peak; ratio = mean "
          f"val accuracy over {args.seeds} seeds at the rule's peak / the best of a 7-point "
          f"grid (half a decade apart). Anchor columns: ratio (peak). fastai's rules: "
          f"{fastai_anchor.source()}.\n")
    for half in ("fit", "check"):
        report(half, res, args)
    if args.candidates:
        candidates(res)


def candidates(res: dict[str, dict]) -> None:
    """Candidate peak rules, read from the same lrsearch curve, on the fit half."""
    rules = {
        "max_lr (current)": lambda s: s.max_lr,
        "min_loss_lr / 3": lambda s: s.min_loss_lr / 3,
        "min_loss_lr / 2": lambda s: s.min_loss_lr / 2,
        "min_loss_lr / 1.5": lambda s: s.min_loss_lr / 1.5,
        "min_loss_lr": lambda s: s.min_loss_lr,
        "steepest_lr": lambda s: s.steepest_lr,
        "sqrt(steepest * min_loss)": lambda s: (s.steepest_lr * s.min_loss_lr) ** 0.5,
    }
    names = [n for n, r in res.items() if r["setup"].half == "fit"]
    print("### candidate peak rules on the fit half\n")
    print("| rule | " + " | ".join(names) + " | median | worst |")
    print("|---|" + "---|" * (len(names) + 2))
    for label, rule in rules.items():
        vals = [res[n]["run"].acc(rule(res[n]["sug"])) / res[n]["best"] for n in names]
        print(f"| {label} | " + " | ".join(f"{v:.3f}" for v in vals)
              + f" | {statistics.median(vals):.3f} | {min(vals):.3f} |")
    print()


if __name__ == "__main__":
    main()
