"""HTML tables of results: one number format for the notebook display and the run report.

`cell` turns a value into the text of a table cell (numbers to `DIGITS` significant
digits, whole numbers as they are, times to the second, anything missing blank);
`pairs_table` draws `name: value` rows and `frame_table` a DataFrame. A value wrapped in
`Html` goes into its cell as is (a link, a `<code>` span). Plain strings only: no
pandas, no matplotlib, so the bottom layers' `_repr_html_` can use it.

Styling is the caller's: a `cls` for a page with its own CSS (the report), inline
`style` / `cell_style` for Jupyter, which keeps only inline styles in untrusted output.
"""

from __future__ import annotations

import html
import math
import numbers
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

__all__ = ["DIGITS", "Html", "cell", "frame_table", "pairs_table", "table"]

DIGITS = 4
"""Significant digits of every non-whole number in a table."""

_MISSING = ("NAType", "NaTType")  # pandas' NA and NaT, recognised without importing pandas


class Html(str):
    """Text that is HTML already: `cell` leaves it unescaped."""


def cell(value: Any) -> str:
    """A value as escaped cell text: numbers to `DIGITS` significant digits, whole
    numbers whole, times to the second; None, NaN, inf, NA and NaT blank."""
    if isinstance(value, Html):
        return str(value)
    if value is None or type(value).__name__ in _MISSING:
        return ""
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return html.escape(str(value))
    if isinstance(value, numbers.Integral):
        return str(int(value))
    v = float(value)
    return f"{v:.{DIGITS}g}" if math.isfinite(v) else ""


def _attrs(cls: str | None, style: str | None) -> str:
    out = f' class="{html.escape(cls)}"' if cls else ""
    return out + (f' style="{html.escape(style)}"' if style else "")


def table(header: Sequence[Any] | None, rows: Iterable[Sequence[Any]], *, caption: str | None = None,
          cls: str | None = None, style: str | None = None, cell_style: str | None = None,
          highlight: int | None = None, row_headers: bool = False) -> str:
    """An HTML table.

    Args:
        header: the column names (None: no header row), as cells (an `Html` name as is).
        rows: the rows' values, each turned into text by `cell`.
        caption: a bold caption above the table.
        cls, style: the table's class and inline style.
        cell_style: an inline style for every `th` and `td`.
        highlight: the position of a row to mark with class `best`.
        row_headers: the first value of each row is a `th` (a name beside its value).
    """
    cs = _attrs(None, cell_style)
    out = [f"<table{_attrs(cls, style)}>"]
    if caption:
        out.append(f'<caption style="text-align:left"><b>{html.escape(caption)}</b></caption>')
    if header is not None:
        out.append("<thead><tr>" + "".join(f"<th{cs}>{cell(c)}</th>" for c in header)
                   + "</tr></thead>")
    out.append("<tbody>")
    for i, row in enumerate(rows):
        mark = ' class="best"' if highlight is not None and i == highlight else ""
        cells = [f"<th{cs}>{cell(v)}</th>" if row_headers and j == 0 else f"<td{cs}>{cell(v)}</td>"
                 for j, v in enumerate(row)]
        out.append(f"<tr{mark}>{''.join(cells)}</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def pairs_table(pairs: Iterable[tuple[str, Any]], **kwargs: Any) -> str:
    """`name | value` rows, the name a header cell (keywords as `table`'s)."""
    return table(None, pairs, row_headers=True, **kwargs)


def frame_table(frame: Any, *, max_rows: int | None = None, **kwargs: Any) -> str:
    """A DataFrame as a table, its columns the header (keywords as `table`'s); with
    `max_rows`, the first rows and a line saying how many more there are."""
    shown = frame if max_rows is None else frame.head(max_rows)
    out = table(list(shown.columns), shown.itertuples(index=False), **kwargs)
    more = len(frame) - len(shown)
    return out + (f'<p style="font-size:11px">{more} more rows</p>' if more > 0 else "")
