"""Streamed listings: include/exclude filters, order checks, and the merge-join of two sides.

Both listings arrive sorted by key, so comparing them is a single pass that holds one entry
of each side at a time (rclone calls this a "march"); memory does not grow with the number
of objects.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from typing import Generic, TypeVar

from wcmatch import glob

from cloudshift.core.errors import CloudshiftError
from cloudshift.storage.base import ObjectInfo, Store

_FLAGS = glob.GLOBSTAR | glob.DOTMATCH | glob.MATCHBASE | glob.BRACE

T = TypeVar("T")


class KeyFilter:
    """``--include`` / ``--exclude`` globs on keys relative to the root.

    ``*`` stays within one path segment, ``**`` crosses segments, and a pattern without ``/``
    matches the last segment at any depth (``*.jpg`` matches ``a/b/c.jpg``). A key passes
    when it matches an include (or there are none) and matches no exclude.
    """

    def __init__(self, include: Sequence[str] = (), exclude: Sequence[str] = ()) -> None:
        self.include = list(include)
        self.exclude = list(exclude)

    def __bool__(self) -> bool:
        return bool(self.include or self.exclude)

    def __call__(self, key: str) -> bool:
        if self.include and not glob.globmatch(key, self.include, flags=_FLAGS):
            return False
        return not (self.exclude and glob.globmatch(key, self.exclude, flags=_FLAGS))


def filtered(items: Iterable[ObjectInfo], keep: KeyFilter) -> Iterator[ObjectInfo]:
    if not keep:
        yield from items
        return
    for item in items:
        if keep(item.key):
            yield item


class ListingOrderError(CloudshiftError):
    """A backend broke the sorted-listing promise; comparing would give wrong answers."""


def ordered(items: Iterable[ObjectInfo], where: str) -> Iterator[ObjectInfo]:
    """Pass items through, failing loudly if keys are not strictly increasing."""
    last: str | None = None
    for item in items:
        if last is not None and item.key <= last:
            raise ListingOrderError(f"listing of {where} is not sorted ('{last}' came before "
                                    f"'{item.key}'); cannot compare safely")
        last = item.key
        yield item


def iter_pairs(src: Store, dst: Store, keep: KeyFilter
               ) -> Iterator[tuple[str, ObjectInfo | None, ObjectInfo | None]]:
    """Both stores' filtered, order-checked listings joined by key: what copy, sync and
    verify all walk."""
    return merge_join(ordered(filtered(src.list(), keep), src.uri),
                      ordered(filtered(dst.list(), keep), dst.uri))


def merge_join(left: Iterable[ObjectInfo], right: Iterable[ObjectInfo]
               ) -> Iterator[tuple[str, ObjectInfo | None, ObjectInfo | None]]:
    """Yield ``(key, left_or_None, right_or_None)`` for every key on either side, in order."""
    lit, rit = iter(left), iter(right)
    a = next(lit, None)
    b = next(rit, None)
    while a is not None or b is not None:
        if b is None or (a is not None and a.key < b.key):
            assert a is not None
            yield a.key, a, None
            a = next(lit, None)
        elif a is None or b.key < a.key:
            yield b.key, None, b
            b = next(rit, None)
        else:
            yield a.key, a, b
            a = next(lit, None)
            b = next(rit, None)


class SortedLookup(Generic[T]):
    """Look up keys in increasing order in a sorted ``(key, value)`` stream.

    Walks the journal alongside a listing: one sequential scan instead of one query per key.
    """

    def __init__(self, items: Iterable[tuple[str, T]]) -> None:
        self._it = iter(items)
        self._cur = next(self._it, None)

    def get(self, key: str) -> T | None:
        while self._cur is not None and self._cur[0] < key:
            self._cur = next(self._it, None)
        if self._cur is not None and self._cur[0] == key:
            return self._cur[1]
        return None
