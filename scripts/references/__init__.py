"""Other projects' code the benchmarks compare lrsearch with.

- `fastai_anchor`: fastai's `valley`, `steep` and `minimum` suggestion rules, run as
  fastai's own functions in an interpreter with fastai (`LRSEARCH_BENCH_FASTAI_PYTHON`)
  or, without one, as a transcription of `fastai/callback/schedule.py`;
- `check_schedule_free_reference`: lrsearch's Schedule-Free AdamW and SGD against the
  `schedulefree` package over a longer run
  (`python -m scripts.references.check_schedule_free_reference`).
"""
