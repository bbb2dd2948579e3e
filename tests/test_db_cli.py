"""`cloudshift db ...` as a user runs it: a real process, real servers, exit codes, one-line
errors, no password in any output; and a copy killed with SIGKILL that a re-run completes."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psycopg

from servers import free_port
from servers.postgres import PASSWORD, PgDbs
from test_db_copy import AWKWARD, AWKWARD_ROWS, BIG, not_analyzed, run_sql, scalar

ENTRY = "from cloudshift.cli import main; main()"


def cli(*args: str, home: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CLOUDSHIFT_HOME": str(home)}
    return subprocess.run([sys.executable, "-c", ENTRY, "db", *args], capture_output=True,
                          text=True, env=env, timeout=timeout, check=False)


def popen(*args: str, home: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "CLOUDSHIFT_HOME": str(home)}
    return subprocess.Popen([sys.executable, "-c", ENTRY, "db", *args], text=True, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def listed_jobs(home: Path) -> list[dict[str, object]]:
    """`cloudshift jobs --json`, as a user would run it after the db command."""
    proc = subprocess.run([sys.executable, "-c", ENTRY, "jobs", "--json"], capture_output=True,
                          text=True, env={**os.environ, "CLOUDSHIFT_HOME": str(home)},
                          timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr
    return [json.loads(line) for line in proc.stdout.splitlines()]


def one_error_line(proc: subprocess.CompletedProcess[str]) -> str:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert PASSWORD not in proc.stdout + proc.stderr
    return lines[0]


def test_unreachable_host(pg_dbs: PgDbs, tmp_path: Path) -> None:
    dead = f"postgresql://postgres:{PASSWORD}@127.0.0.1:{free_port()}/nowhere"
    for cmd in ("copy", "verify", "check"):
        line = one_error_line(cli(cmd, dead, pg_dbs.dst, home=tmp_path))
        assert "cannot reach the source server at postgresql://postgres@127.0.0.1:" in line
        assert "listen_addresses" in line


def test_wrong_password_is_named_and_never_printed(pg_dbs: PgDbs, tmp_path: Path) -> None:
    bad = pg_dbs.servers.target.dsn(pg_dbs.name, password="Hunter2-wrong-pw")
    proc = cli("copy", pg_dbs.src, bad, home=tmp_path)
    line = one_error_line(proc)
    assert "the target server rejected the login" in line
    assert "Hunter2-wrong-pw" not in proc.stdout + proc.stderr
    # Nor in the journal folder.
    for f in tmp_path.rglob("*"):
        if f.is_file():
            assert b"Hunter2" not in f.read_bytes() and PASSWORD.encode() not in f.read_bytes()


def test_target_not_empty_is_refused_unless_forced(pg_dbs: PgDbs, tmp_path: Path) -> None:
    run_sql(pg_dbs.src, AWKWARD)
    run_sql(pg_dbs.dst, "CREATE TABLE precious (id int); INSERT INTO precious VALUES (1)")
    line = one_error_line(cli("copy", pg_dbs.src, pg_dbs.dst, home=tmp_path))
    assert "is not empty (1 tables" in line and "--force" in line
    assert scalar(pg_dbs.dst, "SELECT count(*) FROM precious") == 1
    # A copy that never started leaves no job behind (not one listed as "unreadable").
    assert listed_jobs(tmp_path) == []
    proc = cli("copy", pg_dbs.src, pg_dbs.dst, "--force", "-j", "2", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert scalar(pg_dbs.dst, "SELECT to_regclass('precious')") is None
    assert cli("verify", pg_dbs.src, pg_dbs.dst, home=tmp_path).returncode == 0


def test_split_size_zero_is_one_usage_line(pg_dbs: PgDbs, tmp_path: Path) -> None:
    run_sql(pg_dbs.src, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)")
    line = one_error_line(cli("copy", pg_dbs.src, pg_dbs.dst, "--split-size", "0",
                              home=tmp_path))
    assert "--split-size must be more than 0" in line and "ZeroDivision" not in line
    assert listed_jobs(tmp_path) == []


def test_follow_needs_logical_wal_level(pg_dbs: PgDbs, tmp_path: Path) -> None:
    # The target server runs with the default wal_level (replica): use it as a source.
    run_sql(pg_dbs.dst, "CREATE TABLE t (id int PRIMARY KEY)")
    line = one_error_line(cli("copy", pg_dbs.dst, pg_dbs.src, "--follow", home=tmp_path))
    assert "wal_level = replica; --follow needs wal_level = logical" in line
    assert "ALTER SYSTEM SET wal_level = logical" in line


def test_follow_needs_replica_identity(pg_dbs: PgDbs, tmp_path: Path) -> None:
    run_sql(pg_dbs.src, "CREATE TABLE keyed (id int PRIMARY KEY); CREATE TABLE loose (v int)")
    line = one_error_line(cli("copy", pg_dbs.src, pg_dbs.dst, "--follow", home=tmp_path))
    assert "no primary key or replica identity" in line and "public.loose" in line
    assert "ALTER TABLE public.loose REPLICA IDENTITY FULL" in line
    proc = cli("check", pg_dbs.src, pg_dbs.dst, "--follow", home=tmp_path)
    assert proc.returncode == 1
    assert "BLOCKER  replica identity" in proc.stdout
    assert "fix: ALTER TABLE public.loose REPLICA IDENTITY FULL" in proc.stdout


def test_check_reports_sizes_and_is_ready(pg_dbs: PgDbs, tmp_path: Path) -> None:
    run_sql(pg_dbs.src, AWKWARD)
    proc = cli("check", pg_dbs.src, pg_dbs.dst, home=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "public.customers  (id)" in proc.stdout
    assert "public.events  (no primary key)" in proc.stdout
    assert "WARNING  keys" in proc.stdout
    assert "INFO     estimate: about" in proc.stdout
    assert "check: ready" in proc.stdout


# A table whose load on the target waits for the test: its CHECK takes a shared advisory lock
# that a Gate holds exclusively (on the source nobody holds it, so the rows go in).
GATED = """
CREATE FUNCTION gate(v int) RETURNS boolean LANGUAGE plpgsql AS
  $$ BEGIN PERFORM pg_advisory_xact_lock_shared(4242); RETURN true; END $$;
CREATE TABLE gated (id int PRIMARY KEY, v int CHECK (gate(v)));
INSERT INTO gated SELECT i, i FROM generate_series(1, 100) i;
"""
GATED_ROWS = 100


class Gate:
    """Holds a copy inside the load of ``gated``, as long as the test wants: the copy is then
    past the schema, and that table is not done, whatever the timing of the rest."""

    def __init__(self, target_dsn: str) -> None:
        self.conn = psycopg.connect(target_dsn, autocommit=True)
        self.conn.execute("SELECT pg_advisory_lock(4242)")

    def __enter__(self) -> Gate:
        return self

    def __exit__(self, *exc: object) -> None:
        self.conn.close()       # the lock goes with the session

    def wait_for_load(self, proc: subprocess.Popen[str], timeout: float = 60) -> None:
        """Return once a session of the copy waits at the gate."""
        deadline = time.monotonic() + timeout
        while not self._waiting():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the copy never reached the gated table"
            time.sleep(0.05)

    def _waiting(self) -> bool:
        row = self.conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                "AND objid = 4242 AND NOT granted").fetchone()
        return bool(row and row[0])


def interrupted_copy(args: tuple[str, ...], target_dsn: str, home: Path,
                     sig: signal.Signals = signal.SIGTERM) -> str:
    """Run ``db copy``, hold it in the gated table's load, send it ``sig``: its stderr.
    A SIGTERM must end it with 130 (resumable), a SIGKILL just ends it."""
    with Gate(target_dsn) as gate:
        proc = popen(*args, home=home)
        gate.wait_for_load(proc)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=30)
    assert proc.returncode == (130 if sig == signal.SIGTERM else -sig), err
    return err


def _done_chunks(journal: Path) -> int:
    if not journal.exists():
        return 0
    try:
        with sqlite3.connect(journal) as db:
            return int(db.execute("SELECT count(*) FROM chunks WHERE state='done'")
                       .fetchone()[0])
    except sqlite3.Error:
        return 0


def test_kill_9_during_copy_then_rerun_ends_identical(pg_dbs: PgDbs, tmp_path: Path) -> None:
    run_sql(pg_dbs.src, BIG.format(n=600_000) + AWKWARD + GATED)
    job = tmp_path / "job"
    args = ("copy", pg_dbs.src, pg_dbs.dst, "-j", "2", "--split-size", "2MiB",
            "--job-dir", str(job))
    # Killed while loading the gated table, one of the last: the big tables are in by then.
    interrupted_copy(args, pg_dbs.dst, tmp_path, signal.SIGKILL)
    done_before = _done_chunks(job / "journal.db")
    assert done_before >= 3
    with sqlite3.connect(job / "journal.db") as db:
        total = int(db.execute("SELECT count(*) FROM chunks").fetchone()[0])
        first = set(db.execute("SELECT id, updated FROM chunks WHERE state='done' "
                               "AND tbl <> 'public.customers'"))
    assert done_before < total, "the copy finished before it could be killed"
    # The application writes to one table between the crash and the re-run: that table's
    # finished chunks are stale, so it is copied again in full; the others are kept.
    run_sql(pg_dbs.src, "UPDATE customers SET name = 'written after the kill' WHERE id = 2")

    again = cli(*args, home=tmp_path)
    assert again.returncode == 0, again.stderr
    assert "(resumed)" in again.stdout
    with sqlite3.connect(job / "journal.db") as db:
        after = set(db.execute("SELECT id, updated FROM chunks WHERE state='done'"))
        assert int(db.execute("SELECT count(*) FROM chunks WHERE state<>'done'")
                   .fetchone()[0]) == 0
    assert first <= after, "chunks finished before the kill were copied again"
    assert "copied again in full (written to on the source since the first run): " \
           "public.customers" in again.stdout
    assert scalar(pg_dbs.dst, "SELECT name FROM customers WHERE id = 2") == \
        "written after the kill"
    copied_again = int(again.stdout.split("db copy: ")[1].split(" rows")[0])
    # The journal's total over both runs.
    assert copied_again == 600_000 + AWKWARD_ROWS + GATED_ROWS
    # Tables loaded before the kill got their indexes (verify compares them) and ANALYZE.
    assert not_analyzed(pg_dbs.dst) == ["no_columns"]
    verify = cli("verify", pg_dbs.src, pg_dbs.dst, home=tmp_path)
    assert verify.returncode == 0, verify.stdout
    assert "db verify OK" in verify.stdout
    assert "without a primary key compared by row count" in verify.stdout


def test_cli_follow_then_cutover_prints_switch_moment(pg_dbs: PgDbs, tmp_path: Path) -> None:
    run_sql(pg_dbs.src, "CREATE TABLE t (id serial PRIMARY KEY, v text); "
                        "INSERT INTO t (v) SELECT 'v' || i FROM generate_series(1, 1000) i")
    proc = cli("copy", pg_dbs.src, pg_dbs.dst, "--follow", home=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "following: subscription cloudshift_db_" in proc.stdout
    run_sql(pg_dbs.src, "INSERT INTO t (v) VALUES ('after the snapshot')")
    lag = cli("lag", pg_dbs.src, pg_dbs.dst, home=tmp_path)
    assert lag.returncode == 0 and lag.stdout.startswith("lag: "), lag.stdout + lag.stderr
    assert "1 apply worker running" in lag.stdout
    cut = cli("cutover", pg_dbs.src, pg_dbs.dst, home=tmp_path)
    assert cut.returncode == 0, cut.stdout + cut.stderr
    assert "SWITCH NOW: the application may write to the target from 20" in cut.stdout
    assert "write freeze on the source: " in cut.stdout
    assert PASSWORD not in cut.stdout + cut.stderr + proc.stdout + proc.stderr
    assert scalar(pg_dbs.dst, "SELECT v FROM t WHERE id = 1001") == "after the snapshot"
    assert scalar(pg_dbs.dst, "SELECT nextval('t_id_seq')") == 1002
    again = cli("cutover", pg_dbs.src, pg_dbs.dst, home=tmp_path)
    assert "no cloudshift replication runs into this target database" in one_error_line(again)


def test_cutover_prints_the_lag_at_most_once_a_second(pg_dbs: PgDbs, tmp_path: Path) -> None:
    """While the target does not catch up, cutover polls the lag every 0.05 s: the target's
    subscription is paused here, so it polls until --timeout. One printer serves the whole
    run, so its throttle holds (a printer per event printed every poll)."""
    run_sql(pg_dbs.src, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)")
    assert cli("copy", pg_dbs.src, pg_dbs.dst, "--follow", home=tmp_path).returncode == 0
    sub = scalar(pg_dbs.dst, "SELECT s.subname FROM pg_subscription s JOIN pg_database d "
                             "ON d.oid = s.subdbid WHERE d.datname = current_database()")
    run_sql(pg_dbs.dst, f'ALTER SUBSCRIPTION "{sub}" DISABLE')
    # The apply worker stops a moment later; until then it would still confirm the WAL.
    deadline = time.monotonic() + 30
    while scalar(pg_dbs.servers.source.dsn(), "SELECT count(*) FROM pg_replication_slots "
                 f"WHERE slot_name = '{sub}' AND active"):
        assert time.monotonic() < deadline, "the paused subscription still streams"
        time.sleep(0.05)
    # A change the target has not received, in WAL the source has written out.
    run_sql(pg_dbs.src, "INSERT INTO t VALUES (2)")
    while not scalar(pg_dbs.src, "SELECT pg_current_wal_lsn() > confirmed_flush_lsn FROM "
                                 f"pg_replication_slots WHERE slot_name = '{sub}'"):
        assert time.monotonic() < deadline, "the source's WAL did not move"
        time.sleep(0.05)
    started = time.monotonic()
    cut = cli("cutover", pg_dbs.src, pg_dbs.dst, "--timeout", "3", home=tmp_path)
    took = time.monotonic() - started
    assert cut.returncode == 2, cut.stdout + cut.stderr
    lines = cut.stderr.splitlines()
    assert "the target did not catch up with the source in time" in lines[-1]
    assert any(line.startswith("==> writes frozen on the source") for line in lines)
    lag_lines = [line for line in lines if "replication lag:" in line]
    # One before the freeze, then at most one a second while cutover waits.
    assert 2 <= len(lag_lines) <= 2 + int(took), cut.stderr
    assert scalar(pg_dbs.src, "SHOW default_transaction_read_only") == "off"


def test_follow_killed_during_data_must_restart_with_force(pg_dbs: PgDbs, tmp_path: Path
                                                            ) -> None:
    run_sql(pg_dbs.src, BIG.format(n=400_000) + GATED)
    job = tmp_path / "job"
    args = ("copy", pg_dbs.src, pg_dbs.dst, "-j", "2", "--split-size", "2MiB", "--follow",
            "--job-dir", str(job))
    interrupted_copy(args, pg_dbs.dst, tmp_path, signal.SIGKILL)
    line = one_error_line(cli(*args, home=tmp_path))
    assert "stopped during the data copy" in line and "--force" in line
    forced = cli(*args, "--force", home=tmp_path)
    assert forced.returncode == 0, forced.stderr
    run_sql(pg_dbs.src, "UPDATE big SET label = 'after' WHERE id = 1")
    cut = cli("cutover", pg_dbs.src, pg_dbs.dst, home=tmp_path)
    assert cut.returncode == 0, cut.stdout + cut.stderr
    assert scalar(pg_dbs.dst, "SELECT label FROM big WHERE id = 1") == "after"


def test_sigterm_exits_130_and_json_rerun_resumes(pg_dbs: PgDbs, tmp_path: Path) -> None:
    run_sql(pg_dbs.src, BIG.format(n=100_000) + GATED)
    job = tmp_path / "job"
    args = ("copy", pg_dbs.src, pg_dbs.dst, "-j", "2", "--split-size", "2MiB",
            "--job-dir", str(job))
    err = interrupted_copy(args, pg_dbs.dst, tmp_path)
    assert "cloudshift: interrupted" in err and "Traceback" not in err
    again = cli(*args, "--json", home=tmp_path)
    assert again.returncode == 0, again.stderr
    lines = [json.loads(x) for x in again.stdout.splitlines()]
    summary = lines[-1]
    assert summary["type"] == "summary" and summary["resumed"] is True
    assert (summary["kind"], summary["op"], summary["ok"]) == ("db", "db-copy", True)
    assert summary["rows"] == 100_000 + GATED_ROWS
    assert {"type": "table", "key": "public.gated", "rows": GATED_ROWS} \
        .items() <= next(x for x in lines if x.get("key") == "public.gated").items()
    assert PASSWORD not in again.stdout + again.stderr
    assert cli("verify", pg_dbs.src, pg_dbs.dst, "--json", home=tmp_path).returncode == 0


def _runs(job: Path) -> int:
    with sqlite3.connect(job / "journal.db") as db:
        return int(db.execute("SELECT count(*) FROM runs").fetchone()[0])


def test_resume_with_other_options_is_refused_in_one_line(pg_dbs: PgDbs, tmp_path: Path
                                                          ) -> None:
    run_sql(pg_dbs.src, BIG.format(n=20_000) + GATED)
    job = tmp_path / "job"

    def args(*extra: str, split: str = "2MiB") -> tuple[str, ...]:
        return ("copy", pg_dbs.src, pg_dbs.dst, "-j", "2", "--split-size", split,
                "--job-dir", str(job), *extra)

    interrupted_copy(args(), pg_dbs.dst, tmp_path)
    runs = _runs(job)
    for changed, named in (((), "--split-size: was 2.0 MiB, now 64.0 MiB"),
                           (("--no-acl",), "--no-acl: was off, now on"),
                           (("--no-owner",), "--no-owner: was off, now on"),
                           (("--follow",), "--follow: was off, now on")):
        split = "64MiB" if not changed else "2MiB"
        line = one_error_line(cli(*args(*changed, split=split), home=tmp_path))
        assert f"this job was started with other options: {named} (rerun with the same " \
               "options, or add --force to start over)" in line, line
    assert _runs(job) == runs, "a refused run must not touch the journal"
    same = cli(*args(), home=tmp_path)
    assert same.returncode == 0, same.stderr
    assert "(resumed)" in same.stdout
    assert cli("verify", pg_dbs.src, pg_dbs.dst, home=tmp_path).returncode == 0


def test_a_journal_that_cannot_be_created_is_one_line(pg_dbs: PgDbs, tmp_path: Path) -> None:
    run_sql(pg_dbs.src, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1);")
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder\n")
    line = one_error_line(cli("copy", pg_dbs.src, pg_dbs.dst, "--job-dir",
                              str(blocker / "job"), home=tmp_path / "home"))
    assert f"cannot create the job journal in '{blocker / 'job'}'" in line
    assert "CLOUDSHIFT_HOME or --job-dir" in line
    line = one_error_line(cli("copy", pg_dbs.src, pg_dbs.dst, home=blocker))
    assert "cannot create the job journal in" in line and "CLOUDSHIFT_HOME" in line
    assert scalar(pg_dbs.dst, "SELECT count(*) FROM pg_tables WHERE tablename = 't'") == 0
