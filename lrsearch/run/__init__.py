"""Whole runs: `auto` (range test -> sweeps -> study -> schedule.json -> report), its
budget books (`budgeted`), the evidence a rerun reuses (`evidence`), model files,
artifacts for the dashboard, the closing summary, the HTML report, and `quick`
(`fit_one_cycle`).
"""
