"""How a job of each kind looks while ``cloudshift resume`` runs it: the kind's event sink
and the printing of its result. A kind without a view of its own gets the generic one: its
events as ``type key`` lines, its summary record as the result."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from cloudshift.jobs.events import Event, EventSink
from cloudshift.jobs.results import JobResult
from cloudshift.render.jsonl import write_json
from cloudshift.render.progress import Lines, Reporter

# (verb, json_out, verbose, progress) -> a context that is the sink while the job runs
SinkFactory = Callable[[str, bool, bool, bool | None], AbstractContextManager[EventSink]]


@dataclass(frozen=True)
class View:
    sink: SinkFactory
    result: Callable[[JobResult, bool], None]


def view_for(kind: str) -> View:
    """The view of a kind (``objects``, ``db``...). Imported on demand: one kind's rendering
    never loads another's."""
    if kind == "objects":
        from cloudshift.render import objects

        return View(sink=lambda verb, json_out, verbose, progress: objects.reporter(
            verb, json_lines=json_out, verbose=verbose, progress=progress),
            result=objects.print_result)
    if kind == "db":
        from cloudshift.render import db

        # No bar for db (its own events say how far the copy is): ``progress`` is not used.
        return View(sink=lambda verb, json_out, verbose, progress: db.reporter(
            verb, json_lines=json_out, verbose=verbose), result=_print_db_copy)
    return GENERIC_VIEW


def _print_db_copy(result: JobResult, json_out: bool) -> None:
    """A db job's resume re-runs its copy: a copy's result."""
    from cloudshift.db.copy import CopyResult
    from cloudshift.render.db import print_copy

    if not isinstance(result, CopyResult):
        raise TypeError(f"not a db copy's result: {type(result).__name__}")
    print_copy(result, json_out)


def _generic_text(ev: Event) -> str | None:
    if ev.type == "bytes":
        return None
    facts = " ".join(f"{k}={v}" for k, v in ev.to_dict().items() if k not in ("type", "key"))
    return " ".join(part for part in (ev.type, ev.key, facts) if part)


GENERIC_LINES = Lines(noun="items", text=_generic_text, shown=lambda ev: ev.type == "failed",
                      to_err=True)


def _generic_sink(verb: str, json_out: bool, verbose: bool, progress: bool | None
                  ) -> Reporter:
    return Reporter(GENERIC_LINES, verb=verb, json_lines=json_out, verbose=verbose,
                    progress=progress)


def print_summary(result: JobResult, json_out: bool) -> None:
    """Any result: its summary record, or one line of it."""
    record = result.to_dict()
    if json_out:
        write_json(record)
        return
    verdict = "ok" if result.ok else "FAILED"
    job = f" (job {record['job_id']})" if record.get("job_id") else ""
    print(f"{record.get('kind', '?')} {record.get('op', '?')}: {verdict}{job}")


GENERIC_VIEW = View(sink=_generic_sink, result=print_summary)
