"""Turn any kind's events into what a person or a script sees while a job runs.

On a terminal: a rich progress bar (items, bytes, rate, ETA) on stderr. Elsewhere: a plain
progress line on stderr every few seconds. Neither for a kind whose own events say how far
it is (db's "progress"). With ``--json``: JSON Lines on stdout, one ``Event.to_dict()`` per
event worth reporting; the caller prints the summary record last. Lines are flushed as
they are written.
What an event reads as, and whether it is worth a line, is the kind's :class:`Lines`
(render/objects.py for objects; a new kind supplies its own).
"""

from __future__ import annotations

import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    ProgressColumn,
    Task,
    TaskID,
    TextColumn,
)
from rich.text import Text

from cloudshift.core.units import human_bytes
from cloudshift.jobs.events import Event
from cloudshift.render.jsonl import write_json

Clock = Callable[[], float]


@dataclass(frozen=True)
class Lines:
    """How one kind's events read as lines."""

    noun: str                               # the items, in the plain progress line: "objects"
    text: Callable[[Event], str | None]     # an event's line; None: it gets no line
    shown: Callable[[Event], bool]          # shown without --verbose (failures, dry runs)
    quiet: frozenset[str] = frozenset()     # types written to JSON only with --verbose
    every: Mapping[str, float] = field(default_factory=dict)  # at most one line per N s
    to_err: bool = False                    # plain lines on stderr (default: stdout)
    # The progress is counted from the items (a bar, or a plain line every few seconds);
    # False: the kind's own events say how far it is (db's "progress"), nothing is added.
    tallied: bool = True


class Tally:
    """What the progress shows, counted from the events every kind shares: ``planned``
    items and bytes, ``bytes`` moved, items finished, and whether the listing is complete.

    Not locked: the :class:`Reporter` calls it under its lock, and the bar's columns read
    single numbers only.
    """

    DONE = frozenset({"copied", "deleted", "failed"})

    def __init__(self) -> None:
        self.done = self.total = self.done_bytes = self.total_bytes = 0
        self.listed = False
        # Planned items not finished yet (at most the items in flight): one a worker finds
        # identical after all leaves the totals, or the ETA would wait for it forever.
        self._pending: dict[str, int] = {}

    def count(self, ev: Event) -> None:
        if ev.type == "bytes":
            self.done_bytes += ev.size
        elif ev.type == "planned":
            self.total += 1
            self.total_bytes += ev.size
            self._pending[ev.key] = ev.size
        elif ev.type in self.DONE:
            self.done += 1
            self._pending.pop(ev.key, None)
        elif ev.type == "skipped" and ev.key in self._pending:
            self.total -= 1
            self.total_bytes -= self._pending.pop(ev.key)
        elif ev.type == "verified":
            self.done += 1
            self.total = max(self.total, self.done)
        elif ev.type == "listed":
            self.listed = True


class RateMeter:
    """Bytes per second over the last ``WINDOW_S`` seconds, from samples of a running total.

    rich's own speed estimate cannot serve here: ``Progress.update`` forgets its samples
    whenever the task's total changes, and the total grows with every object the streamed
    listing plans, so its rate (and the ETA built on it) stayed unknown for a whole copy.
    """

    WINDOW_S = 10.0
    SAMPLE_EVERY_S = 0.1

    def __init__(self, clock: Clock) -> None:
        self._clock = clock
        self._lock = threading.Lock()   # taken alone, never while calling into rich
        # The run's start is the first sample: a rate is known from the first byte on.
        self._samples: deque[tuple[float, int]] = deque([(clock(), 0)])
        self._total = 0

    def add(self, total: int) -> None:
        now = self._clock()
        with self._lock:
            self._total = total
            if now - self._samples[-1][0] >= self.SAMPLE_EVERY_S:
                self._samples.append((now, total))

    def rate(self) -> float:
        """Measured up to now, not to the last sample, so a stalled transfer shows 0."""
        now = self._clock()
        with self._lock:
            # Keep the newest sample at or before the window's start as the base.
            while len(self._samples) > 1 and self._samples[1][0] <= now - self.WINDOW_S:
                self._samples.popleft()
            since, base = self._samples[0]
            return (self._total - base) / (now - since) if now > since else 0.0


class _RateColumn(ProgressColumn):
    def __init__(self, meter: RateMeter) -> None:
        super().__init__()
        self._meter = meter

    def render(self, task: Task) -> Text:
        return Text(f"{human_bytes(self._meter.rate())}/s", style="progress.data.speed")


class _EtaColumn(ProgressColumn):
    """Known once the listing is complete (before, the total still grows)."""

    UNKNOWN = "-:--:--"

    def __init__(self, meter: RateMeter, tally: Tally) -> None:
        super().__init__()
        self._meter, self._tally = meter, tally

    def render(self, task: Task) -> Text:
        return Text(self._eta(), style="progress.remaining")

    def _eta(self) -> str:
        if not self._tally.listed:
            return self.UNKNOWN
        remaining = max(self._tally.total_bytes - self._tally.done_bytes, 0)
        rate = self._meter.rate()
        if remaining and rate <= 0:
            return self.UNKNOWN
        seconds = int(remaining / rate + 0.999) if remaining else 0
        minutes, secs = divmod(seconds, 60)
        hours, minutes = divmod(minutes, 60)
        return f"{hours:d}:{minutes:02d}:{secs:02d}"


class Reporter:
    """An event sink for any kind, rendering with that kind's :class:`Lines`. Thread-safe:
    byte events arrive from workers."""

    PLAIN_EVERY_S = 5.0

    def __init__(self, lines: Lines, *, verb: str, json_lines: bool, verbose: bool,
                 progress: bool | None, out: TextIO | None = None, err: TextIO | None = None,
                 console: Console | None = None, clock: Clock = time.monotonic) -> None:
        self.lines = lines
        self.verb = verb
        self.json_lines = json_lines
        self.verbose = verbose
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.console = console or Console(file=self.err, highlight=False)
        self.tally = Tally()
        self._clock = clock
        self._meter = RateMeter(clock)
        self._lock = threading.Lock()
        self._last_plain = self._started = clock()
        self._last_line: dict[str, float] = {}
        want_bar = lines.tallied and (progress if progress is not None else self.err.isatty())
        self._bar: Progress | None = None
        self._task: TaskID | None = None
        if want_bar and not json_lines:
            self._bar = Progress(TextColumn("[bold]{task.description}"), BarColumn(),
                                 DownloadColumn(binary_units=True), _RateColumn(self._meter),
                                 _EtaColumn(self._meter, self.tally), console=self.console,
                                 transient=False, get_time=clock)
            self._task = self._bar.add_task(verb, total=None)

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
            self.tally.count(ev)
            if ev.type == "bytes":
                self._meter.add(self.tally.done_bytes)
            self._report(ev)
            self._refresh()

    def _report(self, ev: Event) -> None:
        text = self.lines.text(ev)
        if text is None or not self._due(ev):
            return
        if self.json_lines:
            if self.verbose or ev.type not in self.lines.quiet:
                write_json(ev.to_dict(), self.out)
                self.out.flush()
            return
        if not (self.verbose or self.lines.shown(ev)):
            return
        if self._bar is not None:
            self._bar.console.print(text, markup=False, highlight=False)
        else:
            # Flushed line by line: someone may be tailing a run that lasts for hours.
            stream = self.err if self.lines.to_err else self.out
            stream.write(text + "\n")
            stream.flush()

    def _due(self, ev: Event) -> bool:
        """Types the kind throttles (progress, lag) print at most once per their period."""
        every = self.lines.every.get(ev.type)
        if every is None:
            return True
        now = self._clock()
        last = self._last_line.get(ev.type)
        if last is not None and now - last < every:
            return False
        self._last_line[ev.type] = now
        return True

    def _refresh(self) -> None:
        t = self.tally
        if self._bar is not None and self._task is not None:
            self._bar.update(self._task, completed=t.done_bytes if t.total_bytes else 0,
                             total=t.total_bytes or None,
                             description=f"{self.verb} {t.done}/{t.total}")
            return
        if self.json_lines or not self.lines.tallied:
            return
        now = self._clock()
        if now - self._last_plain >= self.PLAIN_EVERY_S:
            self._last_plain = now
            rate = t.done_bytes / max(now - self._started, 1e-9)
            self.err.write(f"{self.verb}: {t.done}/{t.total} {self.lines.noun}, "
                           f"{human_bytes(t.done_bytes)}/{human_bytes(t.total_bytes)}, "
                           f"{human_bytes(rate)}/s\n")
            self.err.flush()
