"""What a range test recorded, and its file: one row per optimizer step plus how it ran.

`RangeTestResult.save` writes the curve as CSV with its metadata in `<stem>.meta.json`
beside it (`lrsearch.core.fileio.write_table`); `load` reads both back, or a bare CSV
with `lr` and `loss` columns from any tool.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from lrsearch.core.errors import CurveError
from lrsearch.core.fileio import read_table, write_table
from lrsearch.data.files import read_csv
from lrsearch.rangetest.analysis import LRSuggestion, suggest
from lrsearch.rangetest.curve import smooth_loss

__all__ = ["COLUMNS", "FORMAT", "VERSION", "RangeTestResult"]

FORMAT = "lrsearch.range_test"
VERSION = 1
COLUMNS = ("step", "lr", "loss", "smooth_loss")


@dataclass
class RangeTestResult:
    """What a range test recorded: one row per optimizer step, plus how it ran.

    Attributes:
        frame: DataFrame with columns `step, lr, loss, smooth_loss` (+ `val_loss`):
            the rate of the step, the loss of that step's batch before the update, its
            debiased moving average, and the validation loss after the update.
        meta: how the test ran (`min_lr, max_lr, steps, mode, batch_size, smooth,
            diverge`) and how it ended (`stopped`: "completed", "diverged", "nan" or
            "interrupted").
    """

    frame: pd.DataFrame
    meta: dict[str, Any] = field(default_factory=dict)
    _suggestion: LRSuggestion | None = field(default=None, init=False, repr=False)

    @property
    def suggestion(self) -> LRSuggestion:
        """`lrsearch.suggest` on the recorded rates and raw losses (computed once), with
        the margin of the optimizer that ran the test.

        Raises:
            CurveError: the curve is too short to read anything from.
        """
        if self._suggestion is None:
            self._suggestion = suggest(
                self.frame["lr"].to_numpy(),
                self.frame["loss"].to_numpy(),
                diverge=float(self.meta.get("diverge") or 0.0),
                optimizer=self.meta.get("optimizer"),
            )
        return self._suggestion

    @property
    def stopped(self) -> str:
        """How the test ended: "completed", "diverged", "nan" or "interrupted"."""
        return str(self.meta.get("stopped", "completed"))

    def plot(self, ax: Any = None, **kwargs: Any) -> Any:
        """Loss against log-lr with the suggestions marked; returns the figure.

        See `lrsearch.viz.plots.plot_range_test` for the keyword arguments.
        """
        from lrsearch.viz.plots import plot_range_test

        return plot_range_test(self, ax=ax, **kwargs)

    def save(self, path: str | Path) -> Path:
        """Write the frame as CSV at `path` and `meta` (+ suggestion) as `<stem>.meta.json`.

        Returns:
            The CSV path.
        """
        meta = {"format": FORMAT, "version": VERSION, **self.meta}
        try:
            meta["suggestion"] = self.suggestion.to_dict()
        except CurveError as exc:
            meta["suggestion"] = None
            meta["suggestion_error"] = str(exc)
        return write_table(path, self.frame, meta)

    @classmethod
    def load(cls, path: str | Path) -> RangeTestResult:
        """Read a CSV written by `save` (its `.meta.json` is optional).

        A CSV from elsewhere needs `lr` and `loss` columns; `step` and `smooth_loss`
        are filled in when missing.

        Raises:
            DataError: the file is missing or not a CSV.
            CurveError: a needed column is missing.
        """
        frame, meta = read_table(path, lambda p: read_csv(p, "range-test file", ["lr", "loss"],
                                                          missing_error=CurveError, numeric=True))
        for key in ("format", "version", "suggestion", "suggestion_error"):
            meta.pop(key, None)
        if "step" not in frame.columns:
            frame.insert(0, "step", np.arange(len(frame)))
        if "smooth_loss" not in frame.columns:
            frame["smooth_loss"] = smooth_loss(frame["loss"].to_numpy(), meta.get("smooth", 0.98))
        return cls(frame=frame, meta=meta)

    def _repr_html_(self) -> str:
        from lrsearch.viz.notebook import range_test_html  # notebook display
        from lrsearch.viz.plots import png_tag
        return range_test_html(self, png_tag(self.plot))
