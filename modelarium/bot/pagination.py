"""Paging long lists with Next/Previous buttons instead of overflowing a chat message."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from modelarium.core.errors import UsageError
from modelarium.core.messages import Button

T = TypeVar("T")

PAGE_SIZE = 15


@dataclass(frozen=True)
class Page(Generic[T]):
    items: Sequence[T]
    number: int
    pages: int
    total: int

    @property
    def label(self) -> str:
        return f"page {self.number} of {self.pages} ({self.total} in all)"


def page_count(page: int | None, total: int, per_page: int = PAGE_SIZE) -> tuple[int, int]:
    """(page number, pages); a page past the last is an error saying how many there are, not
    silently the first or the last page."""
    pages = max(1, -(-total // per_page))
    number = max(1, page or 1)
    if number > pages:
        found = f"{total} result(s) fit on {pages} page(s)" if total else "there are no results"
        raise UsageError(f"there is no page {number}; {found}")
    return number, pages


def paginate(items: Sequence[T], page: int | None, per_page: int = PAGE_SIZE) -> Page[T]:
    total = len(items)
    number, pages = page_count(page, total, per_page)
    start = (number - 1) * per_page
    return Page(items[start : start + per_page], number, pages, total)


def page_buttons(page: Page[object], command: str) -> tuple[Button, ...]:
    """Buttons re-running ``command`` with ``--page N`` (the command must accept ``--page``)."""
    buttons = []
    if page.number > 1:
        buttons.append(Button("◀ Previous", f"{command} --page {page.number - 1}"))
    if page.number < page.pages:
        buttons.append(Button("Next ▶", f"{command} --page {page.number + 1}"))
    return tuple(buttons)
