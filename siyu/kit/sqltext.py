"""Building SQL from user text: ``LIKE`` patterns that match what the user typed.

In a ``LIKE`` pattern ``%`` and ``_`` are wildcards: a search for ``100%`` or ``a_b`` built
as ``f"{q}%"`` would match far more than asked (and ``%`` alone every row, whatever the
other filters meant to narrow). :func:`like_prefix` and :func:`like_contains` escape
``\\``, ``%`` and ``_``; pass :data:`LIKE_ESCAPE` as the ``escape=`` of ``.like()`` /
``.ilike()`` (SQLite has no default escape character; PostgreSQL's is the same backslash).
"""

from __future__ import annotations

LIKE_ESCAPE = "\\"
# Largest value of a 64-bit signed integer column (SQLite INTEGER, PostgreSQL BIGINT):
# a larger number from a user never reaches the database (it would raise, not match).
MAX_DB_INT = 2**63 - 1


def escape_like(text: str) -> str:
    """``text`` with LIKE's wildcards and the escape character escaped."""
    return (text.replace(LIKE_ESCAPE, LIKE_ESCAPE * 2)
            .replace("%", LIKE_ESCAPE + "%").replace("_", LIKE_ESCAPE + "_"))


def like_prefix(text: str) -> str:
    """A pattern matching values that start with ``text`` literally."""
    return escape_like(text) + "%"


def like_contains(text: str) -> str:
    """A pattern matching values that contain ``text`` literally."""
    return "%" + escape_like(text) + "%"


def fits_db_int(value: int) -> bool:
    """Whether ``value`` can be compared with an integer column without an overflow."""
    return -MAX_DB_INT - 1 <= value <= MAX_DB_INT
