"""Page arithmetic for lists: which rows a page shows and how many pages there are."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageWindow:
    """Page ``page`` of ``pages`` over ``total`` rows: rows ``first``..``last`` (1-based,
    both 0 on an empty page) and the SQL ``offset``. A page past the end is empty; it is
    never described as rows that do not exist."""

    page: int
    pages: int
    total: int
    per_page: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.per_page

    @property
    def beyond_end(self) -> bool:
        return self.page > self.pages

    @property
    def first(self) -> int:
        return 0 if self.beyond_end or not self.total else self.offset + 1

    @property
    def last(self) -> int:
        return 0 if self.beyond_end else min(self.page * self.per_page, self.total)


def page_window(total: int, page: int, per_page: int) -> PageWindow:
    """The window of ``page`` (1-based) over ``total`` rows; at least one page exists."""
    pages = max(1, -(-total // per_page))
    return PageWindow(page=max(1, page), pages=pages, total=total, per_page=per_page)
