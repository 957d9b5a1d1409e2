"""The range test and what is read from it: `curve` (smoothing and trimming a curve) and
`analysis` (the suggestion rules), pure NumPy/SciPy; `steppers` (one step a backend,
picked in `steppers.dispatch`), `result` (`RangeTestResult` and its file), `finder`
(`range_test` and its rounds), `sweeps` (one range test per momentum or weight-decay
value, ranked).
"""
