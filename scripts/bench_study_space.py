"""Does lrsearch's study reach the best peak? An equal-budget comparison on either half.

On one half (`scripts.split`: the fit half by default, the check half, all of it seen,
with `--half check`, which prints only the final numbers, no bounds, peaks or trials,
and appends them to `scripts/check_ledger.jsonl`) of the suggestion benchmark's setups (`scripts.setups.SETUPS`,
the same data, models, optimizers, batch sizes and run lengths), per seed, at the same
budget of `--trials` trials x the setup's epochs, no pruning, metric `val_accuracy`:

- `study`: `lrsearch.tune` with the bounds of a range test run with its defaults
  (`range_test(..., steps=None)`, the curve cached by `scripts.oracle`, seed `s` =
  that benchmark's seed `s`): what `auto` does without sweeps. Its space, first trial
  and widening at an edge are lrsearch's own (`lrsearch.study.space`, `lrsearch.study.backends.optuna_study`);
- `tpe`: a plain Optuna study (`TPESampler(seed=s)`, Optuna's defaults) over the same
  schedule families and parameters (`SearchSpace`) with every rate in `[1e-6, 10]`, the
  trials trained by the same code (`lrsearch.study.trial.configure_model`);
- the oracle: the one-cycle grid of `bench_suggestions` (`scripts.oracle`: 7 peaks half
  a decade apart, the setup's epochs, mean over `--oracle-seeds` initialisations),
  shared with that benchmark's cache.

A study's score is the validation accuracy of its best trial; ratio = score / the
oracle's best grid point, averaged over seeds. Targets on the half run: the study's
mean ratio >= 0.98 on every setup, and >= TPE's. Results are cached per (setup, seed,
arm) under `--cache` (the study arm keyed also by the code of the space and backend and
by the bounds it was given), so a rerun trains only what changed.

    python -m scripts.bench_study_space [--half fit|check] [--seeds 3] [--trials 8] [--oracle-seeds 2]
        [--only NAME,...] [--arms study,tpe] [--cache DIR] [--skip-oracle] [--details]

`--only` runs the named setups in the order given.

Prints a markdown table and one `target:` line per claim.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import statistics
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import optuna  # noqa: E402

import lrsearch  # noqa: E402
from lrsearch.data.fit_data import prepare_data  # noqa: E402
from lrsearch.core.errors import CurveError  # noqa: E402
from lrsearch.study.sampling import OptunaSampler  # noqa: E402
from lrsearch.study.space import SearchSpace  # noqa: E402
from lrsearch.study.trial import clear_keras_session, configure_model  # noqa: E402
from scripts import split  # noqa: E402
from scripts.common import cache_dir, code_tag, target_line  # noqa: E402
from scripts.oracle import Runner  # noqa: E402
from scripts.setups import SETUPS, Setup, grid, optimizer, pretrain  # noqa: E402

WIDE = (1e-6, 10.0)
ARMS = ("study", "tpe")
STUDY_CODE = ("study/space.py", "study/sampling.py", "study/backends/optuna_study.py")
"""The modules the study arm's cache is keyed by: its space, its sampling and its backend."""


class Arms:
    """The two searches on one setup, each result cached as JSON."""

    def __init__(self, setup: Setup, cache: Path, trials: int) -> None:
        self.s = setup
        self.cache_root = cache
        self.dir = cache / "study_space" / setup.name
        self.dir.mkdir(parents=True, exist_ok=True)
        self.trials = trials
        self.data = setup.data()

    def build(self) -> keras.Model:
        """A fresh compiled model (the caller seeds it)."""
        m = self.s.model(self.cache_root)
        m.compile(optimizer=optimizer(self.s.optimizer, 1e-3),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  jit_compile=False)
        return m

    def cached(self, key: str, fn) -> dict:
        path = self.dir / f"{key}.json"
        if path.exists():
            return json.loads(path.read_text())
        out = fn()
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(out, indent=1))
        tmp.replace(path)
        return out

    def study(self, seed: int, suggestion) -> dict:
        sug = suggestion
        bounds = f"{sug.base_lr:.4g}-{sug.max_lr:.4g}-{sug.min_loss_lr:.4g}"
        key = f"study_{seed}_{self.trials}_{code_tag(*STUDY_CODE)}_{bounds}"

        def run() -> dict:
            xtr, ytr, xva, yva = self.data
            with tempfile.TemporaryDirectory() as tmp:
                res = lrsearch.tune(
                    self.build, (xtr, ytr), validation_data=(xva, yva), suggestion=sug,
                    epochs=self.s.epochs, trials=self.trials, batch_size=self.s.batch,
                    metric="val_accuracy", pruner="none", seed=seed, out_dir=tmp,
                    study_name="bench", preflight=False)
                attrs = dict(res.study.user_attrs.get("lrsearch", {}))
            return _summary(res.trials, widened=attrs.get("widened", []),
                            space=attrs.get("space", {}))

        return self.cached(key, run)

    def tpe(self, seed: int) -> dict:
        key = f"tpe_{seed}_{self.trials}"

        def run() -> dict:
            xtr, ytr, xva, yva = self.data
            fit = prepare_data((xtr, ytr), (xva, yva), self.s.batch)
            space = SearchSpace(base_lr=WIDE[0], max_lr=WIDE[1],
                                steps_per_epoch=fit.steps_per_epoch, epochs=self.s.epochs,
                                momentum=self.s.optimizer != "rmsprop")

            def objective(trial: optuna.trial.Trial) -> float:
                setup = space.build(space.sample(OptunaSampler(trial)))
                keras.utils.set_random_seed(seed + trial.number)
                model = self.build()
                configure_model(model, setup)
                hist = model.fit(epochs=self.s.epochs, verbose=0, **fit.fit_kwargs)
                clear_keras_session()
                acc = float(hist.history["val_accuracy"][-1])
                loss = float(hist.history["loss"][-1])
                return acc if math.isfinite(loss) else 0.0

            study = optuna.create_study(direction="maximize",
                                        sampler=optuna.samplers.TPESampler(seed=seed))
            study.optimize(objective, n_trials=self.trials)
            return _summary(study.trials_dataframe(), widened=[], space=space.to_dict())

        return self.cached(key, run)


def _summary(frame, *, widened: list, space: dict) -> dict:
    """Best value, its trial's family and peak, every trial's rate parameters."""
    done = frame[frame["state"] == "COMPLETE"].copy()
    done["value"] = done["value"].fillna(0.0)
    rates = [c for c in frame.columns if c in ("params_oc_max_lr", "params_clr_max_lr")]
    best = done.loc[done["value"].idxmax()] if len(done) else None
    rows = [{k: (None if isinstance(v, float) and math.isnan(v) else v)
             for k, v in r.items()}
            for r in frame[["number", "value", "params_family", *rates]].to_dict("records")]
    return {
        "best": float(best["value"]) if best is not None else 0.0,
        "best_family": str(best["params_family"]) if best is not None else "",
        "best_rate": float(best["params_oc_max_lr"] if best["params_family"] == "one_cycle"
                           else best["params_clr_max_lr"]) if best is not None else float("nan"),
        "trials": rows,
        "widened": widened,
        "space": {k: space.get(k) for k in ("base_lr", "max_lr", "peak_max_lr")},
    }


def bench(setup: Setup, args) -> dict:
    runner = Runner(setup, args.cache, args.oracle_seeds)
    accs = {g: runner.acc(g) for g in grid(setup)} if not args.skip_oracle else {1.0: 1.0}
    best_peak = max(accs, key=accs.get)
    arms = Arms(setup, args.cache, args.trials)
    out = {"setup": setup, "oracle": accs[best_peak], "oracle_peak": best_peak, "runs": {}}
    for seed in range(args.seeds):
        row = {}
        if "study" in args.arms:
            try:
                sug = runner.range_test("lrsearch", seed).suggestion
                row["study"] = arms.study(seed, sug) | {"bounds": (sug.base_lr, sug.max_lr)}
            except CurveError as exc:  # lrsearch refused to read the curve: no study
                row["study"] = {"best": 0.0, "error": str(exc)}
        if "tpe" in args.arms:
            row["tpe"] = arms.tpe(seed)
        out["runs"][seed] = row
        print(f"<!-- {setup.name} seed {seed}: "
              + ", ".join(f"{k} {v['best']:.4f}" for k, v in row.items()) + " -->", flush=True)
    return out


def report(results: list[dict], args) -> None:
    if args.half == "check":
        return final_numbers(results, args)
    print(f"Budget per study: {args.trials} trials x the setup's epochs, no pruning, metric "
          f"`val_accuracy`; {args.seeds} seeds. Oracle: one-cycle (div 25, pct_start 0.3, "
          f"fixed momentum) at the best of 7 peaks half a decade apart, mean over "
          f"{args.oracle_seeds} initialisations. Cells: mean best val accuracy (ratio to "
          "the oracle).\n")
    print("| setup | optimizer, batch, epochs | oracle peak (acc) | study bounds (seed 0) | "
          "widened (seeds) | study best | TPE [1e-6, 10] best | study best peaks | "
          "TPE best peaks |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in results:
        s, runs = r["setup"], r["runs"]
        cells = {}
        for arm in ARMS:
            vals = [runs[sd][arm]["best"] for sd in runs if arm in runs[sd]]
            m = statistics.mean(vals) if vals else float("nan")
            r[f"{arm}_ratio"] = m / r["oracle"]
            cells[arm] = f"{m:.4f} ({m / r['oracle']:.3f})" if vals else "-"
        study = [runs[sd]["study"] for sd in runs if "study" in runs[sd]]
        b = study[0].get("bounds") if study else None
        sp = study[0].get("space", {}) if study else {}
        bounds = (f"{b[0]:.2g}-{b[1]:.2g}, peak <= {sp.get('peak_max_lr') or b[1]:.2g}"
                  if b else "-")
        widened = sum(bool(x.get("widened")) for x in study)
        peaks = {arm: ", ".join(_peak(runs[sd].get(arm)) for sd in runs) for arm in ARMS}
        print(f"| {s.name} | {s.optimizer}, {s.batch}, {s.epochs} | {r['oracle_peak']:.3g} "
              f"({r['oracle']:.4f}) | {bounds} | {widened}/{len(study)} | {cells['study']} | "
              f"{cells['tpe']} | {peaks['study']} | {peaks['tpe']} |")
    print()
    targets(results, args)


def final_numbers(results: list[dict], args) -> None:
    """The check half's table: oracle, study and TPE scores only (no bounds, peaks or trials)."""
    print(f"Budget per study: {args.trials} trials x the setup's epochs, no pruning; {args.seeds} seeds; "
          f"oracle over {args.oracle_seeds} initialisations. Cells: mean best val accuracy (ratio to the oracle).\n")
    print("| setup | oracle (acc) | study best | TPE [1e-6, 10] best |")
    print("|---|---|---|---|")
    for r in results:
        runs, cells = r["runs"], {}
        for arm in ARMS:
            vals = [runs[sd][arm]["best"] for sd in runs if arm in runs[sd]]
            m = statistics.mean(vals) if vals else float("nan")
            r[f"{arm}_ratio"] = m / r["oracle"]
            cells[arm] = f"{m:.4f} ({m / r['oracle']:.3f})" if vals else "-"
        print(f"| {r['setup'].name} | {r['oracle']:.4f} | {cells['study']} | {cells['tpe']} |")
    print()
    targets(results, args)


def targets(results: list[dict], args) -> None:
    if "study" in args.arms:
        for r in results:
            q = r["study_ratio"]
            print(target_line(f"{r['setup'].name}: study best {q:.3f} x oracle >= 0.98", q >= 0.98))
        if "tpe" in args.arms:
            for r in results:
                a, b = r["study_ratio"], r["tpe_ratio"]
                # to the fourth digit: equal accuracies summed in another order
                print(target_line(f"{r['setup'].name}: study {a:.3f} >= TPE [1e-6, 10] {b:.3f}",
                                  round(a, 4) >= round(b, 4)))
    print()


def details(results: list[dict]) -> None:
    """Every trial of every study: family, rate (peak or CLR top) and value, and where
    the study widened its range."""
    print("<details><summary>trials per study (family rate: val accuracy; widening)</summary>\n")
    for r in results:
        for sd, row in r["runs"].items():
            for arm, run in row.items():
                trials = ", ".join(
                    f"{'oc' if t['params_family'] == 'one_cycle' else 'clr'} "
                    f"{t.get('params_oc_max_lr') or t.get('params_clr_max_lr') or float('nan'):.2g}: "
                    f"{(t['value'] if t['value'] is not None else float('nan')):.3f}"
                    for t in run.get("trials", ()))
                wid = "; ".join(f"after {e['after_trials']}: {e['param']} {e['side']} "
                                f"{e['old'][1 if e['side'] == 'top' else 0]:.2g} -> "
                                f"{e['new'][1 if e['side'] == 'top' else 0]:.2g}"
                                for e in run.get("widened", ()))
                print(f"- {r['setup'].name} seed {sd} {arm}: {trials}"
                      + (f" (widened {wid})" if wid else ""))
    print("\n</details>\n")


def _peak(run: dict | None) -> str:
    if not run or "best_rate" not in run:
        return "-"
    fam = "oc" if run["best_family"] == "one_cycle" else "clr"
    return f"{fam} {run['best_rate']:.2g}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    split.add_half_argument(p)
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--trials", type=int, default=8)
    p.add_argument("--oracle-seeds", type=int, default=2)
    p.add_argument("--only", default="")
    p.add_argument("--arms", default="study,tpe")
    p.add_argument("--details", action="store_true", help="list every trial of every study")
    p.add_argument("--skip-oracle", action="store_true",
                   help="fill the arms' cache only (a second process beside a full run)")
    p.add_argument("--cache", type=Path, default=cache_dir("suggestions"))
    args = p.parse_args()
    if args.half == "check" and args.details:
        p.error("--half check prints only the final numbers: leave out --details")
    args.arms = tuple(a for a in ARMS if a in {x.strip() for x in args.arms.split(",")})
    logging.getLogger("lrsearch").setLevel(logging.ERROR)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    only = {n.strip() for n in args.only.split(",") if n.strip()}
    setups = [s for s in split.select(SETUPS, args.half) if not only or s.name in only]
    order = [n.strip() for n in args.only.split(",") if n.strip()]
    setups.sort(key=lambda s: order.index(s.name) if s.name in order else 0)
    with split.check_run(args.half, "bench_study_space"):
        pretrain(args.cache)
        results = [bench(s, args) for s in setups]
        report(results, args)
        if args.details:
            details(results)


if __name__ == "__main__":
    main()
