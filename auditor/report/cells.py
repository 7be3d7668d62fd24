"""The cells of a CSV for a spreadsheet, and its lines: what `findings.csv` and `auditor due
--format csv` write.

Cells that start with `=`, `+`, `-`, `@`, a tab or a carriage return are prefixed with `'`, so a
spreadsheet shows what a user typed instead of running it as a formula (OWASP "CSV injection").
A text a spreadsheet would read as a number, date, time or fraction (`looks_numeric`: only
digits and `.,:/%()$ eE+-` and the like) is written as the formula `="..."`, which Excel and
LibreOffice evaluate to that exact text: a msg_id like 200000070000025721 would otherwise become
2.00000070000026E+17, a card or ID number lose its last digits, a `007` its zeros, a `1/2` turn
into a date; so is a date written with an English month's name (`Jan-2026`, `3-Mar`,
`2026-Jan-05`), which Excel turns into a date too. Only such a text is ever wrapped, never one
holding a `"` or a letter other than an exponent's `e`, a month's name or `am`/`pm`, so no text
from the data is ever evaluated; a whole number (a line, an offset) stays a number unless it
has more than 15 digits, as many as a spreadsheet keeps. A text longer than a cell holds (32,767
characters) is cut, saying so.

The rows are what `csv.writer` writes with every cell quoted, built by `csv_line` with string
methods instead: the csv module copies a row character by character (about 16 ns each here),
which made writing the CSV the larger part of the serial tail of a big run.

A module of its own, importing nothing of the report: `due` writes its CSV without the report's
formats, whose package imports the page's Jinja2 (a tenth of a second of every daily call).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import orjson

FORMULA = ("=", "+", "-", "@", "\t", "\r")
# What a spreadsheet may read as a number, date, time, fraction, percentage or amount: digits
# with separators, signs, an exponent, brackets (an accounting minus) and currency signs. A text
# of only these (with a digit) is written as `="text"`; `"` is not among them, so the text can
# never end the formula's string. Excel takes at most 255 characters in a formula's string.
_NUMERIC = re.compile(r"[0-9 .,:/%+\-()eE$\u00a3\u00a5\u20ac]{1,255}")
# A date with an English month name, as a spreadsheet reads it: `Jan-2026`, `2026-Jan-05`,
# `3-Mar`, `5 January 2026 10:00 pm`: the name (short or whole) among digits, separators and a
# time. Only letters of the month's name and `am`/`pm` besides; never a `"`.
_MONTH = (
    "(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?"
    "|sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)"
)
_MONTH_DATE = re.compile(
    rf"[0-9 ,./\-:]{{0,40}}{_MONTH}\.?[0-9 ,./\-:]{{0,60}}(?:[ap]\.?m\.?)?", re.IGNORECASE
)
_DIGITS = frozenset("0123456789")
_NUMERIC_START = frozenset("0123456789 .,:/%()eE$\u00a3\u00a5\u20ac")
# the first characters of a text `spreadsheet_cell` looks at: it may start a formula, a number
# or a date
CHECKED_START = _NUMERIC_START | frozenset(FORMULA)
# and the first three of a month's name, lower case, for one that may start a date
MONTH_STARTS = frozenset(
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
)
# first characters of a text that needs a closer look: any other starts no formula, number,
# date nor month's name
LOOKED_AT = CHECKED_START | frozenset("jfmasondJFMASOND")
# The characters a spreadsheet cell holds (Excel's limit, in UTF-16 code units)
CELL_CHARS = 32_767
# The most significant digits a spreadsheet keeps of a number
_SPREADSHEET_DIGITS = 15
_ROUNDED = 10**_SPREADSHEET_DIGITS  # the first whole number a spreadsheet rounds


def looks_numeric(text: str) -> bool:
    """Whether a spreadsheet may read `text` as a number, date or time, and so show it other
    than it is. A text starting with a formula character is not: it gets a `'` instead."""
    return (
        text[:1] in _NUMERIC_START
        and _NUMERIC.fullmatch(text) is not None
        and not _DIGITS.isdisjoint(text)
    )


def _looks_like_a_month_date(text: str) -> bool:
    """Whether a spreadsheet may read `text` as a date written with a month's name."""
    return (
        len(text) <= 255
        and not _DIGITS.isdisjoint(text)
        and _MONTH_DATE.fullmatch(text) is not None
    )


def _fitted(text: str) -> str:
    """`text` cut to what a spreadsheet cell holds, saying so: Excel cuts a longer cell without
    a word (LibreOffice too, past its own limit), and a reviewer must not take the part for the
    whole. Excel counts UTF-16 code units, so a character outside the BMP counts twice."""
    if len(text) <= CELL_CHARS // 2:
        return text
    units = len(text.encode("utf-16-le")) // 2
    if units <= CELL_CHARS:
        return text
    note = f" [cut: {len(text):,} characters in all; the whole value is in findings.jsonl]"
    keep = CELL_CHARS - len(note) - 1  # one more for the `'` a formula character gets
    return text[:keep].encode("utf-16-le")[: keep * 2].decode("utf-16-le", "ignore") + note


def _as_text(text: str) -> str:
    """`text` (that `looks_numeric`) as the formula a spreadsheet evaluates to exactly it."""
    return f'="{text}"'


def spreadsheet_cell(value: Any) -> Any:
    """`value` as a cell of a CSV for a spreadsheet (see the module's docstring)."""
    if value is None:
        return ""
    if isinstance(value, str):
        if value.isdigit() and value.isascii() and len(value) <= 255:  # a msg_id: the most
            return f'="{value}"'
        if value.startswith(FORMULA):
            return "'" + _fitted(value)
        if looks_numeric(value) or _looks_like_a_month_date(value):
            return _as_text(value)
        return value if len(value) <= CELL_CHARS // 2 else _fitted(value)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return spreadsheet_cell(orjson.dumps(value, default=str).decode())
    if type(value) is int:
        return value if -_ROUNDED < value < _ROUNDED else f'="{value}"'
    text = repr(value)
    if sum(char in _DIGITS for char in text.partition("e")[0].lstrip("-0.")) > (
        _SPREADSHEET_DIGITS
    ):
        return _as_text(text)
    return value


def csv_line(cells: Sequence[str | int | float]) -> str:
    """One row as `csv.writer(..., quoting=csv.QUOTE_ALL).writerow(cells)` writes it: every cell
    in double quotes with its quotes doubled, CRLF at the end. Quoting every cell spares testing
    each for the characters that need it; spreadsheets and csv readers read the same values."""
    return (
        '"'
        + '","'.join(
            [
                (
                    cell if type(cell) is str else repr(cell) if type(cell) is float else str(cell)
                ).replace('"', '""')
                for cell in cells
            ]
        )
        + '"\r\n'
    )
