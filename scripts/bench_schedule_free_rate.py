"""Which rate does a range test give Schedule-Free AdamW, and is it the right one?

Schedule-Free trains at a constant rate; it still needs one (its reference package's
default is 0.0025, its README says 1x-10x the usual AdamW rate). The range test reads a
curve while the rate rises every step; for a Schedule-Free optimizer that curve is
shaped by the optimizer's own warmup (which multiplies the ramp), by its averaging
(`weight_lr_power`: a step's weight in `x` grows with the largest rate so far) and by
the loss being taken at `y`, the interpolation between the average `x` and the base
iterate `z`. The margin that turns the loss minimum into a rate (`min_loss_lr /
margin`, `lrsearch.rangetest.analysis.default_margin`) was fitted on AdamW, Adam, RMSprop and SGD
trained with one-cycle, not on Schedule-Free.

On the setups of `bench_suggestions` (`scripts.setups.SETUPS`: same data, models,
batches and epochs; the same fit / check split), every model is trained with `ScheduleFreeAdamW` (beta 0.9, a
warmup of `--warmup` of the steps, no weight decay) at a constant rate, evaluated at
the averaged weights `x` (BatchNorm statistics recomputed at `x`):

- the oracle: a grid of rates half a decade apart (3e-4 .. 0.3), mean validation
  accuracy over `--seeds` initialisations; the best grid point is the yardstick;
- the reference's default rate, 0.0025;
- range tests of the same compiled model (lrsearch's defaults, `steps=None`), read
  with several margins: `no warmup` (the optimizer's warmup paused during the test,
  what `range_test` does), `as is` (the warmup left on, as before), `as is, warmup 500`
  (compiled with `warmup_steps=500`, the docstring's example, left on: a warmup longer
  than the test), and the setup's own non-Schedule-Free optimizer (Adam, AdamW,
  RMSprop: the curve a `schedule_free` study reads when the model was compiled with
  that; not SGD, whose study trains `ScheduleFreeSGD`);
- `lrsearch max_lr`: the suggestion's `max_lr` on the `no warmup` curve, what a study
  of a Schedule-Free model starts from.

On the three SGD setups also `ScheduleFreeSGD` (what a `schedule_free` study of an SGD
model trains): its own grid (3e-3 .. 3), its own curve read with margins 1, 1.5 (the
margin Schedule-Free curves take) and 3 (SGD's, which they took before), the SGD
curve's `max_lr` and `min_loss_lr`, and the reference's default rate 1.0.

Ratio = mean accuracy at a rule's rate / the oracle's best. Curves and trained results
are cached under `--cache` (setup, rate, seed, warmup), so a new rule trains only its
new rates.

The halves are `scripts.split`'s: the fit half by default; `--half check` (all of it
seen) prints only the final numbers (lrsearch's rule and the default against the
oracle, and the targets; no candidate rules, no grids) and appends them to
`scripts/check_ledger.jsonl`.

    nice -n 10 python -m scripts.bench_schedule_free_rate [--half fit|check]
        [--seeds 1] [--warmup 0.05] [--only NAME,...] [--cache DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import statistics
from pathlib import Path
from unittest import mock

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

import lrsearch  # noqa: E402
from lrsearch.core.errors import CurveError  # noqa: E402
from lrsearch.optimizers import ScheduleFreeAdamW, ScheduleFreeSGD, recompute_batchnorm  # noqa: E402
from lrsearch.rangetest import finder  # noqa: E402
from lrsearch.rangetest.result import RangeTestResult  # noqa: E402
from scripts import split  # noqa: E402
from scripts.common import cache_dir, code_tag, print_grids, target_line  # noqa: E402
from scripts.setups import SETUPS, Setup, optimizer, pretrain  # noqa: E402

DEFAULT_RATE = 0.0025
GRID = [float(10 ** (-3.5 + 0.5 * i)) for i in range(7)]
SGD_GRID = [float(10 ** (-2.5 + 0.5 * i)) for i in range(7)]  # 3e-3 .. 3 for ScheduleFreeSGD
RULES = {"no warmup": (1.0, 1.5, 2.0, 3.0), "as is": (1.5,), "as is, warmup 500": (1.5,),
         "own optimizer": (1.0, 1.5)}
"""The margins each curve is read with: `min_loss_lr / margin`."""
CURVES = ("as is", "as is, warmup 500", "no warmup", "own optimizer")
CURVE_CODE = ("rangetest/finder.py", "rangetest/result.py", "rangetest/steppers/*.py",
              "optimizers/schedule_free.py", "optimizers/schedule_free_training.py")
"""The modules the cached curves are keyed by: the range test's and Schedule-Free's."""


def _key(x: float) -> str:
    return f"{float(x):.4g}"


class Runner:
    """One setup: trained results and range-test curves, cached on disk."""

    def __init__(self, setup: Setup, cache: Path, seeds: int, warmup: float, code: str) -> None:
        self.s, self.cache_root, self.seeds, self.warmup = setup, cache, seeds, warmup
        self.dir = cache / setup.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.file = self.dir / f"train_w{_key(warmup)}.json"
        self.runs = json.loads(self.file.read_text()) if self.file.exists() else {}
        self.data = setup.data()
        self.code = code
        xtr = self.data[0]
        self.steps = setup.epochs * (len(xtr) // setup.batch)
        self.warmup_steps = round(warmup * self.steps)

    def _model(self, opt, seed: int) -> keras.Model:
        keras.utils.set_random_seed(seed)
        m = self.s.model(self.cache_root)
        m.compile(optimizer=opt, loss="sparse_categorical_crossentropy", metrics=["accuracy"], jit_compile=False)
        return m

    def sf(self, lr: float, **kw) -> ScheduleFreeAdamW:
        return ScheduleFreeAdamW(lr, warmup_steps=kw.pop("warmup_steps", self.warmup_steps), **kw)

    def _fit(self, lr: float, seed: int, kind: str) -> list[float]:
        xtr, ytr, xva, yva = self.data
        opt = self.sf(lr) if kind == "adamw" else ScheduleFreeSGD(lr, warmup_steps=self.warmup_steps)
        m = self._model(opt, seed)
        m.fit(xtr, ytr, epochs=self.s.epochs, batch_size=self.s.batch, verbose=0, shuffle=True)
        # fit left the weights at x; BatchNorm statistics at x as the paper advises
        recompute_batchnorm(m, [xtr[i:i + self.s.batch] for i in range(0, len(xtr), self.s.batch)], 50)
        loss, acc = m.evaluate(xva, yva, verbose=0, batch_size=512)
        keras.backend.clear_session()
        return [float(acc) if np.isfinite(loss) else 0.0, float(loss)]

    def acc(self, lr: float, kind: str = "adamw") -> float:
        """Mean validation accuracy (at x) of Schedule-Free AdamW (`kind="adamw"`) or SGD
        (`"sgd"`) at constant `lr`."""
        lr = float(_key(lr))
        accs = []
        for seed in range(self.seeds):
            k = f"{_key(lr)}|{seed}" if kind == "adamw" else f"{kind}:{_key(lr)}|{seed}"
            if k not in self.runs:
                self.runs[k] = self._fit(lr, seed, kind)
                self.file.write_text(json.dumps(self.runs, indent=0))
            accs.append(self.runs[k][0])
        return statistics.mean(accs)

    def curve(self, kind: str) -> RangeTestResult | None:
        """lrsearch's range test (defaults) on the setup's model under `kind` (CURVES)."""
        path = self.dir / f"rt_{kind.replace(' ', '_')}_w{_key(self.warmup)}_{self.code}.csv"
        if not path.exists():
            xtr, ytr, _, _ = self.data
            if kind == "own optimizer":
                opt = optimizer(self.s.optimizer, 1e-3)
            elif kind == "schedule-free sgd":
                opt = ScheduleFreeSGD(1.0, warmup_steps=self.warmup_steps)
            elif kind == "as is, warmup 500":  # the docstring's example: a warmup longer than the test
                opt = self.sf(1e-3, warmup_steps=500)
            else:
                opt = self.sf(1e-3)  # compiled with its warmup; range_test pauses it ("no warmup")
            m = self._model(opt, 10_000)
            # "as is": the optimizer's warmup left on during the test, as before range_test paused it
            keep = mock.patch.object(finder, "pause_warmup", lambda o: (lambda: None)) \
                if kind.startswith("as is") else contextlib.nullcontext()
            try:
                with keep:
                    r = lrsearch.range_test(m, (xtr, ytr), batch_size=self.s.batch, verbose=0)
            except CurveError as exc:
                print(f"<!-- {self.s.name} {kind}: {exc} -->", flush=True)
                return None
            finally:
                keras.backend.clear_session()
            r.save(path)
        return RangeTestResult.load(path)


def bench(setups, args) -> dict[str, dict]:
    code = code_tag(*CURVE_CODE)
    out = {}
    for s in setups:
        run = Runner(s, args.cache, args.seeds, args.warmup, code)
        grid = {g: run.acc(g) for g in GRID}
        best_lr = max(grid, key=grid.get)
        best = grid[best_lr]
        rates: dict[str, float] = {"default 0.0025": DEFAULT_RATE}
        sugs = {}
        for kind in CURVES:
            if kind == "own optimizer" and s.optimizer == "sgd":
                continue  # a schedule_free study of an SGD model trains ScheduleFreeSGD: another scale
            rt = run.curve(kind)
            sugs[kind] = rt.suggestion if rt is not None else None
            for m in RULES[kind]:
                rates[f"{kind}, min/{m:g}"] = sugs[kind].min_loss_lr / m if sugs[kind] else float("nan")
        # what lrsearch hands a study now: the suggestion's max_lr on the test range_test runs
        rates["lrsearch max_lr"] = sugs["no warmup"].max_lr if sugs["no warmup"] else float("nan")
        ratios = {k: run.acc(v) / best if np.isfinite(v) else 0.0 for k, v in rates.items()}
        out[s.name] = dict(setup=s, grid=grid, best_lr=best_lr, best=best, rates=rates, ratios=ratios,
                           sugs=sugs, warmup_steps=run.warmup_steps, steps=run.steps)
        if s.optimizer == "sgd":
            out[s.name]["sgd"] = _sgd(run)
        print(f"<!-- {s.name}: done -->", flush=True)
    return out


def _sgd(run: Runner) -> dict:
    """Schedule-Free SGD on an SGD setup: its own grid, its own curve, and the SGD
    (momentum 0.9) curve a `schedule_free` study of the SGD model reads."""
    grid = {g: run.acc(g, "sgd") for g in SGD_GRID}
    best = max(grid.values())
    own, sgd = run.curve("schedule-free sgd"), run.curve("own optimizer")
    rates = {"default 1.0": 1.0}
    if own is not None:
        o = own.suggestion
        rates.update({"own curve, min/1": o.min_loss_lr, "own curve, min/1.5 (lrsearch max_lr)": o.max_lr,
                      "own curve, min/3 (the margin before)": o.min_loss_lr / 3})
    if sgd is not None:
        g = sgd.suggestion
        rates.update({"SGD curve, max_lr (a study's first trial)": g.max_lr,
                      "SGD curve, min_loss_lr (the top of sf_lr)": g.min_loss_lr})
    return dict(grid=grid, best=best, best_lr=max(grid, key=grid.get), rates=rates,
                ratios={k: run.acc(v, "sgd") / best for k, v in rates.items()})


def report_sgd(res: dict[str, dict]) -> None:
    names = [n for n, r in res.items() if "sgd" in r]
    if not names:
        return
    print("### Schedule-Free SGD on the SGD setups\n")
    rules = list(dict.fromkeys(k for n in names for k in res[n]["sgd"]["ratios"]))
    print("| setup (half) | best grid rate (acc) | " + " | ".join(rules) + " |")
    print("|---|---|" + "---|" * len(rules))
    for n in names:
        r = res[n]["sgd"]
        print(f"| {n} ({res[n]['setup'].half}) | {r['best_lr']:.3g} ({r['best']:.4f}) | "
              + " | ".join(f"{r['ratios'][k]:.3f} ({r['rates'][k]:.3g})" for k in rules) + " |")
    print()
    print_grids("oracle grids (mean val accuracy at x per rate)", {n: res[n]["sgd"]["grid"] for n in names})


def _fit_tables(names: list[str], res: dict[str, dict]) -> None:
    """Every rule's ratio per setup: how the rule was chosen (fit half only)."""
    print("| setup | optimizer it replaces, batch, epochs (warmup) | best grid rate (acc) | default 0.0025 | "
          "paused warmup: min_loss_lr (ratio at min/1.5) | warmup on: min_loss_lr (ratio) | "
          "warmup of 500 on: min_loss_lr (ratio) | own optimizer: min_loss_lr (ratio) |")
    print("|---|---|---|---|---|---|---|---|")
    for n in names:
        r = res[n]
        s, q, sg = r["setup"], r["ratios"], r["sugs"]

        def cell(kind, m=1.5):
            if kind not in sg:
                return "n/a"
            if sg[kind] is None:
                return "CurveError"
            return f"{sg[kind].min_loss_lr:.3g} ({q[f'{kind}, min/{m:g}']:.3f})"

        print(f"| {n} | {s.optimizer}, {s.batch}, {s.epochs} ({r['warmup_steps']} of {r['steps']} steps) | "
              f"{r['best_lr']:.3g} ({r['best']:.4f}) | {q['default 0.0025']:.3f} | {cell('no warmup')} | "
              f"{cell('as is')} | {cell('as is, warmup 500')} | {cell('own optimizer')} |")
    print()
    print("| rule | " + " | ".join(names) + " | median | worst |")
    print("|---|" + "---|" * (len(names) + 2))
    rules = list(dict.fromkeys(k for n in names for k in res[n]["ratios"]))
    for rule in rules:
        vals = [res[n]["ratios"].get(rule) for n in names]
        known = [v for v in vals if v is not None]
        print(f"| {rule} | " + " | ".join("n/a" if v is None else f"{v:.3f}" for v in vals)
              + f" | {statistics.median(known):.3f} | {min(known):.3f} |")
    print()


def report(half: str, res: dict[str, dict], args) -> None:
    names = [n for n, r in res.items() if r["setup"].half == half]
    if not names:
        return
    print(f"### {half} half\n")
    if half == "check":
        print("| setup | best grid rate (acc) | lrsearch max_lr (ratio) | default 0.0025 (ratio) |")
        print("|---|---|---|---|")
        for n in names:
            r = res[n]
            print(f"| {n} | {r['best_lr']:.3g} ({r['best']:.4f}) | {r['ratios']['lrsearch max_lr']:.3f} | "
                  f"{r['ratios']['default 0.0025']:.3f} |")
        print()
    else:
        _fit_tables(names, res)
    if half == "check":
        ours = [res[n]["ratios"]["lrsearch max_lr"] for n in names]
        default = [res[n]["ratios"]["default 0.0025"] for n in names]
        med, worst = statistics.median(ours), min(ours)
        print(target_line(f"check half: Schedule-Free at lrsearch's max_lr, median ratio {med:.3f} >= 0.99",
                          med >= 0.99))
        print(target_line(f"check half: Schedule-Free at lrsearch's max_lr, worst ratio {worst:.3f} >= 0.97",
                          worst >= 0.97))
        ahead = sum(o >= d for o, d in zip(ours, default))
        print(target_line(f"check half: lrsearch's max_lr at least as good as the default 0.0025 on "
                          f"{ahead} of {len(names)} setups (all)", ahead == len(names)))
        print()
    if args.grids:
        print_grids("oracle grids (mean val accuracy at x per rate)", {n: res[n]["grid"] for n in names})


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    split.add_half_argument(p)
    p.add_argument("--only", default="")
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--warmup", type=float, default=0.05, help="Schedule-Free warmup, a share of the steps")
    p.add_argument("--grids", action="store_true", help="print each oracle grid")
    p.add_argument("--cache", type=Path, default=cache_dir("schedule_free_rate"))
    args = p.parse_args()
    if args.half == "check" and args.grids:
        p.error("--half check prints only the final numbers: leave out --grids")
    logging.getLogger("lrsearch").setLevel(logging.ERROR)
    only = {n.strip() for n in args.only.split(",") if n.strip()}
    setups = [s for s in split.select(SETUPS, args.half) if not only or s.name in only]
    with split.check_run(args.half, "bench_schedule_free_rate"):
        _run(setups, args)


def _run(setups, args) -> None:
    pretrain(args.cache)
    res = bench(setups, args)
    print(f"ScheduleFreeAdamW (beta 0.9, warmup {args.warmup:g} of the steps, no weight decay) at a "
          f"constant rate, evaluated at x; ratio = mean val accuracy over {args.seeds} seed(s) at the "
          f"rule's rate / the best of a 7-point grid (3e-4..0.3, half a decade apart).\n")
    report(args.half, res, args)
    if args.half == "fit":
        report_sgd(res)


if __name__ == "__main__":
    main()
