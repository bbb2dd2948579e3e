"""``cloudshift db ...``: parse, call :mod:`cloudshift.db`, hand its events and results to
:mod:`cloudshift.render.db`. Nothing more."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer

from cloudshift.core.errors import Interrupted
from cloudshift.core.units import parse_size

# Each command imports its printers (render/db.py) when it runs: the rich progress machinery
# behind them would cost every other command ~30 ms of start-up.
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


@db_app.command("check")
def check_cmd(src: Src, dst: Dst, follow: Annotated[bool, typer.Option(
                  "--follow", help="Also check what change capture needs.")] = False,
              jobs: Jobs = 4, json_out: Json = False) -> None:
    """Pre-flight: versions, table sizes, extensions, keys, large objects, wal_level,
    privileges, an estimated copy time. Exits 1 when something would stop the copy, and
    says how to fix each."""
    from cloudshift.db.check import check
    from cloudshift.render.db import print_check

    rep = check(src, dst, follow=follow, jobs=jobs)
    print_check(rep, json_out)
    raise typer.Exit(rep.exit_code)


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
    from cloudshift.render.db import print_copy, reporter

    # One sink for the whole run: the throttle of its progress lines lives in it.
    opts = CopyOptions(jobs=jobs, follow=follow, force=force, no_owner=no_owner,
                       no_acl=no_acl, job_dir=job_dir, split_bytes=parse_size(split),
                       on_event=reporter("db copy", json_lines=json_out))
    try:
        result = copy_database(src, dst, opts)
    except KeyboardInterrupt:
        # click would turn this into a silent Abort; say what to do next instead.
        raise Interrupted("interrupted: run the same db copy command again to resume; "
                          "finished tables and key ranges are kept") from None
    print_copy(result, json_out)


@db_app.command("verify")
def verify_cmd(src: Src, dst: Dst, jobs: Jobs = 4, json_out: Json = False) -> None:
    """Prove the target equals the source: schema (tables, columns, types, indexes,
    constraints, sequences, enums), then rows by key ranges hashed on both servers;
    differing ranges are narrowed to the rows, printed by primary key. Tables without a
    primary key are compared by row count and whole-table hash. Takes no locks that block
    writers. Exit 0 only when everything matches."""
    from cloudshift.db.verify import verify_databases
    from cloudshift.render.db import print_verify

    report = verify_databases(src, dst, jobs=jobs)
    print_verify(report, json_out)
    raise typer.Exit(report.exit_code)


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
    from cloudshift.render.db import print_lag

    while True:
        print_lag(current_lag(src, dst), json_out)
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
    from cloudshift.render.db import print_cutover, reporter

    try:
        result = cutover(src, dst, jobs=jobs, max_lag=parse_size(max_lag), timeout=timeout,
                         run_verify=not no_verify,
                         emit=reporter("db cutover", json_lines=json_out))
    except KeyboardInterrupt:
        raise Interrupted("interrupted: cutover did not happen; if writes had been frozen "
                          "on the source they are enabled again, replication keeps "
                          "running") from None
    print_cutover(result, json_out)
    raise typer.Exit(result.exit_code)
