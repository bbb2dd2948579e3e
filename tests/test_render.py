"""The render layer: the progress bar on a terminal (its rate and ETA columns), plain lines,
JSON Lines, the summaries of the object mover and the db mover's lines, fed real events and
results."""

from __future__ import annotations

import json
import os
import re
import threading
from collections import Counter
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from cloudshift.jobs.events import Event, event
from cloudshift.render.db import DB_LINES
from cloudshift.render.db import reporter as db_reporter
from cloudshift.render.objects import OBJECT_LINES, print_transfer, print_verify
from cloudshift.render.progress import Lines, RateMeter, Reporter
from cloudshift.transfer.results import Failure, TransferResult, VerifiedObject, VerifyResult

MiB = 1024 * 1024
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


class Clock:
    """The time the reporter and its bar read; the test moves it."""

    def __init__(self) -> None:
        self.now = 5000.0

    def __call__(self) -> float:
        return self.now


def last_frame(terminal: StringIO, verb: str) -> str:
    """The bar as the terminal shows it at the end: the last line drawn with the verb."""
    text = ANSI.sub("", terminal.getvalue())
    frames = [line for line in re.split(r"[\r\n]", text) if line.startswith(verb)]
    assert frames, text
    return frames[-1]


def bar(clock: Clock) -> tuple[Reporter, StringIO]:
    terminal = StringIO()
    console = Console(file=terminal, force_terminal=True, width=120, color_system=None)
    return Reporter(OBJECT_LINES, verb="copy", json_lines=False, verbose=False, progress=True,
                    err=terminal, out=StringIO(), console=console, clock=clock), terminal


def stream_copy(reporter: Reporter, clock: Clock, seconds: int, listed: bool) -> None:
    """A copy as the engine reports it: the listing plans 2 MiB objects while workers move
    bytes (1 MiB a second here), so the total grows all along; then, maybe, ``listed``."""
    for i in range(seconds):
        reporter(Event("planned", f"photos/{i:03d}.jpg", 2 * MiB))
        clock.now += 0.5
        reporter(Event("bytes", size=MiB // 2))
        clock.now += 0.5
        reporter(Event("bytes", size=MiB // 2))
        if i % 2:
            reporter(Event("copied", f"photos/{i - 1:03d}.jpg", 2 * MiB, level="checksum"))
    if listed:
        reporter(Event("listed", size=seconds))


@pytest.mark.parametrize("listed", [False, True])
def test_bar_shows_a_rate_always_and_an_eta_once_listed(listed: bool) -> None:
    clock = Clock()
    reporter, terminal = bar(clock)
    with reporter:
        stream_copy(reporter, clock, seconds=8, listed=listed)
    frame = last_frame(terminal, "copy")
    moved, planned = 8 * MiB, 16 * MiB
    rate = moved / 8                                   # bytes over the whole 8 s so far
    assert "copy 4/8" in frame
    assert "8.0/16.0 MiB" in frame
    assert f"{rate / MiB:.1f} MiB/s" in frame, frame
    assert "?" not in frame
    if listed:
        eta = int((planned - moved) / rate)
        assert f"0:00:{eta:02d}" in frame, frame
        assert "-:--:--" not in frame
    else:
        assert frame.rstrip().endswith("-:--:--"), frame


def test_rate_follows_the_last_seconds_and_falls_when_bytes_stop() -> None:
    clock = Clock()
    meter = RateMeter(clock)
    assert meter.rate() == 0.0                         # known, and zero, before any byte
    moved = 0
    for _ in range(30):                                # 30 s at 1 MiB/s
        clock.now += 1
        moved += MiB
        meter.add(moved)
    for _ in range(20):                                # then 20 s at 4 MiB/s
        clock.now += 1
        moved += 4 * MiB
        meter.add(moved)
    # Only the window's seconds count: the slow start no longer drags the rate down.
    assert meter.rate() == pytest.approx(4 * MiB)
    clock.now += RateMeter.WINDOW_S + 1                # a stall longer than the window
    assert meter.rate() == 0.0


def test_an_object_a_worker_finds_identical_leaves_the_totals() -> None:
    clock = Clock()
    reporter, _ = bar(clock)
    reporter(Event("planned", "a", 3 * MiB))
    reporter(Event("planned", "b", 5 * MiB))
    reporter(Event("skipped", "b", 5 * MiB))           # hashed by a worker: identical
    reporter(Event("skipped", "c", 7 * MiB))           # never planned
    reporter(Event("bytes", size=3 * MiB))
    reporter(Event("copied", "a", 3 * MiB, level="checksum"))
    reporter(Event("listed", size=3))
    t = reporter.tally
    assert (t.done, t.total, t.done_bytes, t.total_bytes) == (1, 1, 3 * MiB, 3 * MiB)


def plain(verbose: bool = False, json_lines: bool = False) -> tuple[Reporter, StringIO]:
    out = StringIO()
    return Reporter(OBJECT_LINES, verb="copy", json_lines=json_lines, verbose=verbose,
                    progress=False, out=out, err=StringIO()), out


EVENTS = [Event("planned", "a.jpg", 2048), Event("bytes", size=2048),
          Event("copied", "a.jpg", 2048, level="checksum"), Event("skipped", "b.jpg", 10),
          Event("failed", "c.jpg", reason="AccessDenied"), Event("listed", size=3)]


def test_plain_lines_name_failures_and_with_verbose_every_object() -> None:
    reporter, out = plain()
    for ev in EVENTS:
        reporter(ev)
    assert out.getvalue() == "FAILED   c.jpg: AccessDenied\n"
    reporter, out = plain(verbose=True)
    for ev in EVENTS:
        reporter(ev)
    assert out.getvalue().splitlines() == [
        "copied   a.jpg (2.0 KiB, verified by checksum)", "same     b.jpg",
        "FAILED   c.jpg: AccessDenied"]


@pytest.mark.parametrize("verbose", [False, True])
def test_json_lines_are_the_events_own_records(verbose: bool) -> None:
    reporter, out = plain(verbose=verbose, json_lines=True)
    for ev in EVENTS:
        reporter(ev)
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    shown = [ev for ev in EVENTS if ev.type in ("copied", "failed")
             or (verbose and ev.type == "skipped")]
    assert records == [ev.to_dict() for ev in shown]


def test_a_kind_throttles_its_progress_lines() -> None:
    clock = Clock()
    lines = Lines(noun="tables", text=lambda ev: f"{ev.type} {ev.key}".strip(),
                  shown=lambda ev: True, every={"lag": 1.0}, to_err=True)
    err = StringIO()
    reporter = Reporter(lines, verb="cutover", json_lines=False, verbose=False,
                        progress=False, out=StringIO(), err=err, clock=clock)
    for _ in range(40):                                # 2 s of lag events 0.05 s apart
        reporter(event("lag", "", bytes=10))
        clock.now += 0.05
    reporter(event("freeze", "", at="now"))
    assert err.getvalue().count("lag") == 2
    assert err.getvalue().splitlines()[-1] == "freeze"


def test_db_lines_and_json_shape() -> None:
    """What db's reporter makes of each db event, on stderr as text or on stdout as JSON
    Lines, with lag throttled by the run's clock."""
    now = [0.0]
    out, err = StringIO(), StringIO()
    timed = [(0.0, event("step", "schema", snapshot="00000003-1")),
             (0.0, event("table", "public.big", rows=10, bytes=2048, seconds=2.0, chunks=2)),
             (0.0, event("built", "public.big big_pkey", object="CONSTRAINT",
                         table="public.big", seconds=0.5))]
    # Three seconds of lag polled every 0.05 s.
    timed += [(i * 0.05, event("lag", "slot", bytes=100 - i)) for i in range(60)]
    for json_lines in (False, True):
        sink = db_reporter("db cutover", json_lines=json_lines, out=out, err=err,
                           clock=lambda: now[0])
        for now[0], ev in timed:
            sink(ev)
    shown = err.getvalue().splitlines()
    assert shown == ["==> schema",
                     "    public.big: 10 rows, 2.0 KiB in 2.0s (1.0 KiB/s, 2 chunks)",
                     "    constraint public.big big_pkey built in 0.5s",
                     "    replication lag: 100 bytes", "    replication lag: 80 bytes",
                     "    replication lag: 60 bytes"]
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["type"] for r in records] == ["step", "table", "built", "lag", "lag", "lag"]
    assert records[1] == {"type": "table", "key": "public.big", "rows": 10, "bytes": 2048,
                          "seconds": 2.0, "chunks": 2}


def test_db_progress_is_its_own_events_every_two_seconds() -> None:
    """No bar even on a terminal and no counted progress line: a db copy's progress events
    say how far it is, one line per 2 s."""
    clock = Clock()
    terminal = StringIO()
    console = Console(file=terminal, force_terminal=True, width=120, color_system=None)
    sink = Reporter(DB_LINES, verb="db copy", json_lines=False, verbose=False, progress=True,
                    out=StringIO(), err=terminal, console=console, clock=clock)
    with sink:
        sink(event("plan", chunks=3, tables=2, est_bytes=4 * MiB))
        for second in range(1, 13):                      # 12 s, one progress event a second
            sink(event("progress", rows=second * 10, bytes=second * MiB, rate=MiB, eta=1.0))
            clock.now += 1.0
    assert terminal.getvalue().splitlines() == [
        "    2 tables in 3 chunks, about 4.0 MiB on disk",
        *(f"    copied {s * 10} rows, {s}.0 MiB (1.0 MiB/s, ETA 1s)" for s in (1, 3, 5, 7, 9,
                                                                             11))]


def test_copy_and_verify_summaries() -> None:
    result = TransferResult(op="copy", src="s3://a", dst="gs://b", job_id="copy-0123456789ab",
                            job_dir="/jobs/copy-0123456789ab", copied=3, copied_bytes=3 * MiB,
                            skipped=2, failures=[Failure("x.bin", "AccessDenied")],
                            levels=Counter(checksum=2, size=1), elapsed=2.0)
    out = StringIO()
    print_transfer(result, json_out=False, out=out)
    assert out.getvalue().splitlines() == [
        "copy: 3 copied (3.0 MiB), 2 already identical, 0 deleted, 1 failed in 2.0s "
        "(1.5 MiB/s)",
        "verified: 2 by checksum, 1 by size only, 0 not verified",
        "  failed: x.bin: AccessDenied",
        "job: copy-0123456789ab (journal in /jobs/copy-0123456789ab)"]
    out = StringIO()
    print_transfer(result, json_out=True, out=out)
    assert json.loads(out.getvalue()) == result.to_dict()

    checked = VerifyResult(src="s3://a", dst="gs://b", matched=4,
                           mismatched=[VerifiedObject("x.bin", "mismatch", "checksum")],
                           levels=Counter(checksum=4, size=1))
    out = StringIO()
    print_verify(checked, json_out=False, out=out)
    assert out.getvalue().splitlines() == [
        "verify DIFFERENCES FOUND: 4 match, 0 missing, 0 extra, 1 mismatched, 0 unreadable",
        "levels: 4 checksum, 1 size only, 0 none",
        "note: objects verified by size only have no comparable stored checksum; rerun "
        "with --download to hash their bytes"]


def test_reports_are_written_through_links_and_into_pipes(tmp_path: Path) -> None:
    from cloudshift.core.files import write_atomic

    # A link: its target gets the page, the link stays a link.
    target = tmp_path / "real.html"
    target.write_text("old")
    link = tmp_path / "report.html"
    link.symlink_to(target)
    write_atomic(link, "<p>new</p>")
    assert link.is_symlink() and target.read_text() == "<p>new</p>"
    # A FIFO: its reader gets the page, and it stays a FIFO.
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    got: list[str] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_text()))
    reader.start()
    write_atomic(fifo, "<p>piped</p>")
    reader.join(timeout=30)
    assert got == ["<p>piped</p>"] and fifo.is_fifo()
    # A plain file: replaced whole, no temporary file left beside it.
    page = tmp_path / "plain.html"
    write_atomic(page, "one")
    write_atomic(page, "two")
    assert page.read_text() == "two"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe", "plain.html", "real.html",
                                                          "report.html"]
