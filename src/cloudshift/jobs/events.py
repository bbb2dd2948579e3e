"""One event type for every kind of move, with a fixed vocabulary and one JSON shape.

A kind emits :class:`Event`\\ s while it runs; the render layer turns them into a progress bar,
plain lines or JSON Lines, and the Python API passes them to any ``on_event`` callback.
Every JSON line has a ``type`` key from :data:`EVENT_TYPES`; ``key`` names the item (an
object key, a table, an image reference...), and what only one kind reports sits beside them
(``data``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

EventType = Literal[
    # an item's life, for every kind
    "listed",        # the listing is complete (size = how many items)
    "planned",       # an item will be moved (size = its bytes)
    "bytes",         # bytes moved (size), from any worker; for progress only
    "copied",        # an item moved and checked (level = how it was verified)
    "skipped",       # already identical at the destination
    "deleted",       # removed from the destination (sync --delete)
    "failed",        # could not be moved (reason)
    "would-copy",    # dry run
    "would-delete",  # dry run
    "verified",      # compared by verify (level, reason = what differs)
    # steps of a pipeline
    "step",          # a named step starts (key = its name)
    "plan",          # what a step will do (data: counts and estimates)
    "progress",      # totals so far (data: rows, bytes, rate, eta...)
    "table",         # a database table is in (key = schema.table)
    "built",         # an index or constraint is built (key = its name)
    "lag",           # replication lag (data: bytes, seconds)
    "freeze",        # writes frozen on the source at cutover
]
EVENT_TYPES: frozenset[str] = frozenset(get_args(EventType))
LEVELS = ("checksum", "size", "none")


@dataclass(frozen=True, slots=True)
class Event:
    """One thing that happened. ``bytes`` events come from worker threads, so sinks must be
    thread-safe."""

    type: EventType
    key: str = ""
    size: int = 0
    level: str | None = None
    reason: str | None = None
    data: Mapping[str, Any] = field(default_factory=dict)

    @property
    def kind(self) -> str:
        """The 0.1 name of :attr:`type` (``on_event`` callbacks of 0.1 read ``ev.kind``)."""
        return self.type

    def to_dict(self) -> dict[str, Any]:
        """The JSON Lines record: ``type`` first, then what is set, then the kind's data."""
        record: dict[str, Any] = {"type": self.type}
        if self.key:
            record["key"] = self.key
        if self.size:
            record["size"] = self.size
        if self.level:
            record["level"] = self.level
        if self.reason:
            record["reason"] = self.reason
        record.update(self.data)
        return record


EventSink = Callable[[Event], None]


def event(type_: EventType, key: str = "", **data: Any) -> Event:
    """An event with kind-specific facts as keyword arguments (``event("table", name,
    rows=3)``)."""
    return Event(type_, key, data=data)
