"""db copy --follow while the application keeps writing, then db cutover, then db verify."""

from __future__ import annotations

import random
import threading
import time
from pathlib import Path

import psycopg

from cloudshift.db.copy import CopyOptions, copy_database
from cloudshift.db.follow import cutover
from cloudshift.db.verify import verify_databases
from cloudshift.jobs.events import Event
from servers.postgres import PgDbs
from test_db_copy import AWKWARD, BIG, run_sql, scalar


class Writer(threading.Thread):
    """Inserts, updates and deletes on the source until stopped or cut off by the freeze."""

    def __init__(self, dsn: str) -> None:
        super().__init__(daemon=True)
        self.dsn = dsn
        self.stop = threading.Event()
        self.ops = 0
        self.ended_by: str | None = None

    def run(self) -> None:
        rnd = random.Random(7)
        try:
            with psycopg.connect(self.dsn, autocommit=True) as conn:
                n = 0
                while not self.stop.is_set():
                    n += 1
                    conn.execute("INSERT INTO customers (name, mood, prefs) VALUES "
                                 "(%s, 'happy', '{\"w\": 1}')", (f"writer {n} ✓",))
                    conn.execute("UPDATE big SET label = label || '+' WHERE id = %s",
                                 (rnd.randint(1, 150_000),))
                    conn.execute("DELETE FROM big WHERE id = %s", (rnd.randint(1, 150_000),))
                    conn.execute("INSERT INTO orders (region, order_no, customer_id, qty, "
                                 "unit_price) VALUES ('EU', %s, 1, 2, 3.5)", (100_000 + n,))
                    conn.execute("UPDATE events SET kind = 'seen' WHERE kind = %s AND "
                                 "ctid = (SELECT ctid FROM events WHERE kind = %s LIMIT 1)",
                                 (f"kind-{n % 4}", f"kind-{n % 4}"))
                    conn.execute("INSERT INTO measurements VALUES (%s, '2025-03-01', 1)",
                                 (100_000 + n,))
                    conn.execute("SELECT nextval('invoice_no')")
                    self.ops += 7
                    time.sleep(0.002)
        except psycopg.Error as exc:
            self.ended_by = type(exc).__name__


def test_follow_under_load_then_cutover_then_verify(pg_dbs: PgDbs, tmp_path: Path) -> None:
    run_sql(pg_dbs.src, BIG.format(n=150_000) + AWKWARD
            + "ALTER TABLE events REPLICA IDENTITY FULL; "
            "ALTER TABLE no_columns REPLICA IDENTITY FULL;")
    writer = Writer(pg_dbs.src)
    writer.start()
    time.sleep(0.3)
    events: list[Event] = []
    result = copy_database(pg_dbs.src, pg_dbs.dst, CopyOptions(
        jobs=2, follow=True, split_bytes=2 << 20, job_dir=tmp_path / "job",
        on_event=events.append))
    assert result.follow is not None and result.follow["caught_up"]
    assert any(e.type == "lag" for e in events)
    ops_during_copy = writer.ops
    assert ops_during_copy > 50
    time.sleep(1.0)   # the application keeps writing while replication follows

    cut = cutover(pg_dbs.src, pg_dbs.dst, jobs=2)
    writer.stop.set()
    writer.join(timeout=10)
    assert cut.ok, cut.differences
    assert writer.ended_by is not None, "the freeze should have ended the writer's session"
    assert cut.freeze_seconds > 0 and cut.switch_at
    assert writer.ops > ops_during_copy

    report = verify_databases(pg_dbs.src, pg_dbs.dst, jobs=2)
    assert report.ok, report.lines()
    assert scalar(pg_dbs.dst, "SELECT count(*) FROM customers WHERE name LIKE 'writer %'") > 0
    assert scalar(pg_dbs.dst, "SELECT last_value FROM invoice_no") == \
        scalar(pg_dbs.src, "SELECT last_value FROM invoice_no")
    # Writes on the source are refused now; replication is detached.
    assert scalar(pg_dbs.src, "SHOW default_transaction_read_only") == "on"
    assert scalar(pg_dbs.dst, "SELECT count(*) FROM pg_subscription") == 0


def test_freeze_writes_waits_until_ended_sessions_are_gone(pg_dbs: PgDbs) -> None:
    from cloudshift.db.dsn import Dsn, connect
    from cloudshift.db.follow import freeze_writes, unfreeze_writes

    others = [psycopg.connect(pg_dbs.src, autocommit=True) for _ in range(3)]
    pids = [o.info.backend_pid for o in others]
    sconn = connect(Dsn(pg_dbs.src, "source"))
    try:
        assert freeze_writes(sconn, time.monotonic() + 30) >= 3
        # Gone by the time freeze_writes returns, not merely signalled.
        left = sconn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(%s)",
                             (pids,)).fetchone()
        assert left == (0,)
    finally:
        unfreeze_writes(sconn)
        sconn.close()
        for o in others:
            o.close()
