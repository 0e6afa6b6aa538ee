"""Paging: every item of a list endpoint, a page at a time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Generic, TypeVar

from . import _calls as c
from ._transport import SyncTransport

T = TypeVar("T", bound=Any)


class Pager(Generic[T]):
    """Every item of a list, newest first, fetched a page at a time as it is iterated."""

    def __init__(self, t: SyncTransport, cls: type[T], path: str, query: dict[str, Any]) -> None:
        self._t, self._cls, self._path, self._query = t, cls, path, query

    def first_page(self) -> tuple[list[T], bool]:
        """The first page's items and ``has_more``."""
        return self._t.run(c.page(self._cls, self._path, self._query))

    def __iter__(self) -> Iterator[T]:
        query = dict(self._query)
        while True:
            items, has_more = self._t.run(c.page(self._cls, self._path, query))
            yield from items
            if not has_more or not items:
                return
            query["starting_after"] = items[-1].id
