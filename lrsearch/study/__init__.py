"""Studies of schedules inside the range test's bounds: `options` and `space` (what is
searched), `trial` (one trial on any backend), `reuse` (trials without a rebuild),
`widening` and `halving`, `results` and `storage`, `budget` (what a run may spend),
`final_fit`, `preflight`, `digests` (what a study and a run's evidence were made
from), `backends` (Optuna, KerasTuner), and `tune` on top.
"""
