"""The one-cycle grid oracle and the range-test curves of a setup, both cached on disk.

Per setup (`scripts.setups.SETUPS`): one-cycle training at a given peak, mean validation
accuracy over seeds (the grid of peaks `setups.grid` is the yardstick a rule's peak is
measured against), and range tests as lrsearch, fastai and Lightning users get them.
`bench_suggestions` and `bench_study_space` share one cache folder, so that neither
trains again what the other has trained.
"""

from __future__ import annotations

import ast
import hashlib
import json
import statistics
from collections.abc import Callable
from pathlib import Path

import keras
import numpy as np

import lrsearch
from lrsearch.rangetest.result import RangeTestResult
from lrsearch.schedules import OneCycle
from scripts.common import package_files
from scripts.references import fastai_anchor
from scripts.setups import Setup, optimizer

CURVE_CODE = ("rangetest/finder.py", "rangetest/result.py", "rangetest/steppers/*.py",
              "rangetest/analysis.py", "rangetest/curve.py")
"""The modules a range test's curve, and the rounds it runs, depend on."""


class Cache:
    """One setup's trained results (`train.json`) and range-test curves (CSV files)."""

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


def curve_tag() -> str:
    """lrsearch's curves depend on the range test's code and, through the rounds it
    runs, on the curve reading: a hash of their code keys the cache. Docstrings and the
    margins (they move `max_lr`, not the problems that decide the rounds) are left out,
    so that editing those does not rerun every range test."""
    parts = []
    for f in package_files(*CURVE_CODE):
        tree = ast.parse(f.read_text())
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


class Runner:
    """A setup's oracle runs and range tests, read from the cache or run and stored."""

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

    def runs(self, peak: float) -> list[list[float]]:
        """`[val accuracy, val loss]` of one-cycle at `peak`, one pair per seed (cached)."""
        peak = float(f"{peak:.4g}")
        return [self.cache.train(f"{peak:.4g}|{seed}", lambda sd=seed: self._fit(peak, sd))
                for seed in range(self.seeds)]

    def acc(self, peak: float) -> float:
        """Mean validation accuracy of one-cycle at `peak` over the seeds."""
        return statistics.mean(r[0] for r in self.runs(peak))

    def range_test(self, kind: str, seed: int = 0) -> RangeTestResult:
        """kind: 'lrsearch' (defaults), 'fastai' (100 steps 1e-7..10), 'lightning' (1e-8..1)."""
        tag = curve_tag()

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
