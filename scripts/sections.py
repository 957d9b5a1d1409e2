"""The sections of BENCHMARKS.md: each benchmark's command, title and what it says.

`scripts.benchmarks` runs them in this order with these settings (small enough for the
whole run to take about 20-25 minutes on a 2-core CPU) and writes each section's
`about` above its tables; `miss_note` is shown under a section whose target is missed.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Bench:
    key: str
    title: str
    module: str  # under scripts/, run as `python -m scripts.<module>`
    args: tuple[str, ...]
    about: str
    miss_note: str = ""  # the likely cause, shown under the section when a target is missed


BENCHES = (
    Bench(
        "range_test",
        "1. Range-test cost",
        "bench_range_test",
        ("--steps", "300", "--repeats", "3"),
        "A range test against `model.fit` over the same batches, both from a freshly "
        "compiled model (tracing included); ratios of medians over alternating repeats. "
        "Target: ratio <= 1.05.",
    ),
    Bench(
        "suggestions",
        "2. Suggestion quality",
        "bench_suggestions",
        ("--seeds", "2", "--spread-seeds", "5", "--grids"),
        "Twelve setups (MLP, CNN with and without BatchNorm, residual CNN, GRU, LSTM, "
        "attention, fine-tuned pretrained models; SGD with momentum, Adam, AdamW, RMSprop; "
        "batch 16-512; 3-20 epochs), split once in the script into a fit half (the rule "
        "was chosen on it) and a check half (reported only). Ratio: mean validation "
        "accuracy of one-cycle at a rule's peak / the best of a 7-point grid of peaks at "
        "the same length. lrsearch's `max_lr` from `range_test` with its defaults, against "
        "fastai's valley, steep and minimum (fastai's own functions when "
        "`LRSEARCH_BENCH_FASTAI_PYTHON` names a Python with fastai and torch, the "
        "section says which ran) and Lightning's steepest gradient, each on its "
        "tool's own default test. Targets on the check half: median ratio >= 0.99, worst "
        ">= 0.97, above fastai's valley on every setup, `max_lr` spread over 5 range-test "
        "seeds <= 1.5x. Runs and curves are cached (`--cache`): a first run trains every "
        "grid point (about 40 minutes on a shared 2-core CPU), later runs only new peaks.",
        miss_note=(
            "Measured causes, per miss (this run: a cold rerun after the reading of the "
            "loss minimum was bounded to the floor of the wide running median, "
            "`analysis.FLOOR_BAND`). Median ratio (0.989, just under 0.99): the low ones are "
            "the large-batch Adam MLP (batch 512, 0.971): its range test covers 12 epochs in "
            "100 steps and its loss minimum (0.03-0.05) lies below the grid's best peak (0.1), "
            "so any margin below the minimum undershoots (fastai's `minimum`, 0.051, did "
            "better there); the residual CNN with AdamW (0.970) and the LSTM with RMSprop "
            "(0.984), one grid step from the best peak. Worst ratio (0.970, just under 0.97; "
            "0.992 in the previous run of the same rule): on resnet-adamw the oracle's best "
            "moved from 0.8322 to 0.8433 between the two runs and the accuracy at the "
            "suggested peak from 0.826 to 0.818 (its range test ran 300 steps in 2 rounds this "
            "time, 291 before; max_lr 0.00696 against 0.00655): two seeds of a 6-epoch "
            "residual CNN move by about 0.01 from run to run. Below fastai's valley on the "
            "LSTM (0.984 vs 0.991): the suggested 0.026 is 2.6x above the grid's best 0.01, "
            "the RMSprop curve's minimum lying further above its best peak than the fit "
            "half's RMSprop MLP showed. Spread (3.89x on resnet-adamw, 3.05x on "
            "mlp-adam-b512; 1.2-2.5x on most setups, both halves): over 5 seeds the descent "
            "of the curve is nearly the same, but where the loss blows up moves by up to 2x "
            "with the initialisation and batch order, the lowest point wanders along a flat "
            "floor, and seeds whose first round is noisy get a second, longer round whose "
            "minimum sits lower. Measured remedies that did not hold (docs/suggestions.md): "
            "other readings of the same curves (a sub-point minimum, the middle or edges of "
            "the region near the minimum, the rate where a fixed share of the drop is done, "
            "means of these) left the worst fit-half spread at 2.2-3.9x; a denser test (40 "
            "steps a decade, no rerun for noise) narrowed it on some setups (BatchNorm CNN "
            "1.33x) and widened it on others (attention + Adam 72x, where one seed solves the "
            "task within the longer test). The fine-tuned CNN's pretrained body is trained "
            "anew on each machine's cache, so its row differs from earlier runs."
        ),
    ),
    Bench(
        "study_space",
        "2b. Study against the grid oracle and a wide TPE, equal budget",
        "bench_study_space",
        ("--seeds", "3", "--trials", "8", "--details"),
        "On the check half of the suggestion benchmark's setups: `lrsearch.tune` inside "
        "the bounds of a default range test (what `auto` does without sweeps; one-cycle "
        "peaks up to the loss minimum, the suggested schedule as the first trial, ranges "
        "widened when the best trials sit at an edge) against a plain Optuna TPE over the "
        "same schedule families with every rate in [1e-6, 10], both 8 trials x the "
        "setup's epochs, no pruning, and against the one-cycle grid oracle of benchmark 2 "
        "at the same length. Targets per setup: the study's best >= 0.98 x the oracle, "
        "and >= TPE's. A study's best is the highest of 8 single-seed runs, picked on "
        "the validation set it is scored on, while the oracle is a mean over 2 "
        "initialisations: ratios above 1 are that selection, not a better schedule. "
        "Results are cached per setup, seed and arm (the minutes below are a cached "
        "rerun; a first run costs 48 trainings plus the oracle's 14 a setup, 20-40 "
        "minutes each on this shared 2-core machine).",
    ),
    Bench(
        "search_efficiency",
        "3. Search efficiency at an equal epoch budget",
        "bench_search_efficiency",
        ("--seeds", "3", "--epochs", "6", "--budget", "48", "--target", "0.98",
         "--default-epochs", "72", "--arms", "default,lrsearch,lrsearch-nosweeps,tpe-wide,kt-random"),
        "`lrsearch.auto` (range test, sweeps and study charged to the budget) against "
        "the optimizer's default constant rate, Optuna TPE over the same schedule "
        "parameters with rates in [1e-5, 10] instead of the range test's bounds, and "
        "KerasTuner RandomSearch over a constant rate in [1e-5, 10]. Targets: lrsearch "
        "reaches the target accuracy in at most a third of the epochs the default rate "
        "needs, and in fewer epochs than both unbounded searches.",
        miss_note=(
            "lrsearch gathers its evidence in batches, not epochs: a 160-step range test, "
            "then three momentum and three weight-decay range tests over the window around "
            "the descent (`lrsearch/pipeline.py`, `sweep_window`). On these data an epoch "
            "is only 45 steps, so this costs the epochs in the column 'range test + "
            "sweeps' before the first trial starts; a third of the default rate's epochs "
            "is less than the range test plus one trial, so the one-third target cannot be "
            "met on data this small whatever the study does. On data with a thousand or "
            "more steps per epoch the same evidence costs about one epoch. "
            "`lrsearch-nosweeps` shows the study without the sweeps. What remains within "
            "lrsearch: the median pruner stops many trials at half their epochs (compare "
            "the trials column with budget / epochs per trial), before a one-cycle trial "
            "ends where it is best; and the sweeps could be skipped, or given fewer values, "
            "when the budget is small against their cost."
        ),
    ),
    Bench(
        "budget",
        "3b. A budget handed to auto; schedule halving against median pruning",
        "bench_search_efficiency",
        ("--seeds", "3", "--epochs", "6", "--budget", "48", "--target", "0.98",
         "--default-epochs", "72", "--arms", "default,lrsearch-budget,lrsearch-halving"),
        "The setting of section 3 with the budget handed to `auto` (`budget=48`): "
        "`lrsearch-budget` lets the planner size the sweeps (at most a tenth of the budget) "
        "and the trials, with median pruning; `lrsearch-halving` does the same with "
        "`fidelity=\"schedule-halving\"` (one bracket of complete schedules at 1/4, 1/2 "
        "and all of the trial length, the best half promoted). Every batch is charged as "
        "in section 3. Same targets.",
        miss_note=(
            "The evidence alone (range test 3.56 epochs, sweeps shortened to 36 steps a "
            "test, 4.8 epochs) is 8.4 epochs, more than a third of the default rate's 21 "
            "(7.0): at 45 steps an epoch the target cannot be met, as in section 3. Against "
            "section 3's `lrsearch` (full sweeps, 12.8 epochs; target on 2 of 3 seeds, "
            "median 36.0 epochs) the planned sweeps and trials reach it on 3 of 3 seeds, "
            "median 26.4. Schedule halving reaches it later by construction (its full-length "
            "schedules run last, after 21 epochs of 3-epoch ones); what it buys is the best "
            "accuracy at the budget: 0.9861 on every seed against 0.9833-0.9861 with median "
            "pruning. That is one validation sample in 360, inside the seed-to-seed spread, "
            "so median pruning (`fidelity=\"truncate\"`) stays the default."
        ),
    ),
    Bench(
        "budget_suite",
        "3c. Equal budget on eight setups",
        "bench_budget_suite",
        ("--seeds", "3"),
        "Eight setups of section 2, each with a budget of four trial lengths that every "
        "method may spend, range tests and sweeps charged by their batches. Fit half (the "
        "short-budget planner's constants were chosen on it): digits MLP with SGD, LSTM with "
        "RMSprop, GRU with AdamW at batch 16, synthetic MLP with RMSprop at batch 10 (300 "
        "steps an epoch). Check half (reported only): digits CNN with BatchNorm and SGD, "
        "attention block with Adam at batch 32, fine-tuned MLP with SGD, synthetic MLP with "
        "Adam at batch 10 (300 steps an epoch); since the split is `scripts/split.py`'s, the "
        "LSTM with RMSprop is in the check half (it was labelled check in section 2: seen), "
        "and the command runs the fit half unless given `--half check`. "
        "`auto(budget=B)` (on budgets this short: a "
        "race of one-epoch one-cycle trials, then a final fit of the winner over three "
        "quarters of what the range test leaves) and `lrsearch-final` (the same with "
        "`final_epochs=B // 2` asked for: sweeps, and trials shortened until four fit) "
        "against the default constant rate, fastai's recipe (range test, fastai's `valley`, "
        "one `fit_one_cycle` run with its defaults; fastai's own function when "
        "`LRSEARCH_BENCH_FASTAI_PYTHON` names a Python with fastai), Optuna TPE over rates in "
        "[1e-5, 10], KerasTuner Hyperband over a constant rate in [1e-5, 10], and "
        "Schedule-Free AdamW at the reference's defaults and at a range-tested rate. Targets: "
        "lrsearch's best validation accuracy at the budget >= every other method's on >= 80% "
        "of the setups (each half); at >= 300 steps an epoch, the default rate's final "
        "accuracy within a third of its epochs. Cached per setup, arm and seed (the arms "
        "other than lrsearch's keyed on the code they run, so a change to the planner reruns "
        "only lrsearch's; a first run of every arm took about 40 minutes on this shared "
        "2-core machine).",
        miss_note=(
            "Measured causes (tables above; 3d). Before the short-budget race and final fit, "
            "`auto(budget=B)` cut these budgets into four 2-4 epoch trials from scratch and "
            "reached 0.9644 / 0.9183 / 0.8850 / 0.7960 on the fit half; now 0.9844 / 0.9350 / "
            "0.8925 / 0.8260, at or above the default rate on 7 of the 8 setups and best of "
            "all on mlp-rmsprop-b10 (and, with every arm at 1.0, attn-adam-b32). "
            "(1) Schedule-Free AdamW at a range-tested rate is best on five setups, by 1-12 "
            "validation samples of 224-1000 over lrsearch (mlp-sgd 0.9867 vs 0.9844, "
            "gru-adamw-b16 0.9050 vs 0.8925, cnn-bn-sgd 0.9911 vs 0.9867, finetune-mlp-sgd "
            "0.9911 vs 0.9821, mlp-adam-b10 0.8520 vs 0.8400): it swaps the setup's SGD, "
            "RMSprop or Adam for another optimizer, while `auto` searches schedules for the "
            "user's optimizer (the `schedule_free` family is not in its default race). "
            "(2) lstm-rmsprop wants a lower peak for a long run than a short race shows: the "
            "race's 1-2 epoch trials pick `max_lr` (3d: validation loss 0.2590 at x1 against "
            "0.3119 at x0.56 after one epoch) while the 9-epoch final fit does best at x0.32 "
            "(0.1388 against 0.1675 at x1); fastai's valley (0.010, half of `max_lr`) over 14 "
            "epochs gets 0.9517. On the other three fit setups x1 stays best at the final "
            "length, so no fixed correction helps: lowering the final fit's peak by (trial "
            "epochs / final epochs) ** 0.3 gave lstm-rmsprop 0.9467 but mlp-sgd 0.9756, "
            "gru-adamw-b16 0.8875 and mlp-rmsprop-b10 0.8110 (tried, reverted). (3) Evidence "
            "and the race take epochs the one-run arms train: the 160-step range test is "
            "2.1-3.7 epochs on the setups with 42-75 steps an epoch (fastai's is 100 steps) "
            "and the race 2-4 more, so the final fit trains 6-13 epochs against fastai's 9-18. "
            "(4) One-third target at 300 steps an epoch: the default's final accuracy is first "
            "reached after 6.5-8.5 (mlp-rmsprop-b10) and 7.5-9.5 epochs (mlp-adam-b10; one seed "
            "not within the budget) against 4: the range test and three one-epoch race trials "
            "(best 0.73-0.78) come first, and the final fit's one-cycle passes the default's "
            "accuracy only in its second half, where its rate comes down. "
            "(attn-adam-b32, seed 2: Schedule-Free's range test extended itself to 19.1 epochs, "
            "past the budget of 16, and has no accuracy; its median is over two seeds.)"
        ),
    ),
    Bench(
        "race_horizon",
        "3d. Can a short race pick a long run's peak",
        "bench_race_horizon",
        ("--seeds", "2"),
        "The fit half of 3c: one-cycle at `max_lr` x 1, x 0.56 and x 0.32 at the race's "
        "lengths (1-2 epochs), at 4 epochs and at the final fit's length, validation loss "
        "at the end (no target; context for the misses of 3c).",
    ),
    Bench(
        "instrument",
        "3e. Instrument: eleven generated setups, paired seeds, intervals",
        "bench_instrument",
        ("--seeds", "5", "--budgets", "4,12"),
        "Eleven setups generated in code (make_classification MLPs with Adam, RMSprop and "
        "SGD at batch 256; augmented 16x16 digits with a CNN, a BatchNorm CNN and a residual "
        "CNN; a GRU counting tokens and an LSTM finding the leading channel at batch 64-100; "
        "an attention block with Conv1D, MultiHeadAttention, LayerNorm, a GELU MLP and AdamW "
        "(weight decay 1e-2, batch 128); an MLP and a CNN pretrained on classes 0-4 and "
        "fine-tuned on 5-9), each with 5,000 validation samples and six with >= 200 steps an "
        "epoch; fit half 7 setups, check half 4 (`scripts/split.py`; the check half runs "
        "only with `--half check`). At budgets of 4 trial lengths (every setup) and 12 (four "
        "setups), every batch charged: the default constant rate, fastai's recipe with "
        "fastai's own `valley`, Optuna TPE over [1e-5, 10], KerasTuner Hyperband, "
        "Schedule-Free AdamW at its defaults and at a range-tested rate, Prodigy, and "
        "`auto(budget=B)`; and a one-cycle oracle on a quarter-decade grid of peaks, "
        "extended until the best is interior, over 3 seeds. Seeds are paired across arms "
        "(same initial weights and batch order); per setup and budget each arm's mean best "
        "validation accuracy and loss, and its paired difference to `auto` on the setup's "
        "score with a 95% BCa bootstrap interval over seeds (win or loss only when the "
        "interval leaves 0 out). Targets: auto loses to no arm; auto within 2% of the "
        "oracle; the arms more than 0.5% apart on every setup. Cached per (setup, budget, "
        "arm, seed) and the code each arm runs; a cold run takes hours on a shared 2-core "
        "machine (the section says how many).",
    ),
    Bench(
        "trial_overhead",
        "4. Per-trial overhead of the study harness",
        "bench_trial_overhead",
        ("--rounds", "4", "--epochs", "5", "--block", "4"),
        "Study trials against a bare `model.fit` of the same epochs (a fresh model, traced) "
        "run right after each trial: trials on the study's shared model (`reuse=True`, the "
        "default) and on a fresh model each (`reuse=False`, as before). Target: a trial "
        "costs at most 5% more than a bare fit.",
        miss_note=(
            "A trial on a fresh model pays the build, recompile and retrace a bare fit pays, "
            "plus the study's fixed cost (sampling, a SQLite write of the records after every "
            "epoch, the spec, the pruner report); a trial on the shared model pays only the "
            "latter, which is smaller than the trace it saves."
        ),
    ),
    Bench(
        "trial_overhead_long",
        "4b. Per-trial overhead, longer trials",
        "bench_trial_overhead",
        ("--samples", "4096", "--epochs", "8", "--rounds", "3", "--block", "3"),
        "The same with trials of 8 epochs x 128 steps. Target: at most 5% more than a bare fit.",
        miss_note=(
            "The same fixed cost as in 4, now a smaller share. Runs on this shared 2-core "
            "machine differ by about 10% from one another (compare the second row, the "
            "same training as the bare fit plus in-step schedules, with 1.0); the 'fastest "
            "of' line, where machine load cannot add time, is the better estimate."
        ),
    ),
    Bench(
        "cli_startup",
        "Extra: command-line start-up",
        "bench_cli_startup",
        ("--repeat", "5"),
        "`lrsearch --help`, `--version` and usage errors, each in a fresh interpreter: wall "
        "seconds and whether TensorFlow was imported, against the eager `import lrsearch` "
        "every answer paid before the console script deferred it. Target: under 1 s, no "
        "TensorFlow.",
    ),
    Bench(
        "bounded_space",
        "Extra: bounded against full-range study",
        "bench_bounded_space",
        ("--trials", "6", "--epochs", "3", "--seeds", "2"),
        "The same study inside the range test's bounds and over the whole tested range "
        "(no target; context for item 3).",
    ),
    Bench(
        "scheduled_optimizers",
        "Extra: cost of in-step schedules",
        "bench_scheduled_optimizers",
        ("--epochs", "3", "--repeats", "7"),
        "Milliseconds per step of rate / momentum / weight-decay schedules evaluated inside "
        "the train step against constants and a per-batch callback, and of the Schedule-Free "
        "optimizers against Keras' AdamW, with the operations in the graph of one optimizer "
        "step (TensorFlow; machine load does not move them). Target: the three schedules at "
        "most 1.1 x the constant-rate baseline's step.",
    ),
    Bench(
        "schedule_free_rate",
        "Extra: the range-tested rate of Schedule-Free AdamW",
        "bench_schedule_free_rate",
        ("--seeds", "1", "--grids"),
        "Schedule-Free AdamW at a constant rate on the twelve setups of item 2 (same fit / "
        "check split), evaluated at its averaged weights x: the rate lrsearch's range test "
        "gives it against a grid oracle of rates and the reference's default 0.0025, and "
        "the margins a Schedule-Free curve could be read with. Targets (check half): median "
        "ratio >= 0.99, worst >= 0.97, never behind the default. Trained results and curves "
        "are cached; a cold run took about 40 minutes on this shared machine.",
        miss_note=(
            "The worst case is resnet-adamw: Schedule-Free AdamW's best rate there sits just "
            "below a cliff (0.0316: 0.940, 0.1: diverged) and its range-test minimum (0.0074) "
            "lies 4x lower, where accuracy falls off steeply (0.01: 0.838); every rule read "
            "from a curve, and the default 0.0025 (0.704), missed it. One seed per rate."
        ),
    ),
    Bench(
        "finetune_groups",
        "Extra: fine-tuning with parameter groups against fastai's fine_tune",
        "bench_finetune_groups",
        ("--seeds", "5", "--epochs", "4"),
        "A small MLP pretrained on digits 0-4, fine-tuned on 300 images of digits 5-9 for 1 "
        "epoch with the backbone frozen and 4 with everything: `lrsearch.fine_tune` (a range "
        "test before each stage, the backbone at 0.1 of the head's rate) against fastai's "
        "`Learner.fine_tune` recipe transcribed from `fastai/callback/schedule.py` (fastai "
        "2.x; base_lr 2e-3, slice(base_lr / 200, base_lr / 2) after unfreezing), also at the "
        "rate `lr_find`'s valley suggests and at lrsearch's suggested max_lr; fastai's "
        "default optimizer (Adam, decoupled weight decay 0.01, beta_2 0.99, eps 1e-5) in "
        "every arm. Paired seeds, 95% bootstrap intervals of the mean paired difference "
        "(no target).",
    ),
)
