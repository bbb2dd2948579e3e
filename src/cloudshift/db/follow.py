"""Change capture with PostgreSQL logical replication, and the cutover.

The slot is created on a replication connection with ``EXPORT_SNAPSHOT``: the copy reads
exactly the snapshot at which the slot starts, so every change after it is replicated once
and none before it is replayed. After the copy the target subscribes to that slot
(``copy_data = false``); the target server's apply workers then stream changes themselves,
whether or not cloudshift keeps running.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import psycopg
from psycopg import sql

from cloudshift.core.errors import ConfigError
from cloudshift.db import catalog
from cloudshift.db.dsn import Dsn, connect
from cloudshift.db.journal import KIND, DbJournal
from cloudshift.db.sequences import copy_sequences
from cloudshift.jobs.events import EventSink, event
from cloudshift.jobs.results import ResultBase, summary


def require_follow_ready(sconn: psycopg.Connection[Any], src: Dsn) -> None:
    """Raise a one-line error, with the fix, for what would stop logical replication."""
    row = sconn.execute("SELECT current_setting('wal_level')").fetchone()
    level = str(row[0]) if row else "?"
    if level != "logical":
        raise ConfigError(
            f"the source server has wal_level = {level}; --follow needs wal_level = logical",
            hint="on the source run ALTER SYSTEM SET wal_level = logical; and restart it "
                 "(Amazon RDS/Aurora: rds.logical_replication = 1 in the parameter group; "
                 "Cloud SQL: cloudsql.logical_decoding = on)")
    missing = [t.qualified for t in catalog.tables(sconn) if not t.has_replica_identity]
    if missing:
        shown = ", ".join(missing[:5]) + (f" and {len(missing) - 5} more" if len(missing) > 5
                                          else "")
        raise ConfigError(
            f"{len(missing)} table(s) have no primary key or replica identity, so their "
            f"updates and deletes cannot be replicated: {shown}",
            hint=f"add a primary key, or run ALTER TABLE {missing[0]} REPLICA IDENTITY FULL")
    row = sconn.execute("SELECT rolsuper OR rolreplication FROM pg_roles "
                        "WHERE rolname = current_user").fetchone()
    if not row or not row[0]:
        raise ConfigError("the source user may not use replication",
                          hint="ALTER ROLE <user> REPLICATION (RDS: GRANT rds_replication "
                               "TO <user>)")


def create_slot(sconn: psycopg.Connection[Any], src: Dsn, journal: DbJournal, pub: str,
                slot: str) -> tuple[psycopg.Connection[Any], str]:
    """Publication first (decoding reads it as of each change), then the slot + snapshot.
    The returned connection must stay open and idle until every worker imported the
    snapshot."""
    exists = sconn.execute("SELECT 1 FROM pg_publication WHERE pubname = %s", (pub,)).fetchone()
    if not exists:
        sconn.execute(sql.SQL("CREATE PUBLICATION {} FOR ALL TABLES").format(
            sql.Identifier(pub)))
    drop_slot(sconn, slot)
    repl = connect(src, replication=True)
    row = repl.execute(f'CREATE_REPLICATION_SLOT "{slot}" LOGICAL pgoutput '
                       "EXPORT_SNAPSHOT").fetchone()
    assert row is not None
    journal.put("slot", slot)
    journal.put("publication", pub)
    journal.put("slot_lsn", str(row[1]))
    return repl, str(row[2])


def drop_slot(sconn: psycopg.Connection[Any], slot: str, wait_s: float = 10.0) -> None:
    """Drop a leftover slot of this job (an earlier, abandoned run), ending its walsender."""
    deadline = time.monotonic() + wait_s
    while True:
        row = sconn.execute("SELECT active_pid FROM pg_replication_slots WHERE slot_name = %s",
                            (slot,)).fetchone()
        if row is None:
            return
        if row[0] is None:
            sconn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
            return
        if time.monotonic() > deadline:
            raise ConfigError(f"the replication slot {slot} on the source is still in use",
                              hint="drop the subscription that reads it, then retry")
        sconn.execute("SELECT pg_terminate_backend(%s)", (row[0],))
        time.sleep(0.2)


def lag(sconn: psycopg.Connection[Any], slot: str) -> tuple[int | None, float | None]:
    """(bytes of source WAL the target has not confirmed, seconds of replay lag if known)."""
    row = sconn.execute(
        "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), s.confirmed_flush_lsn)::bigint, "
        "extract(epoch FROM r.replay_lag)::float8 "
        "FROM pg_replication_slots s LEFT JOIN pg_stat_replication r ON r.pid = s.active_pid "
        "WHERE s.slot_name = %s", (slot,)).fetchone()
    if row is None:
        return None, None
    return (max(0, int(row[0])) if row[0] is not None else None,
            float(row[1]) if row[1] is not None else None)


def start_subscription(src: Dsn, dst: Dsn, dconn: psycopg.Connection[Any],
                       sconn: psycopg.Connection[Any], pub: str, slot: str,
                       journal: DbJournal, emit: EventSink, wait_s: float = 120.0,
                       caught_up_bytes: int = 1 << 20) -> dict[str, Any]:
    """Subscribe the target to the slot; return once it has caught up (lag within
    ``caught_up_bytes``: under a steady write load the lag is never exactly 0)."""
    if journal.step_state("subscription") != "done":
        exists = dconn.execute("SELECT 1 FROM pg_subscription WHERE subname = %s",
                               (slot,)).fetchone()
        if not exists:
            # The target server itself connects to the source: it needs the password too.
            # It is stored in pg_subscription, readable by superusers only.
            dconn.execute(sql.SQL(
                "CREATE SUBSCRIPTION {} CONNECTION {} PUBLICATION {} WITH (create_slot = "
                "false, slot_name = {}, copy_data = false, enabled = true)").format(
                sql.Identifier(slot), sql.Literal(src.with_options(application_name=slot)),
                sql.Identifier(pub), sql.Literal(slot)))
        journal.step("subscription", "done")
    t0 = time.monotonic()
    last: int | None = None
    seconds: float | None = None
    while time.monotonic() - t0 < wait_s:
        last, seconds = lag(sconn, slot)
        emit(event("lag", slot, bytes=last, seconds=seconds))
        if last is not None and last <= caught_up_bytes:
            break
        time.sleep(0.5)
    return {"publication": pub, "slot": slot, "subscription": slot, "lag_bytes": last,
            "lag_seconds": seconds,
            "caught_up": last is not None and last <= caught_up_bytes}


@dataclass
class CutoverResult(ResultBase):
    subscription: str
    lag_before: int | None
    freeze_started: str = ""
    switch_at: str = ""
    freeze_seconds: float = 0.0
    catch_up_seconds: float = 0.0
    verify_seconds: float = 0.0
    sequences: int = 0
    ok: bool = False
    differences: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return summary(KIND, "db-cutover", self.ok, **{k: v for k, v in vars(self).items()
                                                       if k != "ok"})


def current_lag(src_text: str, dst_text: str) -> dict[str, Any]:
    """The lag of the cloudshift replication from SRC into DST, as ``db lag`` prints it."""
    src, dst = Dsn(src_text, "source"), Dsn(dst_text, "target")
    with connect(dst) as dconn:
        sub, slot, _ = find_subscription(dconn)
        row = dconn.execute("SELECT count(*) FILTER (WHERE pid IS NOT NULL) FROM "
                            "pg_stat_subscription WHERE subname = %s", (sub,)).fetchone()
        workers = int(row[0]) if row else 0
    with connect(src) as sconn:
        behind, seconds = lag(sconn, slot)
    return {"type": "lag", "subscription": sub, "slot": slot, "bytes": behind,
            "seconds": seconds, "apply_workers": workers}


def find_subscription(dconn: psycopg.Connection[Any]) -> tuple[str, str, list[str]]:
    row = dconn.execute(
        "SELECT s.subname, s.subslotname, s.subpublications FROM pg_subscription s "
        "JOIN pg_database d ON d.oid = s.subdbid WHERE d.datname = current_database() "
        "AND s.subname LIKE 'cloudshift\\_%' ORDER BY s.oid DESC LIMIT 1").fetchone()
    if row is None:
        raise ConfigError("no cloudshift replication runs into this target database",
                          hint="start one with: cloudshift db copy SRC DST --follow")
    return str(row[0]), str(row[1]), list(row[2])


# How long to wait for terminated sessions to exit when no cutover deadline is given.
_EXIT_WAIT_S = 10.0


def freeze_writes(sconn: psycopg.Connection[Any], deadline: float | None = None) -> int:
    """Stop writes: new sessions start read-only, existing client sessions are ended.
    Returns how many sessions were ended.

    pg_terminate_backend(pid) only signals: a backend in the middle of a commit can still
    write its commit record afterwards. So wait until the ended sessions are gone (their
    last WAL is then in), polling pg_stat_activity - not the timeout argument, which needs
    PostgreSQL 14."""
    db = sql.Identifier(_dbname(sconn))
    sconn.execute(sql.SQL("ALTER DATABASE {} SET default_transaction_read_only = on")
                  .format(db))
    rows = sconn.execute(
        # In the select list, not the WHERE clause: quals may be evaluated in any order,
        # and this session must not end itself.
        "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid() "
        "AND backend_type = 'client backend'").fetchall()
    pids = [int(r[0]) for r in rows if r[1]]
    if pids:
        _wait_for_exit(sconn, pids, deadline)
    return len(pids)


def _wait_for_exit(sconn: psycopg.Connection[Any], pids: list[int],
                   deadline: float | None) -> None:
    limit = min(deadline, time.monotonic() + _EXIT_WAIT_S) if deadline is not None \
        else time.monotonic() + _EXIT_WAIT_S
    while True:
        row = sconn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)",
                            (pids,)).fetchone()
        left = int(row[0]) if row else 0
        if not left:
            return
        if time.monotonic() > limit:
            raise ConfigError(f"{left} ended source session(s) did not exit while writes "
                              "were frozen", hint="check the source for stuck sessions "
                              "(pg_stat_activity) and run the cutover again")
        time.sleep(0.05)


def unfreeze_writes(sconn: psycopg.Connection[Any]) -> None:
    sconn.execute(sql.SQL("ALTER DATABASE {} RESET default_transaction_read_only")
                  .format(sql.Identifier(_dbname(sconn))))


def _dbname(conn: psycopg.Connection[Any]) -> str:
    row = conn.execute("SELECT current_database()").fetchone()
    assert row is not None
    return str(row[0])


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def cutover(src_text: str, dst_text: str, *, jobs: int = 4, max_lag: int = 16 << 20,
            timeout: float = 300.0, run_verify: bool = True, emit: EventSink | None = None
            ) -> CutoverResult:
    """Wait for a small lag, freeze writes on the source, wait for lag 0, copy sequences,
    verify, detach. If verify finds differences, or anything fails, writes are enabled
    again and replication keeps running."""
    say: EventSink = emit or (lambda _: None)
    src, dst = Dsn(src_text, "source"), Dsn(dst_text, "target")
    sconn, dconn = connect(src), connect(dst)
    try:
        sub, slot, pubs = find_subscription(dconn)
        deadline = time.monotonic() + timeout
        # A small lag first, so that the write freeze itself is short.
        behind = _wait_for_small_lag(sconn, slot, max_lag, deadline, timeout, say)
        result = CutoverResult(subscription=sub, lag_before=behind)
        t_freeze = time.monotonic()
        result.freeze_started = _now()
        try:
            ended = freeze_writes(sconn, deadline)
            say(event("freeze", sub, at=result.freeze_started, sessions_ended=ended))
            _wait_for_catch_up(sconn, slot, deadline, say)
            result.catch_up_seconds = round(time.monotonic() - t_freeze, 3)
            result.sequences = copy_sequences(sconn, dconn)
            if run_verify and not _verify(src_text, dst_text, jobs, result):
                unfreeze_writes(sconn)
                result.freeze_seconds = round(time.monotonic() - t_freeze, 3)
                return result
        except BaseException:
            unfreeze_writes(sconn)
            raise
        _detach(sconn, dconn, sub, pubs)
        result.ok = True
        result.switch_at = _now()
        result.freeze_seconds = round(time.monotonic() - t_freeze, 3)
        return result
    finally:
        sconn.close()
        dconn.close()


def _wait_for_small_lag(sconn: psycopg.Connection[Any], slot: str, max_lag: int,
                        deadline: float, timeout: float, say: EventSink) -> int:
    while True:
        behind, _ = lag(sconn, slot)
        say(event("lag", slot, bytes=behind))
        if behind is not None and behind <= max_lag:
            return behind
        if time.monotonic() > deadline:
            raise ConfigError(f"replication lag stayed above {max_lag} bytes for "
                              f"{timeout:.0f}s", hint="retry when the source is quieter, "
                              "or raise --timeout")
        time.sleep(0.5)


# Page headers of a WAL page and of a segment's first page (PostgreSQL's
# SizeOfXLogShortPHD and SizeOfXLogLongPHD, unchanged since 9.x).
_PAGE_HEADER, _SEGMENT_HEADER = 24, 40


def _end_of_wal(sconn: psycopg.Connection[Any]) -> str:
    """The end of the last WAL record on the source, as the replication slot will confirm it.

    The insert position, not pg_current_wal_lsn() (what is written out): with
    synchronous_commit=off the last commits before the freeze may still sit in WAL buffers,
    and the target must have them before anyone writes to it. But where the last record
    ends exactly on a page boundary, the insert position points past the next page's
    header, which no record will ever reach while writes are frozen: step back over it.
    """
    row = sconn.execute(
        "SELECT l, (o % current_setting('wal_block_size')::int), o "
        "FROM pg_current_wal_insert_lsn() AS l, pg_walfile_name_offset(l) AS f(n, o)"
    ).fetchone()
    assert row is not None
    return record_end(str(row[0]), in_page=int(row[1]), in_segment=int(row[2]))


def record_end(insert_lsn: str, *, in_page: int, in_segment: int) -> str:
    """``insert_lsn`` stepped back over the page header it points just past, if it does."""
    back = (_SEGMENT_HEADER if in_segment == _SEGMENT_HEADER
            else _PAGE_HEADER if in_page == _PAGE_HEADER else 0)
    if not back:
        return insert_lsn
    high, low = (int(part, 16) for part in insert_lsn.split("/"))
    value = (high << 32 | low) - back
    return f"{value >> 32:X}/{value & 0xFFFFFFFF:X}"


def _wait_for_catch_up(sconn: psycopg.Connection[Any], slot: str, deadline: float,
                       say: EventSink) -> None:
    """Until the slot has confirmed the source's WAL as of now (writes are frozen)."""
    target_lsn = _end_of_wal(sconn)
    while True:
        row = sconn.execute(
            "SELECT confirmed_flush_lsn >= %s::pg_lsn, "
            "pg_wal_lsn_diff(%s::pg_lsn, confirmed_flush_lsn)::bigint "
            "FROM pg_replication_slots WHERE slot_name = %s",
            (target_lsn, target_lsn, slot)).fetchone()
        if row is None:
            raise ConfigError(f"the replication slot {slot} is gone from the source",
                              hint="start over with db copy --follow --force")
        say(event("lag", slot, bytes=max(0, int(row[1] or 0))))
        if row[0]:
            return
        if time.monotonic() > deadline:
            raise ConfigError("the target did not catch up with the source in time",
                              hint="check the subscription's apply worker in the "
                                   "target's log, then retry")
        time.sleep(0.05)


def _verify(src_text: str, dst_text: str, jobs: int, result: CutoverResult) -> bool:
    """db verify inside the freeze; its time and differences go into ``result``."""
    from cloudshift.db.verify import verify_databases

    t0 = time.monotonic()
    report = verify_databases(src_text, dst_text, jobs=jobs)
    result.verify_seconds = round(time.monotonic() - t0, 3)
    result.differences = report.lines()
    return report.ok


def _detach(sconn: psycopg.Connection[Any], dconn: psycopg.Connection[Any], sub: str,
            pubs: list[str]) -> None:
    """The target stops listening, the slot on the source goes with the subscription."""
    dconn.execute(sql.SQL("ALTER SUBSCRIPTION {} DISABLE").format(sql.Identifier(sub)))
    dconn.execute(sql.SQL("DROP SUBSCRIPTION {}").format(sql.Identifier(sub)))
    for pub in pubs:
        sconn.execute(sql.SQL("DROP PUBLICATION IF EXISTS {}").format(sql.Identifier(pub)))
