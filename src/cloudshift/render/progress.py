"""Turn engine events into what a person or a script sees.

On a terminal: a rich progress bar (objects, bytes, rate, ETA) on stderr. Elsewhere: a plain
progress line on stderr every few seconds. With ``--json``: JSON Lines on stdout, one per
object worth reporting, the summary last.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from types import TracebackType
from typing import Any, TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from cloudshift.core.units import human_bytes
from cloudshift.jobs.events import Event


class Reporter:
    """An event sink for copy/sync/verify. Thread-safe: byte events arrive from workers."""

    PLAIN_EVERY_S = 5.0

    def __init__(self, *, verb: str, json_lines: bool, verbose: bool, progress: bool | None,
                 out: TextIO | None = None, err: TextIO | None = None) -> None:
        self.verb = verb
        self.json_lines = json_lines
        self.verbose = verbose
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.console = Console(file=self.err, highlight=False)
        want_bar = progress if progress is not None else self.err.isatty()
        self._lock = threading.Lock()
        self._bar: Progress | None = None
        self._objects: TaskID | None = None
        self._bytes: TaskID | None = None
        self.done_objects = 0
        self.total_objects = 0
        self.done_bytes = 0
        self.total_bytes = 0
        self._last_plain = time.monotonic()
        self._started = time.monotonic()
        if want_bar and not json_lines:
            self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                 DownloadColumn(binary_units=True),
                                 TransferSpeedColumn(), TimeRemainingColumn(),
                                 console=self.console, transient=False)
            self._objects = self._bar.add_task(verb, total=None)

    def __enter__(self) -> Reporter:
        if self._bar is not None:
            self._bar.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._bar is not None:
            self._bar.stop()

    # --- the sink -------------------------------------------------------------------------
    def __call__(self, ev: Event) -> None:
        with self._lock:
            self._handle(ev)

    def _handle(self, ev: Event) -> None:
        if ev.type == "bytes":
            self.done_bytes += ev.size
        elif ev.type == "planned":
            self.total_objects += 1
            self.total_bytes += ev.size
        elif ev.type in ("copied", "deleted"):
            self.done_objects += 1
            self._line(ev)
        elif ev.type == "skipped":
            self._line(ev)
        elif ev.type == "failed":
            self.done_objects += 1
            self._line(ev, always=True)
        elif ev.type in ("would-copy", "would-delete"):
            self._line(ev, always=True)
        elif ev.type == "verified":
            self.done_objects += 1
            self.total_objects = max(self.total_objects, self.done_objects)
            self._line(ev, always=ev.reason is not None)
        self._refresh()

    def _line(self, ev: Event, always: bool = False) -> None:
        if self.json_lines:
            if ev.type == "skipped" and not self.verbose:
                return
            record: dict[str, Any] = {"type": ev.type, "key": ev.key}
            if ev.size:
                record["size"] = ev.size
            if ev.level:
                record["level"] = ev.level
            if ev.reason:
                record["reason"] = ev.reason
            self.out.write(json.dumps(record, ensure_ascii=False) + "\n")
            return
        if not (always or self.verbose):
            return
        text = {
            "copied": f"copied   {ev.key} ({human_bytes(ev.size)}, verified by {ev.level})",
            "skipped": f"same     {ev.key}",
            "deleted": f"deleted  {ev.key}",
            "failed": f"FAILED   {ev.key}: {ev.reason}",
            "would-copy": f"would copy   {ev.key} ({human_bytes(ev.size)})",
            "would-delete": f"would delete {ev.key}",
            "verified": _verified_line(ev),
        }.get(ev.type, f"{ev.type} {ev.key}")
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False)
        else:
            self.out.write(text + "\n")

    def _refresh(self) -> None:
        if self._bar is not None and self._objects is not None:
            self._bar.update(self._objects, completed=self.done_bytes if self.total_bytes else 0,
                             total=self.total_bytes or None,
                             description=f"{self.verb} {self.done_objects}/{self.total_objects}")
            return
        if self.json_lines:
            return
        now = time.monotonic()
        if now - self._last_plain >= self.PLAIN_EVERY_S:
            self._last_plain = now
            rate = self.done_bytes / max(now - self._started, 1e-9)
            self.err.write(f"{self.verb}: {self.done_objects}/{self.total_objects} objects, "
                           f"{human_bytes(self.done_bytes)}/{human_bytes(self.total_bytes)}, "
                           f"{human_bytes(rate)}/s\n")
            self.err.flush()


def _verified_line(ev: Event) -> str:
    status, _, detail = (ev.reason or "match").partition(": ")
    return f"{status.upper():<9}{ev.key} [{ev.level}]" + (f" {detail}" if detail else "")
