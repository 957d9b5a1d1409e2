"""The arms of the equal-budget benchmarks on one case, and their cached ledgers.

`bench_budget_suite` and `bench_instrument` run the same arms (what each does is in
`bench_budget_suite`'s docstring; `prodigy` is `ProdigyAdam` at its defaults): each
returns a `scripts.arms.Ledger` of the epochs it spent, with validation accuracy and loss
after every epoch, every batch of range tests and sweeps charged. `cached` reads a
ledger from the cache or runs the arm and stores it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402

import lrsearch  # noqa: E402
from lrsearch.core.errors import CurveError  # noqa: E402
from lrsearch.optimizers import ProdigyAdam, ScheduleFreeAdamW, ScheduleFreeEval, rebuild  # noqa: E402
from lrsearch.schedules import OneCycle  # noqa: E402
from lrsearch.study.tune import tune  # noqa: E402
from scripts.arms import (  # noqa: E402
    Ledger, constant_rate_hypermodel, from_tune, top_up, wide_suggestion, without_tensorboard)
from scripts.cases import CaseData  # noqa: E402
from scripts.references import fastai_anchor  # noqa: E402

ARMS = ("default", "lrsearch", "lrsearch-final", "fastai", "tpe-wide", "kt-hyperband", "sf-default",
        "sf-rangetested", "prodigy")
"""Every arm `Arms.run` knows."""


class Arms(CaseData):
    """The arms on one case (`CaseData`: its data, a model builder at the optimizer's
    default rate). `run(arm, seed, out)` returns the arm's `Ledger`; every arm seeds
    Keras with `seed` before it builds a model, so the arms of one seed start from the
    same weights and see the batches in the same order."""

    def _fit(self, model: keras.Model, epochs: int, ledger: Ledger, callbacks=()) -> None:
        h = model.fit(*self.train, validation_data=self.val, epochs=epochs, batch_size=self.s.batch,
                      verbose=0, callbacks=list(callbacks))
        for acc, loss in zip(h.history["val_accuracy"], h.history["val_loss"]):
            ledger.epoch(float(acc), float(loss))
        keras.backend.clear_session()

    # ------------------------------------------------------------------ arms
    def default(self, seed: int) -> Ledger:
        keras.utils.set_random_seed(seed)
        led = Ledger(note=f"{self.s.optimizer} lr={self.default_lr:g}")
        self._fit(self.build(), self.case.budget, led)
        return led

    def lrsearch(self, seed: int, out: Path, final: int = 0) -> Ledger:
        keras.utils.set_random_seed(seed)
        res = lrsearch.auto(self.build, data=(self.train, self.val), epochs=self.case.trial_epochs,
                            budget=self.case.budget, out_dir=out, study_name="bench", seed=seed,
                            batch_size=self.s.batch, report=False, verbose=0,
                            final_epochs=final or None)
        spent, plan = res.budget.spent, res.budget.study_plan
        led = Ledger()
        led.charge((spent.range_steps + spent.sweep_steps) / self.spe)
        from_tune(res.tune, led)
        t = res.tune.trials
        pruned = int((t["state"] == "PRUNED").sum()) if "state" in t else 0
        best = res.tune.trials.sort_values("value").iloc[0] if len(t) else None
        rate = next((best[c] for c in ("params_oc_max_lr", "params_clr_max_lr") if best is not None
                     and c in best and best[c] == best[c]), float("nan"))
        led.note = (f"range test {spent.range_steps} + sweeps {spent.sweep_steps} steps; "
                    f"{plan.trials}x{plan.epochs} planned, {len(t)} run, {pruned} pruned; "
                    f"bounds {res.suggestion.base_lr:.2g}-{res.suggestion.max_lr:.2g}, best trial peak {rate:.2g}")
        if res.final is not None:  # asked for, or the planner's on a short budget
            hist = res.final.history
            for acc, loss in zip(hist["val_accuracy"], hist.get("val_loss", [None] * len(hist["val_accuracy"]))):
                led.epoch(float(acc), None if loss is None else float(loss))
            led.note += f"; final fit {res.final.epochs} epochs"
        return led

    def lrsearch_final(self, seed: int, out: Path) -> Ledger:
        """`lrsearch` with half the budget kept for a final fit of the chosen schedule."""
        return self.lrsearch(seed, out, final=self.case.budget // 2)

    def fastai(self, seed: int) -> Ledger:
        keras.utils.set_random_seed(seed)
        rt = lrsearch.range_test(self.build(), self.train, min_lr=fastai_anchor.MIN_LR,
                                 max_lr=fastai_anchor.MAX_LR, steps=fastai_anchor.NUM_IT,
                                 batch_size=self.s.batch, verbose=0)
        keras.backend.clear_session()
        valley = fastai_anchor.suggestions(rt.frame["lr"].to_numpy(), rt.frame["loss"].to_numpy())["valley"]
        led = Ledger()
        led.charge(len(rt.frame) / self.spe)
        epochs = int(self.case.budget - led.overhead + 1e-9)
        sched = OneCycle(valley, epochs * self.spe, pct_start=0.25, div_factor=25.0,
                         final_div_factor=1e5 / 25.0, cycle_momentum=True, base_momentum=0.85,
                         max_momentum=0.95)
        keras.utils.set_random_seed(seed)
        model = self.build()
        cycled = self.s.optimizer != "rmsprop"
        opt = rebuild(model.optimizer, learning_rate=sched,
                      momentum=sched.momentum_schedule() if cycled else None)
        model.compile(optimizer=opt, loss=model.loss, metrics=["accuracy"], jit_compile=False)
        self._fit(model, epochs, led)
        led.note = (f"valley {valley:.2g} ({len(rt.frame)} steps), one-cycle {epochs} epochs"
                    + ("" if cycled else ", no momentum"))
        return led

    def tpe_wide(self, seed: int, out: Path) -> Ledger:
        keras.utils.set_random_seed(seed)
        wide = wide_suggestion()

        def call(trials: int):
            return tune(self.build, self.train, validation_data=self.val, suggestion=wide,
                        epochs=self.case.trial_epochs, trials=trials, batch_size=self.s.batch,
                        out_dir=out, study_name="bench", seed=seed)

        res = top_up(call, self.case.budget, 0.0, self.case.trial_epochs)
        led = Ledger()
        from_tune(res, led)
        t = res.trials
        pruned = int((t["state"] == "PRUNED").sum()) if "state" in t else 0
        led.note = f"{len(t)} trials, {pruned} pruned"
        return led

    def kt_hyperband(self, seed: int, out: Path) -> Ledger:
        import keras_tuner
        from keras_tuner.src.engine import trial as kt_trial

        budget = self.case.budget
        sink: list[tuple[float, float]] = []

        class Sink(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                logs = logs or {}
                sink.append((float(logs.get("val_accuracy", float("nan"))),
                             float(logs.get("val_loss", float("nan")))))
                if len(sink) >= budget:
                    self.model.stop_training = True

        hypermodel = constant_rate_hypermodel(self.build, seed, jit_compile=False)
        tuner = without_tensorboard(keras_tuner.Hyperband)(
            hypermodel, objective="val_accuracy", max_epochs=self.case.trial_epochs, factor=3,
            hyperband_iterations=1000, seed=seed, directory=str(out), project_name="bench",
            overwrite=True)
        create = tuner.oracle.create_trial
        trials = [0]

        def create_trial(tuner_id):
            if len(sink) >= budget:
                return kt_trial.Trial(tuner.oracle.get_space(), status=kt_trial.TrialStatus.STOPPED)
            trials[0] += 1
            return create(tuner_id)

        tuner.oracle.create_trial = create_trial
        tuner.search(*self.train, validation_data=self.val, batch_size=self.s.batch,
                     callbacks=[Sink()], verbose=0)
        keras.backend.clear_session()
        led = Ledger(trials=trials[0], note=f"{trials[0]} trials")
        for acc, loss in sink[:budget]:
            led.epoch(acc, loss)
        return led

    def _sf_model(self, lr: float, warmup: int) -> keras.Model:
        model = self.build()
        model.compile(optimizer=ScheduleFreeAdamW(lr, warmup_steps=warmup), loss=model.loss,
                      metrics=["accuracy"], jit_compile=False)
        return model

    def sf_default(self, seed: int) -> Ledger:
        keras.utils.set_random_seed(seed)
        led = Ledger(note="lr 0.0025, no warmup")
        self._fit(self._sf_model(0.0025, 0), self.case.budget, led, [ScheduleFreeEval()])
        return led

    def sf_rangetested(self, seed: int) -> Ledger:
        keras.utils.set_random_seed(seed)
        rt = lrsearch.range_test(self._sf_model(0.0025, 0), self.train, batch_size=self.s.batch, verbose=0)
        keras.backend.clear_session()
        led = Ledger()
        led.charge(len(rt.frame) / self.spe)
        try:
            lr, how = float(rt.suggestion.max_lr), "max_lr"
        except CurveError:
            lr, how = 0.0025, "curve unreadable, default"
        epochs = max(0, int(self.case.budget - led.overhead + 1e-9))
        warmup = int(0.05 * epochs * self.spe)
        if epochs:  # a range test that extended itself may leave nothing of the budget
            keras.utils.set_random_seed(seed)
            self._fit(self._sf_model(lr, warmup), epochs, led, [ScheduleFreeEval()])
        led.note = f"{how} {lr:.2g} ({len(rt.frame)} steps), {epochs} epochs, warmup {warmup}"
        return led

    def prodigy(self, seed: int) -> Ledger:
        """`lrsearch.optimizers.ProdigyAdam` at its defaults (rate 1.0: the step size is its
        own estimate; the setup's weight decay where the setup's optimizer has one), all
        `B` epochs, constant."""
        keras.utils.set_random_seed(seed)
        model = self.build()
        wd = getattr(model.optimizer, "weight_decay", None)
        model.compile(optimizer=ProdigyAdam(weight_decay=wd or None), loss=model.loss,
                      metrics=["accuracy"], jit_compile=False)
        led = Ledger(note=f"d_coef 1, weight decay {wd or 0:g}")
        self._fit(model, self.case.budget, led)
        return led

    def run(self, arm: str, seed: int, out: Path) -> Ledger:
        """Arm `arm` (a name of `ARMS`) on seed `seed`; `out` is a scratch folder."""
        if arm in ("lrsearch", "lrsearch-final", "tpe-wide", "kt-hyperband"):
            return getattr(self, arm.replace("-", "_"))(seed, out)
        return getattr(self, arm.replace("-", "_"))(seed)


# ---------------------------------------------------------------------------- cache


def cached(path: Path, make) -> tuple[Ledger, float, bool]:
    """(ledger, seconds it took, whether it came from the cache)."""
    if path.exists():
        led, d = Ledger.load(path)
        return led, d["seconds"], True
    began = time.perf_counter()
    led = make()
    seconds = time.perf_counter() - began
    led.save(path, seconds=seconds)
    return led, seconds, False
