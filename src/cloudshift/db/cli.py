"""``cloudshift db ...``: parse, call :mod:`cloudshift.db`, print. Nothing more."""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from cloudshift.core.errors import Interrupted
from cloudshift.core.units import human_bytes, parse_size
from cloudshift.jobs.events import Event

db_app = typer.Typer(
    name="db",
    help="Move a PostgreSQL database to another server and prove the two are identical.\n\n"
         "DSNs: postgresql://user:password@host:5432/dbname (or key=value conninfo; "
         "PGPASSWORD and ~/.pgpass work too). Passwords are never printed.\n\n"
         "Typical run: db check SRC DST; db copy SRC DST --follow; db cutover SRC DST. "
         "Exit codes: 0 ok, 1 differences or blockers found, 2 usage or configuration "
         "error, 130 interrupted (rerun db copy to resume).",
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

Src = Annotated[str, typer.Argument(help="Source DSN, e.g. postgresql://app:pw@old:5432/shop",
                                    show_default=False)]
Dst = Annotated[str, typer.Argument(help="Target DSN (an empty database).", show_default=False)]
Jobs = Annotated[int, typer.Option("--jobs", "-j", min=1, max=64,
                                   help="Parallel workers (connections per side).")]
Json = Annotated[bool, typer.Option("--json", help="JSON Lines on stdout, summary last.")]


def register(app: typer.Typer) -> None:
    """Add the ``db`` command group to the main cloudshift app."""
    app.add_typer(db_app, name="db")


def _out(obj: dict[str, Any]) -> None:
    typer.echo(json.dumps(obj, ensure_ascii=False, default=str))


def _err(text: str) -> None:
    typer.echo(text, err=True)


@db_app.command("check")
def check_cmd(src: Src, dst: Dst, follow: Annotated[bool, typer.Option(
                  "--follow", help="Also check what change capture needs.")] = False,
              jobs: Jobs = 4, json_out: Json = False) -> None:
    """Pre-flight: versions, table sizes, extensions, keys, large objects, wal_level,
    privileges, an estimated copy time. Exits 1 when something would stop the copy, and
    says how to fix each."""
    from cloudshift.db.check import check

    rep = check(src, dst, follow=follow, jobs=jobs)
    if json_out:
        _out(rep.to_dict())
        raise typer.Exit(0 if rep.ok else 1)
    typer.echo(f"source {rep.source} -> target {rep.target}")
    for t in rep.tables[:20]:
        key = ",".join(t["primary_key"]) or "no primary key"
        typer.echo(f"  {human_bytes(t['bytes']):>10}  ~{t['rows_estimate']:>10} rows  "
                   f"{t['table']}  ({key})")
    if len(rep.tables) > 20:
        typer.echo(f"  ... and {len(rep.tables) - 20} more tables (see --json)")
    for f in rep.findings:
        line = f"{f.level.upper():8} {f.topic}: {f.message}"
        if f.fix and f.level != "info":
            line += f"\n         fix: {f.fix}"
        typer.echo(line)
    verdict = "ready" if rep.ok else f"{len(rep.blockers)} blocker(s)"
    typer.echo(f"check: {verdict}")
    raise typer.Exit(0 if rep.ok else 1)


class _Progress:
    EVERY_S = 2.0

    def __init__(self, json_out: bool) -> None:
        self.json_out = json_out
        self.last = 0.0

    def __call__(self, e: Event) -> None:
        kind = e.type
        ev = {"key": e.key, **e.data}
        if self.json_out:
            if kind != "progress" or time.monotonic() - self.last >= self.EVERY_S:
                self.last = time.monotonic()
                _out(e.to_dict())
            return
        if kind == "step":
            _err(f"==> {ev['key']}" + (f" ({ev['statements']} statements)"
                                        if "statements" in ev else ""))
        elif kind == "plan":
            _err(f"    {ev['tables']} tables in {ev['chunks']} chunks, about "
                 f"{human_bytes(ev['est_bytes'])} on disk")
        elif kind == "table":
            rate = ev["bytes"] / ev["seconds"] if ev["seconds"] else 0.0
            _err(f"    {ev['key']}: {ev['rows']} rows, {human_bytes(ev['bytes'])} in "
                 f"{ev['seconds']:.1f}s ({human_bytes(rate)}/s, {ev['chunks']} chunks)")
        elif kind == "built":
            _err(f"    {ev['object'].lower()} {ev['key']} built in {ev['seconds']:.1f}s")
        elif kind == "progress" and time.monotonic() - self.last >= self.EVERY_S:
            self.last = time.monotonic()
            _err(f"    copied {ev['rows']} rows, {human_bytes(ev['bytes'])} "
                 f"({human_bytes(ev['rate'])}/s, ETA {ev['eta']:.0f}s)")
        elif kind == "lag":
            if time.monotonic() - self.last >= 1.0:
                self.last = time.monotonic()
                _err(f"    replication lag: {ev.get('bytes')} bytes")
        elif kind == "freeze":
            _err(f"==> writes frozen on the source at {ev['at']} "
                 f"({ev['sessions_ended']} sessions ended)")


@db_app.command("copy")
def copy_cmd(
    src: Src, dst: Dst, jobs: Jobs = 4,
    follow: Annotated[bool, typer.Option(
        "--follow", help="Keep replicating changes made on the source after the snapshot "
                         "(logical replication; needs wal_level=logical and a key or replica "
                         "identity on every table). Finish with db cutover.")] = False,
    force: Annotated[bool, typer.Option(
        "--force", help="The target is not empty: DROP every user schema in it (with all it "
                        "holds) and start over. Also restarts an interrupted job.")] = False,
    no_owner: Annotated[bool, typer.Option("--no-owner", help="Do not set object owners "
                                           "(roles missing on the target).")] = False,
    no_acl: Annotated[bool, typer.Option("--no-acl", help="Do not copy GRANTs.")] = False,
    split: Annotated[str, typer.Option(
        "--split-size", help="Tables larger than this with an integer key are copied as "
                             "several key ranges in parallel (smaller tables are loaded "
                             "whole, with COPY FREEZE).")] = "1GiB",
    job_dir: Annotated[Path | None, typer.Option(
        "--job-dir", help="Journal folder (default: $CLOUDSHIFT_HOME/jobs/db-<id>).")] = None,
    json_out: Json = False,
) -> None:
    """Copy a database: schema, rows (one snapshot, parallel COPY, largest first; each
    table's indexes, keys and ANALYZE as soon as its rows are in), then foreign keys and the
    rest of the schema, sequences.

    Re-running the same command after a crash or Ctrl-C resumes.
    Finished tables and key ranges are not copied again (docs/db.md: the exact guarantee).

    Example: cloudshift db copy postgresql://app:pw@old/shop postgresql://app:pw@new/shop -j 8
    """
    from cloudshift.db.copy import CopyOptions, copy_database

    opts = CopyOptions(jobs=jobs, follow=follow, force=force, no_owner=no_owner,
                       no_acl=no_acl, job_dir=job_dir, split_bytes=parse_size(split),
                       on_event=_Progress(json_out))
    try:
        result = copy_database(src, dst, opts)
    except KeyboardInterrupt:
        # click would turn this into a silent Abort; say what to do next instead.
        raise Interrupted("interrupted: run the same db copy command again to resume; "
                          "finished tables and key ranges are kept") from None
    if json_out:
        _out(result.to_dict())
        return
    rate = result.bytes / result.elapsed if result.elapsed else 0.0
    typer.echo(f"db copy: {result.rows} rows, {human_bytes(result.bytes)} in "
               f"{result.elapsed:.1f}s ({human_bytes(rate)}/s)"
               + (" (resumed)" if result.resumed else ""))
    typer.echo("steps: " + ", ".join(f"{k} {v:.1f}s" for k, v in result.steps.items()))
    if result.recopied:
        typer.echo("copied again in full (written to on the source since the first run): "
                   + ", ".join(result.recopied))
    for w in result.warnings:
        typer.echo(f"warning: {w}")
    if result.follow:
        f = result.follow
        typer.echo(f"following: subscription {f['subscription']} on the target streams from "
                   f"slot {f['slot']}; lag {f['lag_bytes']} bytes"
                   + (" (caught up)" if f["caught_up"] else ""))
        typer.echo("next: cloudshift db cutover SRC DST when you are ready to switch")
    typer.echo(f"job: {result.job_id} (journal in {result.job_dir})")


@db_app.command("verify")
def verify_cmd(src: Src, dst: Dst, jobs: Jobs = 4, json_out: Json = False) -> None:
    """Prove the target equals the source: schema (tables, columns, types, indexes,
    constraints, sequences, enums), then rows by key ranges hashed on both servers;
    differing ranges are narrowed to the rows, printed by primary key. Tables without a
    primary key are compared by row count and whole-table hash. Takes no locks that block
    writers. Exit 0 only when everything matches."""
    from cloudshift.db.verify import verify_databases

    report = verify_databases(src, dst, jobs=jobs)
    if json_out:
        _out(report.to_dict())
        raise typer.Exit(0 if report.ok else 1)
    rows = sum(t.rows_source for t in report.tables)
    by_hash = [t.table for t in report.tables if t.method == "count + table hash"]
    for line in report.lines():
        typer.echo(line)
    bad = sum(1 for t in report.tables if not t.ok)
    verdict = "OK" if report.ok else "DIFFERENCES FOUND"
    typer.echo(f"db verify {verdict}: {len(report.tables)} tables ({rows} rows), {bad} differ, "
               f"{len(report.schema)} schema and {len(report.sequences)} sequence differences "
               f"in {report.elapsed:.1f}s")
    if by_hash:
        typer.echo(f"note: {len(by_hash)} table(s) without a primary key compared by row count "
                   "and whole-table hash only: " + ", ".join(by_hash[:10]))
    raise typer.Exit(0 if report.ok else 1)


@db_app.command("lag")
def lag_cmd(
    src: Src, dst: Dst,
    watch: Annotated[float | None, typer.Option(
        "--watch", help="Print again every this many seconds until Ctrl-C.")] = None,
    json_out: Json = False,
) -> None:
    """How far the target is behind the source while db copy --follow replicates: bytes of
    source WAL not yet confirmed by the target, and the replay lag in seconds."""
    from cloudshift.db.follow import current_lag

    while True:
        info = current_lag(src, dst)
        if json_out:
            _out(info)
        else:
            secs = "-" if info["seconds"] is None else f"{info['seconds']:.3f}s"
            n = info["apply_workers"]
            typer.echo(f"lag: {info['bytes']} bytes, replay {secs} (subscription "
                       f"{info['subscription']}, {n} apply worker{'' if n == 1 else 's'} "
                       "running)")
        if watch is None:
            return
        time.sleep(watch)


@db_app.command("cutover")
def cutover_cmd(
    src: Src, dst: Dst, jobs: Jobs = 4,
    max_lag: Annotated[str, typer.Option("--max-lag", help="Freeze writes only once the "
                                         "target is this close behind.")] = "16MiB",
    timeout: Annotated[float, typer.Option("--timeout", help="Give up (and unfreeze) after "
                                           "this many seconds.")] = 300.0,
    no_verify: Annotated[bool, typer.Option("--no-verify", help="Skip db verify inside the "
                                            "freeze (shorter freeze, no proof).")] = False,
    json_out: Json = False,
) -> None:
    """Switch over from a db copy --follow: wait for a small lag, stop writes on the source
    (ALTER DATABASE ... SET default_transaction_read_only = on, and end its client
    sessions), wait for lag 0, copy sequence values, verify, detach replication, and print
    the moment the application may write to the target, with the freeze measured.

    If verification finds differences, writes on the source are re-enabled, replication
    keeps running, and the exit code is 1.
    """
    from cloudshift.db.follow import cutover

    try:
        result = cutover(src, dst, jobs=jobs, max_lag=parse_size(max_lag), timeout=timeout,
                         run_verify=not no_verify, emit=lambda ev: _Progress(json_out)(ev))
    except KeyboardInterrupt:
        raise Interrupted("interrupted: cutover did not happen; if writes had been frozen "
                          "on the source they are enabled again, replication keeps "
                          "running") from None
    if json_out:
        _out(result.to_dict())
        raise typer.Exit(0 if result.ok else 1)
    if not result.ok:
        for line in result.differences:
            typer.echo(line)
        typer.echo("cutover ABORTED: the target differs from the source; writes on the source "
                   "are enabled again and replication keeps running")
        raise typer.Exit(1)
    typer.echo(f"caught up {result.catch_up_seconds:.2f}s after the freeze; "
               f"{result.sequences} sequences copied; verify took {result.verify_seconds:.2f}s")
    typer.echo(f"SWITCH NOW: the application may write to the target from {result.switch_at}")
    typer.echo(f"write freeze on the source: {result.freeze_seconds:.2f}s (from "
               f"{result.freeze_started}); the source stays read-only")
    sys.stdout.flush()
