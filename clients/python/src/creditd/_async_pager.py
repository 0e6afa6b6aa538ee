"""Async paging: every item of a list endpoint, a page at a time."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, Generic, TypeVar

from . import _calls as c
from ._transport import AsyncTransport

T = TypeVar("T", bound=Any)


class AsyncPager(Generic[T]):
    """Every item of a list, newest first, fetched a page at a time as it is iterated."""

    def __init__(self, t: AsyncTransport, cls: type[T], path: str, query: dict[str, Any]) -> None:
        self._t, self._cls, self._path, self._query = t, cls, path, query

    async def first_page(self) -> tuple[list[T], bool]:
        """The first page's items and ``has_more``."""
        return await self._t.run(c.page(self._cls, self._path, self._query))

    async def __aiter__(self) -> AsyncIterator[T]:
        query = dict(self._query)
        while True:
            items, has_more = await self._t.run(c.page(self._cls, self._path, query))
            for item in items:
                yield item
            if not has_more or not items:
                return
            query["starting_after"] = items[-1].id
