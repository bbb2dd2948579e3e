"""What the object mover's events and results look like: the line of each object, the
summaries of copy, sync and verify, the listing of ``ls``."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, TextIO

from cloudshift.core.units import human_bytes
from cloudshift.jobs.events import Event
from cloudshift.jobs.results import JobResult
from cloudshift.render.jsonl import write_json
from cloudshift.render.progress import Lines, Reporter
from cloudshift.transfer.results import TransferResult, VerifyResult

if TYPE_CHECKING:  # a type only: render/ imports the kinds' results, not storage/
    from cloudshift.storage.base import ObjectInfo

FAILURES_SHOWN = 50


def _verified(ev: Event) -> str:
    status, _, detail = (ev.reason or "match").partition(": ")
    return f"{status.upper():<9}{ev.key} [{ev.level}]" + (f" {detail}" if detail else "")


# An event's line, by type; planned, bytes and listed have none (progress only).
_TEXT: dict[str, Callable[[Event], str]] = {
    "copied": lambda ev: f"copied   {ev.key} ({human_bytes(ev.size)}, verified by {ev.level})",
    "skipped": lambda ev: f"same     {ev.key}",
    "deleted": lambda ev: f"deleted  {ev.key}",
    "failed": lambda ev: f"FAILED   {ev.key}: {ev.reason}",
    "would-copy": lambda ev: f"would copy   {ev.key} ({human_bytes(ev.size)})",
    "would-delete": lambda ev: f"would delete {ev.key}",
    "verified": _verified,
}


def _text(ev: Event) -> str | None:
    line = _TEXT.get(ev.type)
    return None if line is None else line(ev)


def _shown(ev: Event) -> bool:
    """Without --verbose: failures, what a dry run would do, and what verify found wrong."""
    if ev.type == "verified":
        return ev.reason is not None
    return ev.type in ("failed", "would-copy", "would-delete")


OBJECT_LINES = Lines(noun="objects", text=_text, shown=_shown, quiet=frozenset({"skipped"}))


def reporter(verb: str, *, json_lines: bool, verbose: bool, progress: bool | None
             ) -> Reporter:
    """The sink for copy, sync, verify and an object job's resume."""
    return Reporter(OBJECT_LINES, verb=verb, json_lines=json_lines, verbose=verbose,
                    progress=progress)


def _echo(text: str, out: TextIO | None) -> None:
    (out or sys.stdout).write(text + "\n")


def print_transfer(result: TransferResult, json_out: bool, out: TextIO | None = None) -> None:
    if json_out:
        write_json(result.to_dict(), out)
        return
    if result.dry_run:
        _echo(f"dry run: would copy {result.planned} objects "
              f"({human_bytes(result.planned_bytes)}), delete {result.to_delete}; "
              f"{result.skipped} already identical; nothing was changed", out)
        return
    lv = result.levels
    _echo(f"{result.op}: {result.copied} copied ({human_bytes(result.copied_bytes)}), "
          f"{result.skipped} already identical, {result.deleted} deleted, "
          f"{len(result.failures)} failed in {result.elapsed:.1f}s "
          f"({human_bytes(result.rate)}/s)", out)
    _echo(f"verified: {lv.get('checksum', 0)} by checksum, {lv.get('size', 0)} by size "
          f"only, {lv.get('none', 0)} not verified", out)
    for f in result.failures[:FAILURES_SHOWN]:
        _echo(f"  failed: {f.key}: {f.reason}", out)
    if len(result.failures) > FAILURES_SHOWN:
        _echo(f"  ... and {len(result.failures) - FAILURES_SHOWN} more (see --json)", out)
    if result.job_dir:
        _echo(f"job: {result.job_id} (journal in {result.job_dir})", out)


def print_verify(result: VerifyResult, json_out: bool, out: TextIO | None = None) -> None:
    if json_out:
        write_json(result.to_dict(), out)
        return
    lv = result.levels
    verdict = "OK" if result.ok else "DIFFERENCES FOUND"
    _echo(f"verify {verdict}: {result.matched} match, {len(result.missing)} missing, "
          f"{len(result.extra)} extra, {len(result.mismatched)} mismatched, "
          f"{len(result.errors)} unreadable", out)
    _echo(f"levels: {lv.get('checksum', 0)} checksum, {lv.get('size', 0)} size only, "
          f"{lv.get('none', 0)} none", out)
    if lv.get("size", 0):
        _echo("note: objects verified by size only have no comparable stored checksum; "
              "rerun with --download to hash their bytes", out)


def print_result(result: JobResult, json_out: bool, out: TextIO | None = None) -> None:
    """An object job's result, whichever it is (``resume`` gets a copy's or a sync's)."""
    if isinstance(result, VerifyResult):
        print_verify(result, json_out, out)
    elif isinstance(result, TransferResult):
        print_transfer(result, json_out, out)
    else:
        raise TypeError(f"not an object job's result: {type(result).__name__}")


def print_listing(objects: Iterable[ObjectInfo], json_out: bool, out: TextIO | None = None,
                  err: TextIO | None = None) -> None:
    """``ls``: a line per object as it streams in, then the count and size on stderr."""
    count = total = 0
    for info in objects:
        count += 1
        total += info.size
        mtime = info.mtime.isoformat(timespec="seconds") if info.mtime else "-"
        if json_out:
            write_json({"key": info.key, "size": info.size, "mtime": mtime, "etag": info.etag,
                        "checksums": dict(info.checksums),
                        "storage_class": info.storage_class}, out)
        else:
            sums = " ".join(f"{k}:{v}" for k, v in sorted(info.checksums.items())) or "-"
            _echo(f"{info.size:>12}  {mtime}  {sums}  {info.key}", out)
    if not json_out:
        _echo(f"{count} objects, {human_bytes(total)}", err or sys.stderr)
