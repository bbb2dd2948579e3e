"""What a person or a script sees of the PostgreSQL mover: its events while a copy or a
cutover runs, and the summaries of check, copy, verify, cutover and lag.

Events go to stderr as plain lines (steps, tables loaded, indexes built, progress, lag) or,
with ``--json``, to stdout as JSON Lines (``Event.to_dict()``); the summary record comes
last on stdout. Progress and lag come often (lag every 0.05 s while a cutover waits): they
are printed at most once per period of their type (:data:`DB_LINES`), in both forms, by the
one :class:`~cloudshift.render.progress.Reporter` a command makes for its whole run.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TextIO

from cloudshift.core.units import human_bytes
from cloudshift.jobs.events import Event
from cloudshift.jobs.results import JobResult
from cloudshift.render.jsonl import write_json
from cloudshift.render.progress import Clock, Lines, Reporter

if TYPE_CHECKING:
    from cloudshift.db.check import CheckReport
    from cloudshift.db.copy import CopyResult
    from cloudshift.db.follow import CutoverResult
    from cloudshift.db.verify import VerifyReport

TABLES_SHOWN = 20
NO_KEY_SHOWN = 10


def _line(stream: TextIO, text: str) -> None:
    # Flushed line by line: someone may be tailing a copy that runs for hours.
    stream.write(text + "\n")
    stream.flush()


def _json(stream: TextIO, record: Mapping[str, Any]) -> None:
    write_json(record, stream)
    stream.flush()


def _text_out(result: JobResult, json_lines: bool, out: TextIO | None) -> TextIO | None:
    """Where a summary's text goes; None once its record went out as a JSON line."""
    stream = out or sys.stdout
    if json_lines:
        _json(stream, result.to_dict())
        return None
    return stream


# --- events -------------------------------------------------------------------------------

def _step(ev: Event) -> str:
    count = ev.data.get("statements")
    return f"==> {ev.key}" + (f" ({count} statements)" if count is not None else "")


def _plan(ev: Event) -> str:
    d = ev.data
    return (f"    {d['tables']} tables in {d['chunks']} chunks, about "
            f"{human_bytes(d['est_bytes'])} on disk")


def _table(ev: Event) -> str:
    d = ev.data
    rate = d["bytes"] / d["seconds"] if d["seconds"] else 0.0
    return (f"    {ev.key}: {d['rows']} rows, {human_bytes(d['bytes'])} in "
            f"{d['seconds']:.1f}s ({human_bytes(rate)}/s, {d['chunks']} chunks)")


def _built(ev: Event) -> str:
    return f"    {str(ev.data['object']).lower()} {ev.key} built in {ev.data['seconds']:.1f}s"


def _progress(ev: Event) -> str:
    d = ev.data
    return (f"    copied {d['rows']} rows, {human_bytes(d['bytes'])} "
            f"({human_bytes(d['rate'])}/s, ETA {d['eta']:.0f}s)")


def _lag(ev: Event) -> str:
    return f"    replication lag: {ev.data.get('bytes')} bytes"


def _freeze(ev: Event) -> str:
    return (f"==> writes frozen on the source at {ev.data['at']} "
            f"({ev.data['sessions_ended']} sessions ended)")


TEXT: Mapping[str, Callable[[Event], str]] = {
    "step": _step, "plan": _plan, "table": _table, "built": _built, "progress": _progress,
    "lag": _lag, "freeze": _freeze,
}


def _text(ev: Event) -> str | None:
    line = TEXT.get(ev.type)
    return None if line is None else line(ev)


# Every line shown, on stderr; progress and lag at most once per period, in both forms. No
# bar and no counted progress line: the "progress" events are the copy's progress.
DB_LINES = Lines(noun="tables", text=_text, shown=lambda ev: True,
                 every={"progress": 2.0, "lag": 1.0}, to_err=True, tallied=False)


def reporter(verb: str, *, json_lines: bool, verbose: bool = False, out: TextIO | None = None,
             err: TextIO | None = None, clock: Clock = time.monotonic) -> Reporter:
    """The event sink of one ``db copy``, ``db cutover`` or db job's resume. Make one per
    run: the throttle lives in it."""
    return Reporter(DB_LINES, verb=verb, json_lines=json_lines, verbose=verbose,
                    progress=False, out=out, err=err, clock=clock)


# --- results ------------------------------------------------------------------------------

def print_check(rep: CheckReport, json_lines: bool, out: TextIO | None = None) -> None:
    out = _text_out(rep, json_lines, out)
    if out is None:
        return
    _line(out, f"source {rep.source} -> target {rep.target}")
    for t in rep.tables[:TABLES_SHOWN]:
        key = ",".join(t["primary_key"]) or "no primary key"
        _line(out, f"  {human_bytes(t['bytes']):>10}  ~{t['rows_estimate']:>10} rows  "
                   f"{t['table']}  ({key})")
    if len(rep.tables) > TABLES_SHOWN:
        _line(out, f"  ... and {len(rep.tables) - TABLES_SHOWN} more tables (see --json)")
    for f in rep.findings:
        line = f"{f.level.upper():8} {f.topic}: {f.message}"
        if f.fix and f.level != "info":
            line += f"\n         fix: {f.fix}"
        _line(out, line)
    verdict = "ready" if rep.ok else f"{len(rep.blockers)} blocker(s)"
    _line(out, f"check: {verdict}")


def print_copy(result: CopyResult, json_lines: bool, out: TextIO | None = None) -> None:
    out = _text_out(result, json_lines, out)
    if out is None:
        return
    rate = result.bytes / result.elapsed if result.elapsed else 0.0
    _line(out, f"db copy: {result.rows} rows, {human_bytes(result.bytes)} in "
               f"{result.elapsed:.1f}s ({human_bytes(rate)}/s)"
               + (" (resumed)" if result.resumed else ""))
    _line(out, "steps: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.steps.items()))
    if result.recopied:
        _line(out, "copied again in full (written to on the source since the first run): "
                   + ", ".join(result.recopied))
    for w in result.warnings:
        _line(out, f"warning: {w}")
    if result.follow:
        f = result.follow
        _line(out, f"following: subscription {f['subscription']} on the target streams from "
                   f"slot {f['slot']}; lag {f['lag_bytes']} bytes"
                   + (" (caught up)" if f["caught_up"] else ""))
        _line(out, "next: cloudshift db cutover SRC DST when you are ready to switch")
    _line(out, f"job: {result.job_id} (journal in {result.job_dir})")


def print_verify(report: VerifyReport, json_lines: bool, out: TextIO | None = None) -> None:
    out = _text_out(report, json_lines, out)
    if out is None:
        return
    rows = sum(t.rows_source for t in report.tables)
    by_hash = [t.table for t in report.tables if t.method == "count + table hash"]
    for line in report.lines():
        _line(out, line)
    bad = sum(1 for t in report.tables if not t.ok)
    verdict = "OK" if report.ok else "DIFFERENCES FOUND"
    views = (f"{len(report.matviews)} materialized views, "
             f"{sum(1 for m in report.matviews if not m.ok)} differ, " if report.matviews else "")
    _line(out, f"db verify {verdict}: {len(report.tables)} tables ({rows} rows), {bad} differ, "
               f"{views}{len(report.schema)} schema and {len(report.sequences)} sequence "
               f"differences in {report.elapsed:.1f}s")
    if by_hash:
        _line(out, f"note: {len(by_hash)} table(s) without a primary key compared by row "
                   "count and whole-table hash only: " + ", ".join(by_hash[:NO_KEY_SHOWN]))


def print_cutover(result: CutoverResult, json_lines: bool, out: TextIO | None = None) -> None:
    out = _text_out(result, json_lines, out)
    if out is None:
        return
    if not result.ok:
        for line in result.differences:
            _line(out, line)
        _line(out, "cutover ABORTED: the target differs from the source; writes on the "
                   "source are enabled again and replication keeps running")
        return
    _line(out, f"caught up {result.catch_up_seconds:.2f}s after the freeze; "
               f"{result.sequences} sequences copied; verify took {result.verify_seconds:.2f}s")
    _line(out, f"SWITCH NOW: the application may write to the target from {result.switch_at}")
    _line(out, f"write freeze on the source: {result.freeze_seconds:.2f}s (from "
               f"{result.freeze_started}); the source stays read-only")


def print_lag(info: Mapping[str, Any], json_lines: bool, out: TextIO | None = None) -> None:
    out = out or sys.stdout
    if json_lines:
        _json(out, info)
        return
    secs = "-" if info["seconds"] is None else f"{info['seconds']:.3f}s"
    n = info["apply_workers"]
    _line(out, f"lag: {info['bytes']} bytes, replay {secs} (subscription {info['subscription']}, "
               f"{n} apply worker{'' if n == 1 else 's'} running)")
