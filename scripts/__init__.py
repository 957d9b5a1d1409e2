"""lrsearch's benchmarks, run from the repository root as `python -m scripts.<name>`.

`python -m scripts.benchmarks` runs them all with small settings and writes
BENCHMARKS.md; each one prints markdown tables and a `target: ... met|MISSED` line per
claim it checks, and takes `--help`.

- `bench_range_test`: a range test against `model.fit` over the same batches;
- `bench_backends`: the same on TensorFlow, JAX and PyTorch, one process each;
- `bench_suggestions`: the suggested rates against a grid oracle, fastai and Lightning;
- `bench_study_space`: the bounded study against the grid oracle and a wide TPE;
- `bench_search_efficiency`: `auto` against the alternatives at an equal epoch budget;
- `bench_budget_suite`: `auto(budget=...)` against the alternatives on eight setups;
- `bench_race_horizon`: whether a short race picks a long run's peak;
- `bench_instrument`: the arms at equal budgets on eleven generated setups with 5,000
  validation samples each, paired seeds and bootstrap intervals (hours cold; cached);
- `compare_instrument_runs`: two cached runs of one instrument arm (before and after a
  change), paired by seed;
- `bench_trial_overhead`: a study trial against a bare `fit` of the same epochs;
- `bench_cli_startup`: how fast the command line answers;
- `bench_bounded_space`: a study inside the range test's bounds against the full range;
- `bench_scheduled_optimizers`: the cost of schedules evaluated inside the train step;
- `bench_schedule_free_rate`: the range-tested rate of Schedule-Free AdamW and SGD.

What several of them share: `common` (paths, caches, code hashes, tables and target
lines), `split` (the one fit / check split and the ledger of check runs,
`check_ledger.jsonl`), `setups` (data, models and the twelve setups), `oracle` (the
one-cycle grid and range-test curves, cached), `arms` (the epoch ledger and the search
arms' pieces), `budget_arms` (the equal-budget arms themselves), `cases` (the
equal-budget suite's eight cases), `instrument` (the instrument's eleven setups),
`stats` (paired bootstrap intervals and the oracle's grid) and `instrument_report`
(its tables). Other projects' code they compare with
lives in `references`.
"""
