"""The range test and what is read from it: `analysis` (smoothing and the suggestion
rules, pure NumPy/SciPy), `steppers` (one step a backend, picked in `steppers.dispatch`),
`finder` (`range_test` and `RangeTestResult`), `sweeps` (one range test per momentum or
weight-decay value, ranked).
"""
